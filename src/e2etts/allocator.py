"""The memory allocator of the pipeline's jobs: jemalloc where the machine has it.

glibc's malloc fragments under a training loop whose tensors change shape from batch to
batch. The interleaved LLM's resident memory grew from 1.7 to 2.7 GB over its first 120
steps under it, and a stage-2 LLM of the claim run stood at 4.7 GB at step 1,855. Under
jemalloc the same 120 steps peak at 1.9 GB (2.8 GB under glibc) with 0.89x the step time
(docs/benchmarks.md). Purging is off (dirty and muzzy decay -1): with jemalloc's default
10 s decay the step was 1.3x slower, its freed pages returned and faulted back every step.
An allocator changes no arithmetic: the loss and every gradient of an LLM and a flow
training step are the same bits under both.

The workflow puts these variables into its jobs' environment (workflow/rules/common.smk):
LD_PRELOAD has to be set before a process starts, so a job cannot choose it for itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

LIBRARY = "libjemalloc.so.2"  # Debian's libjemalloc2, which scripts/setup.sh installs
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
MALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def find_jemalloc(dirs: Iterable[str | Path] = LIBRARY_DIRS) -> Path | None:
    """The first jemalloc shared library in dirs, or None."""
    for d in dirs:
        path = Path(d) / LIBRARY
        if path.is_file():
            return path
    return None


def allocator_env(environ: Mapping[str, str], dirs: Iterable[str | Path] = LIBRARY_DIRS) -> dict[str, str]:
    """The variables to add to the jobs' environment: LD_PRELOAD (jemalloc) and MALLOC_CONF.

    Nothing when environ already sets LD_PRELOAD (the user's choice wins; LD_PRELOAD= with
    an empty value keeps glibc's malloc) or when no jemalloc is installed (glibc's malloc,
    as before; the figures are the same bits, only memory and time differ)."""
    if "LD_PRELOAD" in environ:
        return {}
    library = find_jemalloc(dirs)
    if library is None:
        return {}
    return {"LD_PRELOAD": str(library), "MALLOC_CONF": environ.get("MALLOC_CONF", MALLOC_CONF)}
