"""Learning curves: held-out WER/SIM of a component *while it trains*.

docs/feasibility.md showed training loss saying "done" while unseen sentences came out as
babble, so the LLM and the flow are judged on speech, not loss: every
``curves.every_steps`` the training loop hands the current weights to a `HeldOutProbe`,
which synthesizes a fixed dev list (unseen sentences; seen and unseen voices), and scores
it with the same WER and SIM judges as the test evaluation. Rows go to
``curve_log.tsv`` in results/train_logs/<system>/<component>/ (step, training minutes,
WER, SIM), which `dvc plots` and the report draw.

- LLM probe: text + prompt -> current LLM -> a fixed, already trained flow -> vocoder.
- Flow probe: ground-truth tokens of the target (the fixed tokenizer) -> current flow.
Besides Whisper's WER and resemblyzer's SIM, each row has ``dev_per``: the phone error of
the synthesized audio as read back by the cascade tokenizer's own CTC recognizer (audio
-> log-mel -> tokenizer -> CTC). Whisper tiny.en hallucinates fluent text on babble, so
WER above ~90 % swings by tens of points between near-identical models; the in-domain
recognizer is a steadier ranking signal until speech becomes intelligible (it is a probe
statistic, never the evaluation's judge).
The probe runs in eval mode on the main process, outside the training clock, and never
touches the training RNG stream (same seed -> same numbers with or without curves).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..audio import load_wav, log_mel
from ..batching import device_of
from ..errors import UserError
from ..text import encode_text
from ..tokenizer.model import SUBSAMPLE
from .asr import corpus_wer


class HeldOutProbe:
    """Synthesize + score a fixed dev list with the weights being trained.

    mode: "llm" (full synthesis, flow fixed) or "flow" (resynthesis from ground-truth
    tokens). items: DataFrame with the test-list columns (evaluate.items.ITEM_COLUMNS).
    """

    def __init__(
        self,
        mode: str,
        items: pd.DataFrame,
        tokenizer_path: str | Path,
        flow_path: str | Path | None,
        vocoder_spec: dict,
        synthesis: dict,
        eval_section: dict,
        seed: int = 0,
        *,
        text_frontend: str,
        asr_model: str | None = "tiny.en",
        asr_beam_size: int = 1,
    ):
        from ..synthesis import SynthesisConfig, make_vocoder
        from ..tokenizer.model import load_tokenizer
        from .asr import WERJudge
        from .sim import SIMJudge

        if mode not in ("llm", "flow"):
            raise UserError(f"learning curves exist for the llm and the flow, not {mode!r}")
        if mode == "llm" and flow_path is None:
            raise UserError("the LLM learning curve needs a trained flow (--curve-flow)")
        self.mode = mode
        self.items = items.reset_index(drop=True)
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.flow = None
        if flow_path is not None:
            from ..flow.model import load_flow

            self.flow = load_flow(flow_path)
        self.vocoder = make_vocoder(vocoder_spec)
        self.cfg = SynthesisConfig.from_dict(synthesis)
        self.seed = seed
        self.text_frontend = text_frontend
        # The probes' own (cheap) judge, curves.asr_model; None borrows the evaluation's.
        self.wer_judge = WERJudge.from_params(
            eval_section, model=asr_model, beam_size=asr_beam_size if asr_model else None
        )
        self.sim_judge = SIMJudge(eval_section["sim_backend"])
        self._prompt_emb: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def _wav(self, model: torch.nn.Module, row, i: int) -> torch.Tensor:
        from ..synthesis import System

        if self.mode == "llm":
            system = System.from_modules("probe", self.tokenizer, model, self.flow, self.vocoder, self.cfg)
            wav, _ = system.synthesize(row.target_text, row.prompt_wav, row.prompt_text, seed=self.seed + i)
            return wav
        system = System.from_modules("probe", self.tokenizer, None, model, self.vocoder, self.cfg)
        return system.resynthesize(row.prompt_wav, row.target_wav, seed=self.seed + i)

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        """model: the LLM (TextToTokenLM) or flow (FlowMatchingDecoder) being trained ->
        {"dev_wer", "dev_sim", "dev_per", "probe_s"} over the dev list."""
        start = time.perf_counter()
        if device_of(model).type != "cpu":  # synthesis runs on the CPU: a CPU copy of the weights
            model = copy.deepcopy(model).cpu()
        refs, hyps, sims, phone_refs, phone_hyps = [], [], [], [], []
        for i, row in enumerate(self.items.itertuples()):
            wav = self._wav(model, row, i).float()
            phone_refs.append(encode_text(row.target_text, self.text_frontend))
            phone_hyps.append(read_phones(self.tokenizer, wav))
            wav = wav.numpy()
            refs.append(row.target_text)
            hyps.append(self.wer_judge.transcribe(wav) if wav.size > 1600 else "")
            if row.prompt_wav not in self._prompt_emb:
                self._prompt_emb[row.prompt_wav] = self.sim_judge.embed(load_wav(row.prompt_wav).numpy())
            sims.append(self.sim_judge.cosine(self.sim_judge.embed(wav), self._prompt_emb[row.prompt_wav]))
        return {
            "dev_wer": corpus_wer(refs, hyps),
            "dev_sim": float(np.mean(sims)),
            "dev_per": symbol_error_rate(phone_refs, phone_hyps),
            "probe_s": round(time.perf_counter() - start, 1),
        }


@torch.no_grad()
def read_phones(tokenizer, wav: torch.Tensor) -> list[int]:
    """wav (samples,) at 16 kHz -> text ids the tokenizer's CTC head recognizes."""
    mel = log_mel(wav)
    if mel.shape[0] < SUBSAMPLE:
        return []
    was_training = tokenizer.training
    tokenizer.eval()
    try:
        out = tokenizer(mel[None], torch.tensor([mel.shape[0]]))
    finally:
        tokenizer.train(was_training)
    return tokenizer.greedy_ctc_decode(out)[0]


def symbol_error_rate(refs: list[list[int]], hyps: list[list[int]]) -> float:
    """Edit distance over symbols (a phone may be several characters) / reference symbols;
    an empty hypothesis counts as all deletions."""
    import jiwer

    def words(ids: list[int]) -> str:
        return " ".join(str(int(i)) for i in ids)

    # jiwer rejects empty strings; "-1" never matches a real id (one insertion at most).
    return float(jiwer.wer([words(r) for r in refs], [words(h) or "-1" for h in hyps]))


def build_probe(mode: str, curves: dict, params: dict, tokenizer: str, flow: str | None,
                items_path: str, text_frontend: str) -> HeldOutProbe:
    """The probe for one component from the params sections (curves, synthesis, eval,
    vocoder) and the fixed dev list (`data/manifests/dev_items.tsv`, rule make_dev_items:
    `e2etts make-items` over the dev manifest). text_frontend: the features' own (no default
    here to disagree with the schema's)."""
    from ..synthesis import vocoder_spec

    items = pd.read_csv(items_path, sep="\t", keep_default_na=False)
    n = int(curves["n_items"])
    if len(items) < n:
        raise UserError(f"{items_path}: {len(items)} dev items, curves.n_items asks for {n}")
    if params["vocoder"]["type"] != "griffinlim":
        raise UserError("learning curves use the Griffin-Lim vocoder (vocoder.type: griffinlim)")
    return HeldOutProbe(
        mode, items.head(n), tokenizer, flow, vocoder_spec(params["vocoder"], None),
        params["synthesis"], params["eval"], seed=int(params["seed"]),
        text_frontend=text_frontend, asr_model=curves["asr_model"],
        asr_beam_size=int(curves["asr_beam_size"]),
    )
