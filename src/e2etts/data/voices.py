"""Speakers for the embedded corpus: flite base voices turned into distinct variants.

A variant changes what a speaker encoder hears, on a fixed grid per base voice:

- vocal-tract length (formant scale ``formant``, the main axis, 5 levels x0.83..x1.21):
  sox ``speed a`` scales every frequency (formants *and* F0) and the tempo by ``a``;
  flite pre-compensates F0 (``f0_shift`` divided by ``a``) and duration
  (``duration_stretch`` times ``a``), so the net result is formants x ``a`` with F0 and
  tempo set on their own. (A compensating sox ``pitch`` after ``speed`` would not do this:
  sox ``pitch`` resamples too, so it moves the formants back with F0 and the pair only
  changes tempo; measured, the spectral centroid barely moved.)
- mean F0 (``f0``, second axis, x0.8 / x1 / x1.25): flite's ``f0_shift`` feature, measured
  to scale F0 on slt, awb, kal16 and kal. rms ignores every flite F0 feature
  (``f0_shift``, ``int_f0_target_mean``/``stddev``), so for rms F0 follows the formant
  scale, which gets 9 finer levels, and the second axis is spectral tilt (sox ``treble``
  +-8 dB at 3 kHz).
- speaking rate (``tempo``) and, for F0-controlled voices, a milder tilt (+-4 dB), cycled
  over the variants as secondary traits.

Variants are picked from the grid by farthest-point sampling from the unmodified voice,
so they spread out (corners and edges first) instead of clumping. Variant 0 of every
voice is the unmodified voice (only peak-normalized to -2 dBFS and resampled); every sox
chain ends in ``rate 16k``.
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

# The variant grid. Measured with resemblyzer (6 sentences, centroid cosine to the
# unmodified voice; two halves of one voice's own utterances give 0.94-0.95): formants
# x0.93 or x1.07 -> 0.91-0.95 (hard to tell apart), x0.87 or x1.14 -> 0.75-0.85;
# F0 x1.25 -> 0.85 (slt), 0.93 (kal16); F0 x0.8 on kal16 -> 0.99. So the formant scale is
# the main axis with ~10% steps, F0 the second in 25% steps.
FORMANT_RANGE = (0.83, 1.21)  # x1.1 per step over 5 levels
FORMANT_LEVELS = 5
F0_LEVELS = (0.8, 1.0, 1.25)
# rms ignores flite's F0 features: finer formant levels (x1.05) and treble tilt instead.
RMS_FORMANT_LEVELS = 9
TILT_LEVELS_DB = (-8.0, 0.0, 8.0)
# Secondary traits, cycled so that grid neighbours differ in them too.
TILT_CYCLE_DB = (0.0, 4.0, -4.0)
TEMPO_CYCLE = (1.0, 1.08, 0.93)  # >1 speaks faster


def _levels(n: int) -> list[float]:
    """n formant factors, log-spaced over FORMANT_RANGE, the middle one exactly 1."""
    lo, hi = (math.log(x) for x in FORMANT_RANGE)
    half = n // 2
    return [
        math.exp(lo * (half - k) / half)
        if k < half
        else math.exp(hi * (k - half) / half)
        if k > half
        else 1.0
        for k in range(n)
    ]


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


def _grid(info: BaseVoice) -> list[tuple[tuple[float, float], dict]]:
    """Candidate variants: (grid coordinates, make_spec settings), centre first.

    Coordinates are in units where one unit is a clearly audible step, so that
    farthest-point sampling spreads speakers evenly.
    """
    points = []
    if info.f0_control:
        formants = _levels(FORMANT_LEVELS)
        for (i, formant), (j, f0) in itertools.product(enumerate(formants), enumerate(F0_LEVELS)):
            coords = (float(i - FORMANT_LEVELS // 2), float(j - 1))
            points.append((coords, {"formant": formant, "f0": f0}))
    else:
        formants = _levels(RMS_FORMANT_LEVELS)
        for (i, formant), (j, tilt) in itertools.product(
            enumerate(formants), enumerate(TILT_LEVELS_DB)
        ):
            coords = ((i - RMS_FORMANT_LEVELS // 2) / 2, float(j - 1))
            points.append((coords, {"formant": formant, "tilt_db": tilt}))
    points.sort(key=lambda p: p[0] != (0.0, 0.0))  # the unmodified voice first
    return points


def _farthest_points(points: list, n: int, rng: np.random.Generator) -> list:
    """n of ``points`` by farthest-point sampling from the first (the unmodified voice).

    Spread, not clumped: corners, then edges, then the interior. The rng only breaks ties
    (which corner comes first), so a seed changes the order, not the spread.
    """
    rest = [points[i + 1] for i in rng.permutation(len(points) - 1)]
    chosen = [points[0]]
    while len(chosen) < n:
        best = max(
            rest,
            key=lambda p: min((p[0][0] - q[0][0]) ** 2 + (p[0][1] - q[0][1]) ** 2 for q in chosen),
        )
        chosen.append(best)
        rest.remove(best)
    return chosen


def make_speakers(base_voices: list[str], per_voice: int, seed: int) -> list[SpeakerSpec]:
    """``per_voice`` distinct variants of each base voice, named ``<voice>_<NN>``.

    Deterministic for (base_voices, per_voice, seed). Variant 0 is the unmodified voice.
    """
    if not base_voices:
        raise UserError("no base voices given (params.yaml: data.embedded.base_voices)")
    if len(set(base_voices)) != len(base_voices):
        raise UserError(
            f"base voices repeat: {base_voices} (params.yaml: data.embedded.base_voices)"
        )
    speakers = []
    for v, voice in enumerate(base_voices):
        info = _base_voice(voice)
        grid = _grid(info)
        if not 1 <= per_voice <= len(grid):
            raise UserError(
                f"variants_per_voice={per_voice}: must be between 1 and {len(grid)} for voice "
                f"{voice!r} (params.yaml: data.embedded.variants_per_voice)"
            )
        rng = np.random.default_rng([seed, v])
        for i, (_, settings) in enumerate(_farthest_points(grid, per_voice, rng)):
            settings = {"tempo": TEMPO_CYCLE[(i // 3) % 3], **settings}
            if info.f0_control:
                settings["tilt_db"] = TILT_CYCLE_DB[i % 3]
            speakers.append(make_spec(f"{voice}_{i:02d}", voice, **settings))
    return speakers


def base_voice_of(speaker: str) -> str:
    """'slt_03' -> 'slt'; a name without a variant suffix is its own group."""
    match = re.fullmatch(r"(.+)_\d+", speaker)
    return match.group(1) if match else speaker
