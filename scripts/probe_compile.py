"""torch.compile against eager for each component's training step on CPU (issue 18 lever).

Builds the three models at params.yaml sizes with the batch shapes of `python -m e2etts.bench`
(random weights and inputs: speed does not depend on them), then times, per component, the
eager step and the `torch.compile`d step (the same wrapping `train.compile: true` does) in
alternation after warm-up, and prints one JSON line per component: compile time, median step
seconds of each, their ratio, and whether the first-step losses agree.

    python scripts/probe_compile.py --threads 1 --steps 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each variant")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", nargs="*", default=["tokenizer", "llm", "flow"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from e2etts.config import build, load_params
    from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
    from e2etts.llm.align import uniform_starts
    from e2etts.llm.model import TextToTokenLM, TextToTokenLMConfig
    from e2etts.text import VOCAB_SIZE
    from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig

    params = load_params(args.params)
    B, frames, chars = args.batch, 300, 45
    tokens = frames // 4

    def inputs():
        torch.manual_seed(0)
        mel = torch.randn(B, frames, 80)
        text = torch.randint(1, VOCAB_SIZE, (B, chars))
        return mel, text

    def build_stage(name):
        """-> (model, loss(model)) built from the same seed each time."""
        torch.manual_seed(0)
        mel, text = inputs()
        lens = torch.full((B,), frames)
        text_lens = torch.full((B,), chars)
        tok = SpeechTokenizer(build(SpeechTokenizerConfig, params["tokenizer"]["model"], "tokenizer.model"))
        codes = torch.randint(0, tok.fsq.codebook_size, (B, tokens))
        code_lens = torch.full((B,), tokens)
        if name == "tokenizer":
            return tok, lambda m: m.ctc_loss(m(mel, lens), text, text_lens)
        if name == "llm":
            llm = TextToTokenLM(build(TextToTokenLMConfig, {"fsq_levels": tok.cfg.fsq_levels, **params["llm"]["model"]},
                                      "llm.model"))
            starts = [torch.from_numpy(uniform_starts(tokens, chars))] * B
            batch = llm.format.from_padded(text, text_lens, codes, code_lens, starts, keys=[str(b) for b in range(B)])
            return llm, lambda m: m.format.loss(m, batch)[0]
        flow = FlowMatchingDecoder(build(FlowMatchingConfig, {"fsq_dim": tok.fsq.dim, **params["flow"]["model"]},
                                         "flow.model"))
        crop = params["flow"].get("crop_tokens", 0) or tokens
        vectors = tok.fsq.indices_to_vectors(codes)

        def flow_loss(m):
            torch.manual_seed(1)  # the flow loss samples noise and times
            return m.loss(mel[:, : 4 * crop], torch.full((B,), 4 * crop), vectors[:, :crop], torch.full((B,), crop))
        return flow, flow_loss

    class LossOf(torch.nn.Module):
        """The loss as a module's forward: what torch.compile compiles (train.py compiles the
        task's training wrapper the same way; a compiled model's other methods stay eager)."""

        def __init__(self, model, loss_fn):
            super().__init__()
            self.model, self.loss_fn = model, loss_fn

        def forward(self):
            loss = self.loss_fn(self.model)
            return loss[0] if isinstance(loss, tuple) else loss

    def make_step(model, loss_fn, compiled):
        wrapper = LossOf(model, loss_fn)
        target = torch.compile(wrapper) if compiled else wrapper
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            loss = target()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())
        return step

    for name in args.only:
        eager_model, loss_fn = build_stage(name)
        comp_model, loss_fn_c = build_stage(name)
        eager, comp = make_step(eager_model, loss_fn, False), make_step(comp_model, loss_fn_c, True)
        first_eager = eager()
        t = time.perf_counter()
        first_comp = comp()
        compile_s = time.perf_counter() - t
        comp()  # a second call may recompile (dynamic shapes, backward graph)
        eager_s, comp_s = [], []
        for _ in range(args.steps):
            for fn, times in ((eager, eager_s), (comp, comp_s)):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        print(json.dumps({
            "component": name, "threads": args.threads, "compile_first_step_s": round(compile_s, 1),
            "eager_step_s": round(statistics.median(eager_s), 4), "compiled_step_s": round(statistics.median(comp_s), 4),
            "eager_over_compiled": round(statistics.median(eager_s) / statistics.median(comp_s), 3),
            "first_loss_eager": first_eager, "first_loss_compiled": first_comp,
        }), flush=True)


if __name__ == "__main__":
    main()
