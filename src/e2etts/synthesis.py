"""Zero-shot synthesis: text + a prompt utterance -> 16 kHz speech, for any system.

A system directory (results/checkpoints/s<seed>/<system>/) holds `system.json`, naming the
tokenizer, LLM and flow checkpoints it uses (E2E systems share some) and the vocoder,
so every system is synthesized by exactly the same code. The checkpoint paths in it are
relative to the project root (the directory the pipeline runs in); `resolve_spec_paths`
finds that root from the system directory, so `--system` works from any directory.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .audio import MelConfig, load_wav, log_mel
from .errors import UserError
from .llm.model import SamplingConfig
from .text import encode_text, normalize, out_of_vocab

SUBSAMPLE = 4
TOKENS_PER_SECOND = 25  # 16 kHz, 160-sample hop, SUBSAMPLE frames per token
# -60 dBFS: far under any usable recording (corpus prompts peak at -5 to -2 dBFS), so only a
# silent or near-silent file is refused.
MIN_PROMPT_PEAK = 1e-3


@dataclass
class SynthesisConfig:
    # The LLM's sampling settings (SamplingConfig's, with its defaults), flat as in params.
    temperature: float = SamplingConfig.temperature
    top_k: int = SamplingConfig.top_k
    top_p: float = SamplingConfig.top_p
    repetition_window: int = SamplingConfig.repetition_window
    repetition_threshold: float = SamplingConfig.repetition_threshold
    max_tokens_per_char: float = 4.0
    min_tokens_per_char: float = 0.5
    n_steps: int = 10
    cfg_strength: float = 0.7
    noise_scale: float = 1.0
    start_t: float = 0.0  # > 0: start the flow on the path between noise and its prior mu
    sway: float = 0.0  # the Euler steps' time grid (flow.model.euler_steps); 0: uniform
    # The flow's canvas holds only the last this-many seconds of the prompt (None: all of
    # it). The flow's cost grows with its canvas (attention quadratically), and the prompt is
    # about half of a test item's canvas; the LLM still reads the whole prompt.
    flow_prompt_seconds: float | None = None
    # params.yaml `synthesis_checks` (defaults as in the schema): refuse a longer prompt;
    # flag an output shorter than len(text) / max_chars_per_second seconds.
    max_prompt_seconds: float = 15.0
    max_chars_per_second: float = 60.0

    @property
    def sampling(self) -> SamplingConfig:
        """The LLM's sampling settings among these."""
        return SamplingConfig(self.temperature, self.top_k, self.top_p, self.repetition_window,
                              self.repetition_threshold)

    @classmethod
    def from_dict(cls, d: dict) -> SynthesisConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def vocoder_spec(section: dict, vocos_path: str | None) -> dict:
    """params.yaml `vocoder` section (+ the trained checkpoint) -> the spec make_vocoder reads."""
    if section["type"] == "vocos":
        return {"type": "vocos", "path": vocos_path}
    return {"type": "griffinlim", "iters": section["griffinlim_iters"]}


def decoding_settings(vocoder: dict | None, cfg: SynthesisConfig | None = None) -> dict:
    """The settings audio was decoded with, recorded beside it (synthesis.json, then each
    metrics file): the synthesis and synthesis_checks fields (cfg; None for vocoded ground
    truth) and the vocoder's spec. Two runs of the same models under different settings are
    different recipes (evaluate.score.summarize refuses to pool their seeds). A trained
    vocoder's `path` is left out: where its weights sit differs between two clones of one run,
    and which weights they are is a model, recorded no more than the LLM's or the flow's."""
    out = {} if cfg is None else {"synthesis": asdict(cfg)}
    out["vocoder"] = None if vocoder is None else {k: v for k, v in vocoder.items() if k != "path"}
    return out


def make_vocoder(spec: dict):
    """spec {"type": "griffinlim", "iters": n} | {"type": "vocos", "path": final.pt}
    -> callable log-mel (T, 80) -> wav (samples,)."""
    if spec["type"] == "griffinlim":
        from .vocoder.griffinlim import griffin_lim

        iters = int(spec.get("iters", 32))
        return lambda mel: griffin_lim(mel, MelConfig(), n_iter=iters)
    if spec["type"] == "vocos":
        from .vocoder.vocos import load_vocoder

        model = load_vocoder(spec["path"])
        return lambda mel: model(mel[None])[0]
    raise UserError(f"unknown vocoder type {spec['type']!r} (griffinlim | vocos)")


