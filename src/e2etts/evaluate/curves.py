"""Learning curves: held-out WER/SIM of a component *as it trained*.

docs/feasibility.md showed training loss saying "done" while unseen sentences came out as
babble, so the LLM and the flow are judged on speech, not loss. Every
``curves.every_steps`` the training loop exports the weights (train.TrainConfig
snapshot_every: <checkpoint dir>/snapshots/step_<N>.pt, listed with the training minutes in
the log directory's snapshot_log.tsv); `learning_curve` (``e2etts learning-curve``, its own
Snakemake rule) hands each snapshot to a `HeldOutProbe`, which synthesizes a fixed dev list
(unseen sentences; seen and unseen voices) and scores it with the judges. Rows go to
``curve_log.tsv`` in results/train_logs/s<seed>/<system>/<component>/ (step, training
minutes, WER, SIM, PER, probe seconds), which `dvc plots` and the report draw.

The probes run apart from training, so what they read (synthesis, vocoder, the probes'
judge) is not a training input: changing a decoding key re-scores the snapshots and
re-synthesizes the systems, and trains nothing again.

- LLM probe: text + prompt -> the LLM snapshot -> a fixed, already trained flow -> vocoder.
- Flow probe: ground-truth tokens of the target (the fixed tokenizer) -> the flow snapshot.
Besides Whisper's WER and resemblyzer's SIM, each row has ``dev_per``: the phone error of
the synthesized audio as read back by the cascade tokenizer's own CTC recognizer (audio
-> log-mel -> tokenizer -> CTC). Whisper tiny.en hallucinates fluent text on babble, so
WER above ~90 % swings by tens of points between near-identical models; the in-domain
recognizer is a steadier ranking signal until speech becomes intelligible (it is a probe
statistic, never the evaluation's judge).
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


def snapshot_rows(checkpoint_dir: str | Path, log_dir: str | Path) -> list[dict]:
    """The snapshots one training run took, in step order: [{"step", "train_min", "path"}].

    Read from the log directory's snapshot log, which a fresh run starts again and a resumed
    run cuts back to its checkpoint: exactly this run's points. A missing log or file, or a
    log that does not start at step 0, is an error naming it (the run was trained without
    snapshots, or its directory was tampered with)."""
    import csv

    from ..train_log import SNAPSHOT_LOG

    log = Path(log_dir) / SNAPSHOT_LOG
    if not log.exists():
        raise UserError(f"{log}: no snapshot log; the run was trained without snapshots "
                        "(train.snapshot_every / curves.every_steps)")
    with log.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    steps = [int(r["step"]) for r in rows]
    if not steps or steps[0] != 0 or steps != sorted(set(steps)):
        raise UserError(f"{log}: snapshot steps {steps} do not rise from step 0")
    out = []
    for row in rows:
        path = Path(checkpoint_dir) / row["snapshot"]
        if not path.exists():
            raise UserError(f"{log}: step {row['step']}'s snapshot {path} is missing")
        out.append({"step": int(row["step"]), "train_min": float(row["train_min"]), "path": path})
    return out


def learning_curve(probe: HeldOutProbe, checkpoint_dir: str | Path, log_dir: str | Path,
                   out: str | Path) -> pd.DataFrame:
    """Score every snapshot of one run with `probe` -> curve_log.tsv at `out` (written
    whole, then renamed) and its rows (step, train_min, dev_wer, dev_sim, dev_per, probe_s)."""
    from ..atomic import atomic_path
    from ..flow.model import load_flow
    from ..llm.model import load_llm
    from ..train_log import TsvLog

    load = load_llm if probe.mode == "llm" else load_flow
    rows = []
    for snap in snapshot_rows(checkpoint_dir, log_dir):
        model = load(snap["path"]).eval()
        with torch.no_grad():
            figures = probe(model)
        rows.append({"step": snap["step"], "train_min": snap["train_min"], **figures})
        print(f"[curve] {probe.mode} step {snap['step']}: "
              + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()), flush=True)
    with atomic_path(out) as tmp:
        log = TsvLog(tmp, None)
        for row in rows:
            log.write(row)
    return pd.DataFrame(rows)
