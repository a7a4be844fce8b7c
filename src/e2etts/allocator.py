"""The memory allocator of the pipeline's training, synthesis and scoring jobs: tcmalloc
where the machine has it.

Training batches change shape every step and glibc's malloc keeps the freed heap between
them, so a job's resident set grows for hundreds of steps: E2 (`e2etts train joint_e2`)
peaked at 4.2-5.0 GB under it, the interleaved LLM's and E1's jobs at 3-4 GB
(docs/benchmarks.md, Speed levers). Under Google's tcmalloc (Debian's libtcmalloc-minimal4,
which scripts/setup.sh installs) the same jobs peak 0.1-2 GB lower and run 0.8-0.95x the
time. An allocator changes no arithmetic: a job's checkpoints are the same bytes under both.

LD_PRELOAD must be set before a process starts, so the command re-executes itself once
with it (`reexec_with_allocator`); nothing in the command line changes, so Snakemake and DVC
see the same job. The bench (`python -m e2etts.bench`) re-executes itself the same way, so
it times training steps as the jobs run them. Synthesis, token resynthesis and scoring run
under it too: the same wav and transcript bytes at 0.95x (synthesis) and 0.81x (scoring) the
time. The other commands (corpus, features, tokens, summaries) and the optional vocoder's
training (none measured under it) keep glibc's malloc, whose thresholds cli.py fixes.
jemalloc is not used: it looked as good over 120 steps and then let a whole flow job grow
to 9.4 GB (docs/design-decisions.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

LIBRARY = "libtcmalloc_minimal.so.4"  # Debian's libtcmalloc-minimal4
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
# `e2etts train <task>` commands that run under it: every training job of the default pipeline.
COMPONENTS = ("tokenizer", "reward", "llm", "flow", "joint_e1", "joint_e2")
# Other `e2etts <command>`s that run under it: every system's synthesis and scoring, and the
# learning-curve probes (which ran inside the training jobs until session 22).
COMMANDS = ("synthesize", "topline", "score", "learning-curve")
# Set in the re-executed process, so that it does not re-execute again.
MARKER = "E2ETTS_ALLOCATOR"


def find_library(dirs: Iterable[str | Path] = LIBRARY_DIRS) -> Path | None:
    """The first tcmalloc shared library in dirs, or None."""
    for d in dirs:
        path = Path(d) / LIBRARY
        if path.is_file():
            return path
    return None


def preload_env(environ: Mapping[str, str], dirs: Iterable[str | Path] = LIBRARY_DIRS) -> dict[str, str]:
    """The variables that put a process under tcmalloc: {} when the caller set LD_PRELOAD
    (the user's choice wins; LD_PRELOAD= with an empty value keeps glibc's malloc), when this
    process is already the re-executed one, or when tcmalloc is not installed (glibc's
    malloc, as before)."""
    if "LD_PRELOAD" in environ or MARKER in environ:
        return {}
    library = find_library(dirs)
    if library is None:
        return {}
    return {"LD_PRELOAD": str(library), MARKER: LIBRARY}


def allocator_env(argv: list[str], environ: Mapping[str, str],
                  dirs: Iterable[str | Path] = LIBRARY_DIRS) -> dict[str, str]:
    """The variables to re-execute `e2etts argv` with: preload_env's for one of COMPONENTS'
    training runs and for COMMANDS, {} for every other command."""
    words = [a for a in argv if a not in ("-v", "--verbose")]  # the parser's one global option
    training = len(words) >= 2 and words[0] == "train" and words[1] in COMPONENTS
    if not (training or (words and words[0] in COMMANDS)):
        return {}
    return preload_env(environ, dirs)


def reexec(module: str, argv: list[str], extra: Mapping[str, str]) -> None:
    """Replace this process by `python -m module argv` with extra set in its environment (same
    PID, arguments and environment otherwise); return when extra is empty."""
    if not extra:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], {**os.environ, **extra})


def reexec_with_allocator(argv: list[str]) -> None:
    """`e2etts argv` under tcmalloc when allocator_env says so; else return."""
    reexec("e2etts.cli", argv, allocator_env(argv, os.environ))


def reexec_bench(argv: list[str]) -> None:
    """`python -m e2etts.bench argv` under tcmalloc, as the training jobs whose steps it
    times run (preload_env decides); else return."""
    reexec("e2etts.bench", argv, preload_env(os.environ))