def resolve_spec_paths(spec: dict, spec_path: Path) -> dict:
    """system.json names its checkpoints relative to the project root the pipeline ran in
    (results/checkpoints/...), which is the working directory only when the command runs
    there. Relative paths are resolved against the nearest ancestor of the system
    directory that holds all of them, so `--system /abs/path/to/system` works from any
    directory and an unrelated checkout in the working directory is never picked up.
    Absolute paths, and files that exist nowhere (named as written by the loaders' own
    'checkpoint not found' error), are kept as they are."""
    keys = [k for k in ("tokenizer", "llm", "flow") if isinstance(spec.get(k), str)]
    vocoder = dict(spec.get("vocoder") or {})
    rel = [spec[k] for k in keys if not Path(spec[k]).is_absolute()]
    if isinstance(vocoder.get("path"), str) and not Path(vocoder["path"]).is_absolute():
        rel.append(vocoder["path"])
    if not rel:
        return spec
    system_dir = spec_path.resolve().parent
    for root in (system_dir, *system_dir.parents):
        if all((root / r).exists() for r in rel):
            break
    else:
        return spec
    out = {**spec, **{k: str(root / spec[k]) for k in keys if not Path(spec[k]).is_absolute()}}
    if isinstance(vocoder.get("path"), str) and not Path(vocoder["path"]).is_absolute():
        out["vocoder"] = {**vocoder, "path": str(root / vocoder["path"])}
    return out


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """Split over-long text at sentence ends (then commas) so each chunk fits the LLM."""
    if len(text) <= max_chars:
        return [text]
    parts = [p.strip() for p in re.split(r"(?<=[.!?;])\s+", text) if p.strip()]
    chunks: list[str] = []
    for part in parts:
        while len(part) > max_chars:
            cut = part.rfind(",", 0, max_chars)
            cut = cut if cut > 0 else part.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            chunks.append(part[: cut + 1].strip())
            part = part[cut + 1 :].strip()
        if part:
            chunks.append(part)
    return chunks


def clean_text(text: str, field: str) -> str:
    original, text = text, normalize(text)
    if not text:
        raise UserError(f"{field}: text is empty")
    # Punctuation alone encodes to a few symbols the LLM speaks as a short noise: refused
    # rather than returned as a successful 0.3 s wav.
    if not re.search(r"[a-z]", text):
        raise UserError(f"{field}: {original!r} has no words to speak (only punctuation); give words")
    bad = out_of_vocab(text)
    if bad:
        raise UserError(
            f"{field}: characters outside the vocabulary {''.join(bad)!r}; spell numbers and "
            "symbols as words"
        )
    return text


