"""The CLI fixes glibc's malloc thresholds (issue 18, peak RSS): a block of 4 MiB or more is
mmapped, and returned to the system when freed, even after a larger block was freed (which
raises glibc's default, dynamic threshold above it). Each case runs in its own process."""

import os
import subprocess
import sys

import pytest

from e2etts.cli import MALLOC_THRESHOLDS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

PROBE = """
import ctypes, os, sys
from e2etts import cli
applied = cli.fix_malloc_thresholds() if sys.argv[1] == "fix" else None
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(6 << 20))  # under the default this raises the mmap threshold to 6 MiB
before = libc.mallinfo2().hblks
block = libc.malloc(5 << 20)
print(applied, libc.mallinfo2().hblks - before, os.environ.get("MALLOC_MMAP_THRESHOLD_"))
"""


def _probe(mode: str, **env_extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_THRESHOLDS}
    env.update(env_extra)
    run = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_fixed_threshold_mmaps_a_block_the_default_would_keep_in_the_heap():
    assert _probe("default") == ["None", "0", "None"]  # glibc's dynamic threshold: heap
    assert _probe("fix") == ["True", "1", str(4 << 20)]  # fixed 4 MiB: mmapped, children inherit it


def test_a_threshold_the_user_exported_wins():
    applied, mmapped, value = _probe("fix", MALLOC_MMAP_THRESHOLD_=str(64 << 20))
    assert (applied, mmapped, value) == ("False", "0", str(64 << 20))
