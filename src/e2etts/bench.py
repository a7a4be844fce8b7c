"""Benchmarks: `python -m e2etts.bench` prints figures measured in one run on this machine.

- matmul peak (fp32, bf16) of this machine, the reference for model-FLOPs utilization
- training throughput per stage (mel frames/s) at the params.yaml model sizes, and MFU
  two ways: `mfu` counts each parameter at the rate it runs (the planner's dense count,
  `plan.flops_per_utterance`, for the bench's batch; attention scores excluded); `mfu_6nd` is
  the shortcut of earlier tables, 6 x all parameters x nominal positions (text + speech
  tokens for the LLM, which runs one more unit per text symbol in the interleaved format;
  mel frames for the flow, whose token encoder runs at a quarter of that rate)
- synthesis cost per stage: LLM decoding with and without the KV cache (and the speed-up),
  one flow-matching Euler step, the vocoder; as real-time factors for 3 s of speech; the
  LLM's KV-cache speed-up again for 10 s of speech
- peak resident memory of the process

Run as a command, it re-executes itself under tcmalloc where set-up installed it, as the
training jobs run (`e2etts/allocator.py`); `LD_PRELOAD=` keeps glibc's malloc.

Models are randomly initialized: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 1024, repeat: int = 10,
                rounds: int = 5) -> float:
    """GFLOP/s of an n x n matmul: the fastest of ``rounds`` rounds of ``repeat`` products.

    The MFU figures divide by it, so it must not read low: one round on a shared machine
    (another job on the other core) once read 72 GFLOP/s where the core gives 86, and put the
    flow's MFU above 1. The fastest round is the closest to what the core can do."""
    if device.type == "cuda":
        n, repeat = 8192, 20
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    seconds = min(_timed(lambda: a @ b, repeat) for _ in range(rounds))
    return 2 * n**3 / seconds / 1e9


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeat: int) -> float:
    fn()
    _sync()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync()
    return (time.perf_counter() - t) / repeat