class System:
    """Tokenizer + LLM + flow + vocoder of one named system, loaded once."""

    def __init__(self, system_dir: str | Path, overrides: dict | None = None):
        from .flow.model import load_flow
        from .llm.model import load_llm
        from .tokenizer.model import load_tokenizer

        system_dir = Path(system_dir)
        spec_path = system_dir / "system.json"
        if not spec_path.exists():
            raise UserError(
                f"{spec_path}: not found; --system must be a trained system directory such as "
                "results/checkpoints/s1234/cascade (run `snakemake` first)"
            )
        self.spec = resolve_spec_paths(json.loads(spec_path.read_text()), spec_path)
        self.name = self.spec["name"]
        self.tokenizer = load_tokenizer(self.spec["tokenizer"])
        self.llm = load_llm(self.spec["llm"])
        self.flow = load_flow(self.spec["flow"])
        if tuple(self.llm.cfg.fsq_levels) != tuple(self.tokenizer.cfg.fsq_levels):
            raise UserError(
                f"{spec_path}: LLM codebook {self.llm.cfg.fsq_levels} does not match the "
                f"tokenizer's {self.tokenizer.cfg.fsq_levels}; retrain the LLM on this tokenizer"
            )
        self.vocoder = make_vocoder(self.spec["vocoder"])
        # synthesis_checks is absent from system.json files written before it existed.
        self.cfg = SynthesisConfig.from_dict(
            {**self.spec.get("synthesis", {}), **self.spec.get("synthesis_checks", {}), **(overrides or {})}
        )

    @classmethod
    def from_modules(cls, name: str, tokenizer, llm, flow, vocoder, cfg: SynthesisConfig) -> System:
        """A system over models already in memory (the learning-curve probe uses the weights
        being trained); llm may be None for token resynthesis."""
        system = cls.__new__(cls)
        system.spec, system.name = {"name": name}, name
        system.tokenizer, system.llm, system.flow, system.vocoder = tokenizer, llm, flow, vocoder
        system.cfg = cfg
        return system

    @property
    def decoding(self) -> dict:
        """The settings this system turns tokens and text into audio with (`decoding_settings`)."""
        return decoding_settings(self.spec.get("vocoder"), self.cfg)

    @torch.no_grad()
    def prompt_features(self, prompt_wav: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (prompt mel (Tp, 80) with Tp a multiple of 4, prompt tokens (Tp/4,))."""
        wav = load_wav(prompt_wav)
        seconds = wav.numel() / 16000
        if seconds > self.cfg.max_prompt_seconds:
            # Refused, not trimmed: cutting the audio would leave the transcript (which the
            # LLM reads as the prompt's words) describing speech that is no longer there.
            raise UserError(
                f"{prompt_wav}: prompt is {seconds:.1f} s, longer than the "
                f"{self.cfg.max_prompt_seconds:g} s allowed (synthesis_checks.max_prompt_seconds); "
                "cut a shorter prompt and give its own transcript"
            )
        peak = float(wav.abs().max())
        if peak < MIN_PROMPT_PEAK:
            # No voice to clone: the untrained-looking output used to come back as a success.
            level = f"{20 * math.log10(peak):.0f} dBFS" if peak > 0 else "all zeros"
            raise UserError(
                f"{prompt_wav}: prompt is silent or nearly ({level} peak, under "
                f"{20 * math.log10(MIN_PROMPT_PEAK):.0f} dBFS); give a recording of the voice"
            )
        mel = log_mel(wav)
        usable = (mel.shape[0] // SUBSAMPLE) * SUBSAMPLE
        if usable < SUBSAMPLE * 5:
            raise UserError(f"{prompt_wav}: prompt too short ({wav.numel() / 16000:.2f} s); use >= 1 s")
        mel = mel[:usable]
        _, indices, _ = self.tokenizer.encode(mel[None], torch.tensor([usable]))
        return mel, indices[0]

    @torch.no_grad()
    def decode(
        self, prompt_mel: torch.Tensor, tokens: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """prompt_mel (Tp, 80) and tokens (Tp/4 + T',) covering prompt + new speech -> log-mel
        of the new speech (4T', 80) from the flow with this system's decoding settings."""
        if self.cfg.flow_prompt_seconds is not None:
            n_prompt = prompt_mel.shape[0] // SUBSAMPLE
            keep = min(n_prompt, max(1, round(self.cfg.flow_prompt_seconds * TOKENS_PER_SECOND)))
            prompt_mel, tokens = prompt_mel[(n_prompt - keep) * SUBSAMPLE :], tokens[n_prompt - keep :]
        vectors = self.tokenizer.fsq.indices_to_vectors(tokens)[None]
        return self.flow.sample(
            vectors, prompt_mel[None], n_steps=self.cfg.n_steps, cfg_strength=self.cfg.cfg_strength,
            generator=generator, noise_scale=self.cfg.noise_scale, start_t=self.cfg.start_t,
            sway=self.cfg.sway,
        )[0]

    def text_ids(self, prompt_text: str, text: str) -> tuple[torch.Tensor, int]:
        """Cleaned prompt text and text to speak -> (the LLM's input ids (L,), how many of
        the last ids are the text to speak)."""
        ids = encode_text(prompt_text + " " + text, self.llm.cfg.text_frontend)
        return torch.tensor(ids), min(len(ids), len(encode_text(text, self.llm.cfg.text_frontend)))

    @torch.no_grad()
    def speech_tokens(
        self, text_ids: torch.Tensor, prompt_tokens: torch.Tensor, n_chars: int,
        generator: torch.Generator | None, n_target_text: int | None = None,
    ) -> torch.Tensor:
        """LLM sampling with this system's decoding settings; the length guards scale with
        the n_chars characters to speak -> new speech tokens (N,)."""
        return self.llm.generate(
            text_ids,
            prompt_tokens,
            self.cfg.sampling,
            max_new_tokens=max(8, int(self.cfg.max_tokens_per_char * n_chars)),
            min_new_tokens=int(self.cfg.min_tokens_per_char * n_chars),
            generator=generator,
            n_target_text=n_target_text,
        )

    @torch.no_grad()
    def target_tokens(self, wav_path: str | Path) -> torch.Tensor:
        """Speech tokens (T',) of a whole utterance, whole 4-frame blocks only."""
        mel = log_mel(load_wav(wav_path))
        usable = max(SUBSAMPLE, (mel.shape[0] // SUBSAMPLE) * SUBSAMPLE)
        _, tokens, _ = self.tokenizer.encode(mel[None, :usable], torch.tensor([usable]))
        return tokens[0]

    @torch.inference_mode()
    def resynthesize(self, prompt_wav: str | Path, target_wav: str | Path, seed: int = 0) -> torch.Tensor:
        """Ground-truth tokens of the target (this system's tokenizer) -> flow, with the
        prompt as voice -> wav (samples,): the ceiling for a perfect LLM."""
        prompt_mel, prompt_tokens = self.prompt_features(prompt_wav)
        tokens = torch.cat([prompt_tokens, self.target_tokens(target_wav)])
        mel = self.decode(prompt_mel, tokens, torch.Generator().manual_seed(seed))
        return self.vocoder(mel)

    # inference_mode, as the LLM's generate: the same bits, less per-operation bookkeeping.
    @torch.inference_mode()
    def synthesize(
        self,
        text: str,
        prompt_wav: str | Path,
        prompt_text: str,
        seed: int = 0,
    ) -> tuple[torch.Tensor, dict]:
        """-> (wav (samples,) float at 16 kHz, info dict with timings and token counts)."""
        text = clean_text(text, "--text")
        prompt_text = clean_text(prompt_text, "--prompt-text")
        t0 = time.perf_counter()
        prompt_mel, prompt_tokens = self.prompt_features(prompt_wav)
        generator = torch.Generator().manual_seed(seed)
        pieces, n_tokens, llm_s, flow_s, voc_s = [], 0, 0.0, 0.0, 0.0
        chunks = split_sentences(text)
        for chunk in chunks:
            ids, n_target = self.text_ids(prompt_text, chunk)
            self._check_context(ids, n_target, prompt_tokens, chunk, prompt_wav)
            t = time.perf_counter()
            new = self.speech_tokens(ids, prompt_tokens, len(chunk), generator, n_target)
            llm_s += time.perf_counter() - t
            n_tokens += len(new)
            t = time.perf_counter()
            mel = self.decode(prompt_mel, torch.cat([prompt_tokens, new]), generator)
            flow_s += time.perf_counter() - t
            t = time.perf_counter()
            pieces.append(self.vocoder(mel) if mel.shape[0] > 0 else torch.zeros(160))
            voc_s += time.perf_counter() - t
        wav = torch.cat(pieces)
        total = time.perf_counter() - t0
        seconds = wav.numel() / 16000
        # The LLM's length guards keep real speech far above this floor (len(text) /
        # max_chars_per_second); below it the output is not the text (a truncated context
        # gave 0.01 s for a sentence). The caller decides: the CLI refuses a single output,
        # the batch form counts such items in synthesis.json.
        min_expected_s = len(text) / self.cfg.max_chars_per_second
        info = {
            "audio_s": seconds,
            "n_chars": len(text),
            "min_expected_s": round(min_expected_s, 3),
            "too_short": seconds < min_expected_s,
            "synth_s": total,
            "rtf": total / max(seconds, 1e-6),
            "llm_s": llm_s,
            "flow_s": flow_s,
            "vocoder_s": voc_s,
            "n_tokens": n_tokens,
            "n_chunks": len(chunks),
        }
        return wav, info

    def _check_context(
        self, ids: torch.Tensor, n_target: int, prompt_tokens: torch.Tensor, chunk: str, prompt_wav
    ) -> None:
        """Refuse a prompt + text that leave the LLM's context (llm.model.max_len) too little
        room for the speech of `chunk`: generation would stop at the context's end and
        return a truncated (or empty) utterance without any error."""
        cfg = self.llm.cfg
        used = self.llm.format.context_used(len(ids), len(prompt_tokens), n_target)
        need = math.ceil(len(chunk) / self.cfg.max_chars_per_second * TOKENS_PER_SECOND)
        if used + need > cfg.max_len:
            raise UserError(
                f"{prompt_wav}: the prompt ({len(prompt_tokens) / TOKENS_PER_SECOND:.1f} s) and "
                f"the text take {used} of the LLM's {cfg.max_len} positions, leaving "
                f"{max(0, cfg.max_len - used)} speech tokens where {len(chunk)} characters need "
                f"at least {need}; use a shorter prompt"
            )
