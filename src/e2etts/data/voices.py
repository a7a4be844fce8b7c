"""Speakers for the embedded corpus: flite base voices turned into distinct variants.

A variant changes three things a speaker encoder hears, each on a fixed grid:

- vocal-tract length (formant scale ``formant``): sox ``speed a`` scales every frequency
  (formants *and* F0) and the tempo by ``a``; flite then pre-compensates F0 (``f0_shift``
  divided by ``a``) and duration (``duration_stretch`` times ``a``) so the net result is
  formants x ``a`` with F0 and tempo set independently. (A sox ``pitch`` after ``speed``
  would not do this: sox ``pitch`` resamples too, so it moves formants back with F0 and
  the pair amounts to a tempo change; measured, the spectral centroid barely moves.)
- mean F0 (``f0``): flite's ``f0_shift`` feature, measured to scale F0 on slt, awb,
  kal16 and kal. The rms voice ignores every flite F0 feature, so for rms F0 follows the
  formant scale and the second grid axis is spectral tilt instead.
- spectral tilt (sox ``treble``, +-dB at 3 kHz) and speaking rate (``tempo``), cycled over
  the variants as secondary traits.

Variant 0 of every voice is the unmodified voice (only peak-normalized and resampled).
Every sox chain ends in ``rate 16k``.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class BaseVoice:
    """What a flite voice lets us control (measured with `flite --setf`)."""

    f0_control: bool  # does flite's f0_shift move its F0?
    duration_stretch: float  # the voice's own default (setting the feature replaces it)


BASE_VOICES: dict[str, BaseVoice] = {
    "slt": BaseVoice(f0_control=True, duration_stretch=1.0),
    "awb": BaseVoice(f0_control=True, duration_stretch=1.0),
    "rms": BaseVoice(f0_control=False, duration_stretch=1.0),
    "kal16": BaseVoice(f0_control=True, duration_stretch=1.1),
    "kal": BaseVoice(f0_control=True, duration_stretch=1.1),  # 8 kHz source
}

# Grid axes, in steps from the unmodified voice (index 0 is the voice itself).
FORMANT_STEP = 1.07  # x1.07 per step: -2..2 spans formants x0.87..x1.14
F0_STEP = 1.12  # -2..2 spans F0 x0.80..x1.25
TILT_STEP_DB = 4.0  # -2..2 spans treble -8..+8 dB (rms's second axis)
GRID = range(-2, 3)
# Secondary traits, cycled so that neighbouring variants differ in them too.
TILT_CYCLE_DB = (0.0, 4.0, -4.0)
TEMPO_CYCLE = (1.0, 1.08, 0.93)  # >1 speaks faster


@dataclass(frozen=True)
class SpeakerSpec:
    """One synthetic speaker: a flite voice, flite features and a sox effect chain.

    ``formant``, ``f0`` and ``tempo`` are the intended net factors relative to the base
    voice (documentation and reports); ``flite_features`` and ``sox_effects`` are what runs.
    """

    name: str
    base_voice: str
    flite_features: tuple[tuple[str, float], ...] = ()
    sox_effects: tuple[str, ...] = ("gain", "-n", "-2", "rate", "16k")
    formant: float = 1.0
    f0: float = 1.0
    tempo: float = 1.0
    tilt_db: float = 0.0

    def flite_args(self) -> list[str]:
        """`flite` options setting the features, e.g. ['--setf', 'f0_shift=0.9']."""
        args = []
        for key, value in self.flite_features:
            args += ["--setf", f"{key}={value:.4f}"]
        return args

    def to_dict(self) -> dict:
        return asdict(self)


def make_spec(
    name: str,
    base_voice: str,
    *,
    formant: float = 1.0,
    f0: float = 1.0,
    tempo: float = 1.0,
    tilt_db: float = 0.0,
) -> SpeakerSpec:
    """Translate net factors into flite features and a sox chain (see module docstring).

    For a voice without F0 control the requested ``f0`` is ignored: F0 moves with
    ``formant``.
    """
    info = _base_voice(base_voice)
    features: list[tuple[str, float]] = []
    # sox `speed formant` shortens the audio by 1/formant: stretch flite's durations first.
    stretch = info.duration_stretch * formant / tempo
    if not math.isclose(stretch, info.duration_stretch, rel_tol=1e-6):
        features.append(("duration_stretch", round(stretch, 4)))
    if info.f0_control:
        shift = f0 / formant  # sox `speed` multiplies F0 by `formant` again afterwards
        if not math.isclose(shift, 1.0, rel_tol=1e-6):
            features.append(("f0_shift", round(shift, 4)))
    else:
        f0 = formant
    effects: list[str] = []
    if formant != 1.0 or tilt_db != 0.0:
        effects += ["gain", "-h"]  # headroom for the treble boost; restored by `gain -n`
    if formant != 1.0:
        effects += ["speed", f"{formant:.4f}"]
    if tilt_db != 0.0:
        effects += ["treble", f"{tilt_db:+.1f}"]
    # Peak-normalize so loudness is not a speaker cue, then resample to 16 kHz.
    effects += ["gain", "-n", "-2", "rate", "16k"]
    return SpeakerSpec(
        name=name,
        base_voice=base_voice,
        flite_features=tuple(features),
        sox_effects=tuple(effects),
        formant=round(formant, 4),
        f0=round(f0, 4),
        tempo=tempo,
        tilt_db=tilt_db,
    )


def _base_voice(voice: str) -> BaseVoice:
    if voice not in BASE_VOICES:
        raise UserError(
            f"unknown flite base voice {voice!r}; use one of {sorted(BASE_VOICES)} "
            "(params.yaml: data.embedded.base_voices)"
        )
    return BASE_VOICES[voice]


def _grid_order(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Pick n points of the 5x5 grid by farthest-point sampling from the centre.

    Spread, not clumped: corners, then edge midpoints, then the interior. The rng only
    breaks ties (which corner comes first), so a seed changes the order, not the spread.
    """
    candidates = list(itertools.product(GRID, GRID))
    candidates = [candidates[i] for i in rng.permutation(len(candidates))]
    chosen = [(0, 0)]
    candidates.remove((0, 0))
    while len(chosen) < n:
        best = max(
            candidates,
            key=lambda p: min((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 for q in chosen),
        )
        chosen.append(best)
        candidates.remove(best)
    return chosen


def make_speakers(base_voices: list[str], per_voice: int, seed: int) -> list[SpeakerSpec]:
    """``per_voice`` distinct variants of each base voice, named ``<voice>_<NN>``.

    Deterministic for (base_voices, per_voice, seed). Variant 0 is the unmodified voice.
    """
    max_variants = len(GRID) ** 2
    if not 1 <= per_voice <= max_variants:
        raise UserError(
            f"variants_per_voice={per_voice}: must be between 1 and {max_variants} "
            "(params.yaml: data.embedded.variants_per_voice)"
        )
    if not base_voices:
        raise UserError("no base voices given (params.yaml: data.embedded.base_voices)")
    if len(set(base_voices)) != len(base_voices):
        raise UserError(f"base voices repeat: {base_voices} (params.yaml: data.embedded.base_voices)")
    speakers = []
    for v, voice in enumerate(base_voices):
        info = _base_voice(voice)
        if not re.fullmatch(r"[a-z0-9]+", voice):
            raise UserError(f"base voice name {voice!r} must be lower-case letters and digits")
        rng = np.random.default_rng([seed, v])
        for i, (a, b) in enumerate(_grid_order(per_voice, rng)):
            tempo = TEMPO_CYCLE[(i // 3) % 3]
            formant = FORMANT_STEP**a
            if info.f0_control:
                f0, tilt = F0_STEP**b, TILT_CYCLE_DB[i % 3]
            else:  # rms: F0 is tied to the formant scale, so spread tilt instead
                f0, tilt = formant, TILT_STEP_DB * b
            speakers.append(
                make_spec(f"{voice}_{i:02d}", voice, formant=formant, f0=f0, tempo=tempo, tilt_db=tilt)
            )
    return speakers


def base_voice_of(speaker: str) -> str:
    """'slt_03' -> 'slt'; a name without a variant suffix is its own group."""
    match = re.fullmatch(r"(.+)_\d+", speaker)
    return match.group(1) if match else speaker