def _train_step(model, loss_fn, precision: str, device: torch.device):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        with ctx:
            loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def run(params_path: str = "params.yaml", threads: int = 1, repeat: int = 3,
        device: str = "cpu", batch: int = 16) -> dict:
    from .config import build, load_params
    from .distributed import pick_device
    from .flow.model import FlowMatchingConfig, FlowMatchingDecoder
    from .llm.model import TextToTokenLM, TextToTokenLMConfig
    from .plan import Lengths, flops_per_utterance
    from .text import VOCAB_SIZE
    from .tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig
    from .vocoder.griffinlim import griffin_lim
    from .vocoder.vocos import VocosConfig, VocosVocoder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = pick_device(device)
    params = load_params(params_path)
    out: dict = {"threads": threads, "device": str(dev), "batch": batch}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    peak32, peak16 = matmul_peak(torch.float32, dev), matmul_peak(torch.bfloat16, dev)
    out["matmul_gflops"] = {"fp32": peak32, "bf16": peak16}

    B, frames, chars = batch, 300, 45  # a batch of 3 s utterances
    tokens = frames // 4
    mel = torch.randn(B, frames, 80, device=dev)
    mel_lens = torch.full((B,), frames, device=dev)
    text = torch.randint(1, VOCAB_SIZE, (B, chars), device=dev)
    text_lens = torch.full((B,), chars, device=dev)
    codes = torch.randint(0, 1000, (B, tokens), device=dev)
    code_lens = torch.full((B,), tokens, device=dev)

    tok = SpeechTokenizer(build(SpeechTokenizerConfig, params["tokenizer"]["model"], "tokenizer.model"))
    llm = TextToTokenLM(build(TextToTokenLMConfig, {"fsq_levels": tok.cfg.fsq_levels, **params["llm"]["model"]}, "llm.model"))
    flow = FlowMatchingDecoder(build(FlowMatchingConfig, {"fsq_dim": tok.fsq.dim, **params["flow"]["model"]}, "flow.model"))
    tok, llm, flow = tok.to(dev), llm.to(dev), flow.to(dev)
    codes = codes % tok.fsq.codebook_size
    vectors = tok.fsq.indices_to_vectors(codes)
    crop = params["flow"]["crop_tokens"] or tokens
    from .llm.align import uniform_starts

    starts = [torch.from_numpy(uniform_starts(tokens, chars))] * B  # symbols spread evenly over the tokens
    llm_batch = llm.format.from_padded(text, text_lens, codes, code_lens, starts, keys=[str(b) for b in range(B)])

    def llm_loss():
        return llm.format.loss(llm, llm_batch)[0]

    stages = {
        "tokenizer": (tok, lambda: tok.ctc_loss(tok(mel, mel_lens), text, text_lens), B * frames, B * tokens),
        "llm": (llm, llm_loss, B * frames, B * (tokens + chars)),
        "flow": (flow, lambda: flow.loss(mel[:, : 4 * crop], torch.full((B,), 4 * crop, device=dev),
                                           vectors[:, :crop], torch.full((B,), crop, device=dev)), B * 4 * crop, B * 4 * crop),
    }
    precision = {k: params[k]["train"]["precision"] for k in stages}
    # One bench item at every rate the planner counts: the LLM runs all its interleaved
    # units (text, one symbol per character, speech tokens, the end), the flow its crop.
    lengths = Lengths(mel=frames, tokens=tokens, text=chars, units=llm_batch["kinds"].shape[1],
                      flow_tokens=crop)
    out["train"] = {}
    for name, (model, loss_fn, mel_frames, positions) in stages.items():
        seconds = _timed(_train_step(model, loss_fn, precision[name], dev), repeat)
        n_params = sum(p.numel() for p in model.parameters())
        step_flops = B * flops_per_utterance(name, model, lengths, "train")["dense"]
        peak = peak16 if precision[name] == "bf16" else peak32
        out["train"][name] = {
            "params_m": n_params / 1e6,
            "step_s": seconds,
            "mel_frames_per_s": mel_frames / seconds,
            "step_gflop": step_flops / 1e9,
            "mfu": step_flops / seconds / (peak * 1e9),
            "mfu_6nd": 6 * n_params * positions / seconds / (peak * 1e9),
            "precision": precision[name],
        }

    # Synthesis of 3 s of speech (75 tokens) after a 20-token prompt.
    syn = params["synthesis"]
    text1 = text[0]
    prompt = codes[0, :20]
    n_new = 75
    llm.eval()
    flow.eval()
    with torch.no_grad():
        def gen(cache: bool, text_ids=text1, prompt_ids=prompt, n=n_new):
            # <eos> (the interleaved LLM's <end>) held off, so exactly n tokens come out.
            eos_bias = float(llm.head.bias[llm.eos_id])
            llm.head.bias[llm.eos_id] = -1e4
            try:
                return llm.generate(text_ids, prompt_ids, max_new_tokens=n, min_new_tokens=n,
                                    use_kv_cache=cache, generator=torch.Generator(dev).manual_seed(0))
            finally:
                llm.head.bias[llm.eos_id] = eos_bias

        t_cache = _timed(lambda: gen(True), 1)
        t_nocache = _timed(lambda: gen(False), 1)
        # 10 s of speech (250 tokens) for 150 text symbols after a 3 s (75-token) prompt:
        # the recompute path's cost grows with the square of the length, the cache's linearly.
        long_text = torch.randint(1, VOCAB_SIZE, (150,), device=dev)
        long_prompt = torch.randint(0, tok.fsq.codebook_size, (75,), device=dev)
        t10_cache = _timed(lambda: gen(True, long_text, long_prompt, 250), 1)
        t10_nocache = _timed(lambda: gen(False, long_text, long_prompt, 250), 1)
        all_vec = tok.fsq.indices_to_vectors(codes[:1, : 20 + n_new])
        t_flow = _timed(lambda: flow.sample(all_vec, mel[:1, :80], n_steps=1, cfg_strength=syn["cfg_strength"]), 2)
        gl_iters = params["vocoder"]["griffinlim_iters"]
        t_gl = _timed(lambda: griffin_lim(mel[0].cpu(), n_iter=gl_iters), 2)
        vocos = VocosVocoder(VocosConfig()).to(dev).eval()
        t_vocos = _timed(lambda: vocos(mel[:1]), 2)
    audio_s = n_new / 25
    out["synthesis_3s"] = {
        "llm_kv_cache_rtf": t_cache / audio_s,
        "llm_no_cache_rtf": t_nocache / audio_s,
        "kv_cache_speedup": t_nocache / t_cache,
        "flow_per_euler_step_rtf": t_flow / audio_s,
        "flow_rtf_at_n_steps": t_flow * syn["n_steps"] / audio_s,
        "griffinlim_rtf": t_gl / audio_s,
        "vocos_rtf": t_vocos / audio_s,
        "total_rtf_griffinlim": (t_cache + t_flow * syn["n_steps"] + t_gl) / audio_s,
    }
    out["llm_10s"] = {
        "llm_kv_cache_rtf": t10_cache / 10.0,
        "llm_no_cache_rtf": t10_nocache / 10.0,
        "kv_cache_speedup": t10_nocache / t10_cache,
    }
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def main() -> None:
    from .allocator import reexec_bench

    reexec_bench(sys.argv[1:])  # time the steps under the training jobs' allocator
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    result = run(args.params, args.threads, device=args.device, batch=args.batch)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        from .atomic import write_text

        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
