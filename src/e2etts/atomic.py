"""Atomic file outputs: write to a temporary sibling, then rename.

An interrupted job therefore never leaves a file that looks complete at its final path.
Also the content digest of a file (what cached or resumed work is keyed by).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` keeps an extension for writers that dispatch on it (soundfile, pandas).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give outputs the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS:
            # A full disk (or quota, or file-size limit) mid-write: the message names the
            # output and says what survived, instead of a traceback ending in write().
            from .errors import UserError

            raise UserError(
                f"{path}: not written ({exc.strerror}); nothing at this path was changed"
                f"{' (the previous file is intact)' if path.exists() else ''}: free space and "
                "re-run (training resumes from its last checkpoint)"
            ) from None
        raise


FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def check_writable(path: str | os.PathLike, flag: str = "output") -> None:
    """Raise UserError naming ``path`` unless a file can be written there: not an existing
    directory, no file where a parent directory must be, and a directory that accepts a
    new file (probed with a temporary file, so read-only mounts and permissions count for
    root as well). Creates nothing that stays. Call it before long work."""
    from .errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent  # the directories atomic_path would create
    if not ancestor.is_dir():
        raise UserError(f"{flag} {path}: {ancestor} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".e2etts-write-check.", dir=ancestor)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write in {ancestor} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_tsv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as TSV atomically (no index column)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    """torch.save, atomically and byte-reproducibly.

    Saving to a file names the zip archive after the (random) temporary file; saving to a
    buffer names it "archive", so equal objects give equal bytes whatever the path. The
    object is rebuilt by ``_canonical`` first, so equal objects also give equal bytes
    whatever their history (a resumed run's state holds loaded pieces)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(_canonical(obj), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _canonical(obj: Any) -> Any:
    """A copy of obj's dicts, lists and tuples with every str interned; anything else
    (tensors, arrays) is kept as is, so tensors that share storage still share it.

    Pickle writes an object it has met before as a back-reference, so the bytes depend on
    object identity, not only on values. A resumed training state mixes string keys read
    back by torch.load (fresh, un-interned objects: the optimizer's 'step') with the
    interned literals of the code (the state's own "step"): one string object in a fresh
    run, two after a resume, and last.pt's bytes (and the checkpoint directory's hash)
    differed although every value was equal. Interning every string and rebuilding every
    container makes the identity structure a function of the values alone."""
    kind = type(obj)
    if kind is str:
        return sys.intern(obj)
    if kind is dict or kind is OrderedDict:
        out = kind((_canonical(k), _canonical(v)) for k, v in obj.items())
        # nn.Module.state_dict() is an OrderedDict carrying a `_metadata` attribute.
        for name, value in getattr(obj, "__dict__", {}).items():
            setattr(out, name, _canonical(value))
        return out
    if kind is list:
        return [_canonical(v) for v in obj]
    if kind is tuple:
        return tuple(_canonical(v) for v in obj)
    return obj


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, hex."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
