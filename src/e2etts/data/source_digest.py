"""A content digest of a real corpus, for DVC (dvc.yaml stage ``corpus_source``).

DVC cannot list ``data.corpus_path`` among a stage's deps (a path taken from params, null
for the embedded corpus), so a stage that runs on every ``dvc repro`` (always_changed)
writes this digest and the ``data`` stage depends on it: the digest changes when the
corpus's content does (rows added to metadata.csv, a wav replaced, added or removed) and not
when only modification times do, so an unchanged corpus re-runs nothing.

What is hashed is what the data rules read (workflow/rules/common.smk, corpus_listing and
corpus_audio): LJSpeech ``metadata.csv`` and ``wavs/*.wav``; LibriTTS every ``*.wav`` and
``*.normalized.txt`` under the root. Each file's sha256 is reused from a stat cache
(relative path, size, mtime_ns) so a repro re-reads only changed files. The embedded corpus
is made from params and code, which the data stage already depends on: its digest is a
constant.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..atomic import file_digest, write_json
from ..errors import UserError


def corpus_files(data: dict) -> tuple[Path | None, list[Path]]:
    """(root, files the data rules read) of a real corpus; (None, []) for the embedded one."""
    if data["source"] == "embedded":
        return None, []
    if not data["corpus_path"]:
        raise UserError(f"params.yaml: data.corpus_path must be set when data.source={data['source']}")
    root = Path(data["corpus_path"])
    if not root.is_dir():
        raise UserError(f"{root}: data.corpus_path is not a directory")
    if data["source"] == "ljspeech":
        files = [root / "metadata.csv"] if (root / "metadata.csv").is_file() else []
        files += sorted((root / "wavs").glob("*.wav"))
    else:
        files = sorted([*root.rglob("*.wav"), *root.rglob("*.normalized.txt")])
    return root, files


def corpus_digest(data: dict, cache_path: Path | None = None) -> dict:
    """{"source", "files", "bytes", "sha256"} of the corpus's content (see the module doc)."""
    root, files = corpus_files(data)
    if root is None:
        return {"source": "embedded"}
    cache = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except ValueError:
            cache = {}
    new_cache, total, listing = {}, 0, hashlib.sha256()
    for path in files:
        rel = path.relative_to(root).as_posix()
        stat = path.stat()
        key = f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}"
        sha = cache.get(key) or file_digest(path)
        new_cache[key] = sha
        total += stat.st_size
        listing.update(f"{rel}\t{stat.st_size}\t{sha}\n".encode())
    if cache_path is not None:
        write_json(cache_path, new_cache)
    return {"source": data["source"], "files": len(files), "bytes": total, "sha256": listing.hexdigest()}
