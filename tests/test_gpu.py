"""The CUDA path: the shared training loop on a GPU and the plan's dry run there.

Skipped where torch sees no GPU (CI, the 2-core machine); scripts/gpu_bench.sh runs them on
a lent GPU machine (`pytest --noconftest`: that machine's copy of the tree has no git, and
the figures guard in conftest.py reads git)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from e2etts.batching import to_device
from e2etts.config import build, load_params
from e2etts.dryrun import check_plan
from e2etts.llm.align import uniform_starts
from e2etts.llm.model import TextToTokenLM, TextToTokenLMConfig
from e2etts.text import VOCAB_SIZE
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig
from e2etts.train import TrainConfig, TrainTask, fit
from toy_tasks import crash_at

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _fixed_batch_task(component: str) -> TrainTask:
    """A default-size component (params.yaml) learning one fixed batch of 3 s utterances
    (random mels, text, codes): every step's loss is on the whole batch."""
    params = load_params(REPO / "params.yaml")
    g = torch.Generator().manual_seed(1)
    B, frames, chars = 8, 300, 45
    tokens = frames // 4
    mel = torch.randn(B, frames, 80, generator=g)
    text = torch.randint(1, VOCAB_SIZE, (B, chars), generator=g)
    codes = torch.randint(0, 1024, (B, tokens), generator=g)
    lens = {n: torch.full((B,), n) for n in (frames, chars, tokens)}
    torch.manual_seed(0)
    tok = SpeechTokenizer(build(SpeechTokenizerConfig, params["tokenizer"]["model"], "tokenizer.model"))
    if component == "tokenizer":
        model = tok
        batch = (mel, lens[frames], text, lens[chars])

        def loss_of(m, b):
            return m.ctc_loss(m(b[0], b[1]), b[2], b[3])
    else:
        model = TextToTokenLM(build(TextToTokenLMConfig, {"fsq_levels": tok.cfg.fsq_levels, **params["llm"]["model"]},
                                    "llm.model"))
        starts = [torch.from_numpy(uniform_starts(tokens, chars))] * B
        batch = model.format.from_padded(text, lens[chars], codes % tok.fsq.codebook_size, lens[tokens],
                                         starts, keys=[str(b) for b in range(B)])

        def loss_of(m, b):
            return m.format.loss(m, b)[0]

    def evaluate(m):
        with torch.no_grad():
            return {"dev_loss": float(loss_of(m, to_device(batch, next(m.parameters()).device)))}

    return TrainTask(kind=component, model=model, dataset=list(range(32)), lengths=[1] * 32,
                     collate=lambda items: batch, loss=lambda m, b: (loss_of(m, b), {}),
                     evaluate=evaluate, export=lambda m: {"model": m.state_dict(), "config": {}})


def _cfg(**kw):
    base = dict(max_steps=60, batch_size=8, lr=1e-3, warmup_steps=5, eval_every=20,
                ckpt_every=20, log_every=10, keep_last=2, progress=False, device="cuda",
                precision="bf16")
    base.update(kw)
    return TrainConfig(**base)


def _last(path):
    """The weights of the run's last step (final.pt holds the best evaluated one)."""
    last = torch.load(path / "last.pt", map_location="cpu", weights_only=False)
    assert last["step"] == 60
    return last["model"]


@pytest.mark.parametrize("component", ["tokenizer", "llm"])
def test_training_on_cuda_learns(tmp_path, component):
    """bf16 training through the shared loop on the GPU: the loss on the batch falls."""
    task = _fixed_batch_task(component)
    first = task.evaluate(task.model.cuda())["dev_loss"]
    last = fit(_fixed_batch_task(component), _cfg(), tmp_path, seed=0)["value"]
    assert last < 0.85 * first, (first, last)


def test_deterministic_training_on_cuda_repeats_bit_for_bit_and_resumes(tmp_path):
    """train.deterministic on the GPU (docs/reproducibility.md): the LLM trained twice gives
    the same weights, and a run killed after its step-40 checkpoint and resumed gives them
    too."""
    cfg = _cfg(deterministic=True)
    fit(_fixed_batch_task("llm"), cfg, tmp_path / "a", seed=0)
    fit(_fixed_batch_task("llm"), cfg, tmp_path / "b", seed=0)
    with pytest.raises(KeyboardInterrupt):  # killed at step 47, after the step-40 checkpoint
        fit(crash_at(_fixed_batch_task("llm"), 47), cfg, tmp_path / "crash", seed=0)
    fit(_fixed_batch_task("llm"), cfg, tmp_path / "crash", seed=0)
    wa, wb, wc = (_last(tmp_path / d) for d in ("a", "b", "crash"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)


def test_plan_check_on_cuda_measures_memory_time_and_flops(tmp_path):
    """The dry run on the GPU at reduced width (config/scale/cpu_dryrun.yaml): allocator
    memory within 25 % of the plan's, a positive step time and FLOPs for each unit."""
    corpus = tmp_path / "LibriTTS"
    for i, spk in enumerate(("19", "26")):
        stem = f"{spk}_198_{i:06d}_000001"
        wav = corpus / "train-clean-100" / spk / "198" / f"{stem}.wav"
        wav.parent.mkdir(parents=True)
        sf.write(wav, 0.3 * np.sin(np.arange(36000) / 24000 * 2 * np.pi * 200), 24000)
        wav.with_name(stem + ".normalized.txt").write_text("A speaker reads a line of the test corpus.\n")
    chars = tmp_path / "chars.yaml"
    chars.write_text(yaml.safe_dump({"data": {"text_frontend": "chars"}}))
    params = load_params(REPO / "params.yaml", [REPO / "config/scale/libritts_gpu.yaml",
                                                REPO / "config/scale/cpu_dryrun.yaml", chars])
    results = check_plan(params, corpus, ["tokenizer", "llm", "joint_e2"], 2, 4.0, device="cuda")
    for r in results:
        assert r["step_s"] > 0 and r["measured"]["flops"] > 0, r["unit"]
        assert r["measured"]["peak"] >= r["measured"]["static"] > 0, r["unit"]
        assert abs(r["ratio"]["static"] - 1) < 0.25, (r["unit"], r["ratio"])
