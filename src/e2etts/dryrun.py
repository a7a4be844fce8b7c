"""Dry run of the plan (`e2etts plan-check`): one measured training step per component and
end-to-end stage on real audio in the LibriTTS layout, next to the plan's estimate for the
same shapes.

The units run one after another in a fresh subprocess (`python -m e2etts.dryrun`, one
torch thread; one process, so torch is imported once), each mirroring train.fit's step: forward under the section's precision, zero_grad, backward, clip,
AdamW step. Step 1 allocates AdamW's moments; step 2, the steady state every later step is
in, is measured by the process's resident set: Linux's peak (VmHWM) is reset through
/proc/self/clear_refs before the forward and before the backward. glibc is told to return
freed memory at once (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), so the resident set
follows live tensors. Three figures are compared with the plan (plan.stage_estimate, CPU
kernels, nproc 1):

- static: resident growth from before the models were built to the start of step 2
  (weights, AdamW moments and step 1's gradients, which train.fit frees only after the
  next forward) against weights + gradients + AdamW;
- activations: growth during step 2's forward, against the activation model (plus bf16
  weight copies under bf16 autocast);
- peak: the highest resident set of step 2 above the start, against the plan's total.

A third step runs under torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions,
attention) for the FLOPs next to the plan's.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from .errors import UserError

UNITS = ("tokenizer", "llm", "flow", "reward", "joint_e1", "joint_e2")
# The params section whose `train` each unit uses (joint_e2: the full variant, flow and
# reward model both frozen).
TRAIN_SECTION = {"tokenizer": "tokenizer", "llm": "llm", "flow": "flow", "reward": "reward",
                 "joint_e1": "joint_e1", "joint_e2": "joint_e2_full"}
CLEAR_REFS = "/proc/self/clear_refs"


# ---- measurement (child process) -----------------------------------------------------------

def resident_bytes() -> int:
    """This process's resident set now, in bytes (/proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    with open(CLEAR_REFS, "w") as fh:
        fh.write("5")  # resets VmHWM to the current resident set (Linux >= 4.0)


def _peak() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def load_batch(corpus: Path, batch: int, seconds: float, frontend: str) -> dict:
    """The first `batch` utterances (by id) of a LibriTTS-layout directory, each tiled or
    cut to `seconds` -> mel (B, T, 80), mel_lens (B,), text (B, L), text_lens (B,),
    speaker names, utt_ids."""
    import torch

    from .audio import load_wav, log_mel
    from .batching import pad
    from .data.readers import read_libritts
    from .text import encode_text

    rows = read_libritts(corpus).sort_values("utt_id").head(batch)
    if len(rows) < batch:
        raise UserError(f"{corpus}: {len(rows)} utterances, the dry run asked for {batch}")
    mels, texts = [], []
    n = int(seconds * 16000)
    for row in rows.itertuples():
        wav = load_wav(row.wav)
        wav = wav.repeat(-(-n // wav.numel()))[:n]  # tile a short clip, cut a long one
        mels.append(log_mel(wav))
        texts.append(torch.tensor(encode_text(row.text, frontend), dtype=torch.long))
    mel, mel_lens = pad(mels)
    text, text_lens = pad(texts)
    return {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens,
            "speakers": list(rows.speaker), "utt_ids": list(rows.utt_id)}


def build_unit(unit: str, params: dict, data: dict, device: str = "cpu"):
    """-> (module holding the trainable parameters, loss(module) -> scalar, shapes dict).
    The batch is drawn on the CPU (the same random codes on any device), then the models
    and every tensor the loss reads move to `device`."""
    import torch

    from .batching import to_device
    from .config import build
    from .joint.e1 import JointE1, JointE1Config, build_models
    from .joint.e2 import JointE2, JointE2Config
    from .llm.align import uniform_starts
    from .tokenizer.model import token_lengths

    speakers = {s: i for i, s in enumerate(sorted(set(data["speakers"])))}
    frontend = params["data"]["text_frontend"]
    mel, mel_lens = data["mel"], data["mel_lens"]
    stats = (mel.reshape(-1, mel.shape[-1]).mean(0), mel.reshape(-1, mel.shape[-1]).std(0))
    with torch.device(device):  # weights made where they run (a 2.3 B-parameter E1 on a GPU)
        tokenizer, flow, llm, reward = build_models(params, len(speakers), stats, frontend)
    text, text_lens = data["text"], data["text_lens"]
    speaker = torch.tensor([speakers[s] for s in data["speakers"]])
    token_lens = token_lengths(mel_lens)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, tokenizer.fsq.codebook_size, (len(mel), int(token_lens.max())), generator=g)
    interleaved = llm.format.aligned  # the interleaved format: its units outnumber text + tokens
    # Speech tokens are random codes: memory and FLOPs depend on shapes, not on values.
    starts = [torch.from_numpy(uniform_starts(int(s), int(n))) for s, n in zip(token_lens, text_lens, strict=True)]
    text_cpu, text_lens_cpu, tokens_cpu, token_lens_cpu = text, text_lens, tokens, token_lens

    def llm_batch():
        # keys fix the prompt split per utterance, so both measured steps see the same shapes.
        return to_device(llm.format.from_padded(text_cpu, text_lens_cpu, tokens_cpu, token_lens_cpu,
                                                  starts, keys=data["utt_ids"]), device)

    S, L = int(token_lens.max()), int(text_lens.max())
    shapes = {"mel": int(mel.shape[1]), "tokens": S, "text": L, "units": L + 1 + S, "flow_tokens": S}
    if interleaved:
        shapes["units"] = int(llm_batch()["kinds"].shape[1])
    tokenizer, flow, llm, reward = (m.to(device) for m in (tokenizer, flow, llm, reward))
    mel, mel_lens, text, text_lens, speaker, tokens, token_lens = to_device(
        (mel, mel_lens, text, text_lens, speaker, tokens, token_lens), torch.device(device))
    vectors = tokenizer.fsq.indices_to_vectors(tokens)
    if unit == "tokenizer":
        return tokenizer, lambda m: m.ctc_loss(m(mel, mel_lens), text, text_lens), shapes
    if unit == "llm":
        batch = llm_batch()
        return llm, lambda m: m.format.loss(m, batch)[0], shapes
    if unit == "flow":
        crop = int(params["flow"]["crop_tokens"])
        f_mel, f_lens, f_vec, f_tok = mel, mel_lens, vectors, token_lens
        if crop and S > crop:  # the first window: its shapes are what any window has
            f_mel, f_vec = mel[:, : 4 * crop], vectors[:, :crop]
            f_lens, f_tok = mel_lens.clamp(max=4 * crop), token_lens.clamp(max=crop)
        shapes["flow_tokens"] = int(f_vec.shape[1])
        return flow, lambda m: m.loss(f_mel, f_lens, f_vec, f_tok, generator=torch.Generator(device).manual_seed(1)), shapes
    if unit == "reward":
        return reward, lambda m: m.loss(m(vectors, token_lens), token_lens, text, text_lens, speaker)[0], shapes
    if unit == "joint_e1":
        cfg = build(JointE1Config, params["joint_e1"]["objective"], "joint_e1.objective")
        crop = cfg.flow_crop_tokens
        shapes["flow_tokens"] = min(S, crop) if crop else S
        if interleaved:  # E1 draws its own prompt split: plan for the longest (k = 0)
            shapes["units"] = 2 * L + 1 + S
        batch = {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens,
                 "speaker": speaker, "utt_ids": data["utt_ids"]}
        return JointE1(tokenizer, flow, llm, reward, cfg), lambda m: m(batch)[0], shapes
    if unit == "joint_e2":
        cfg = build(JointE2Config, params["joint_e2_full"]["objective"], "joint_e2_full.objective")
        batch = {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens,
                 "tokens": tokens, "token_lens": token_lens, "speaker": speaker, "llm": llm_batch()}
        return JointE2(llm, flow, reward, cfg), lambda m: m(batch)[0], shapes
    raise UserError(f"plan-check: unknown unit {unit!r} (one of {', '.join(UNITS)})")


def training_step(model, loss_fn, optimizer, cfg, device_type: str, reset_peak, read_peak):
    """train.fit's step for a measured unit -> step(phases=None). With a dict, the step
    records the memory peak of its forward and of its backward (read_peak after reset_peak:
    the resident set on the CPU, the caching allocator on a GPU)."""
    import torch

    def step(phases: dict | None = None) -> None:
        # The same random draws every step (E1's prompt split, crops, dropout): the same
        # shapes, so no step meets a kernel shape the warm-up did not.
        torch.manual_seed(0)
        if phases is not None:
            reset_peak()
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss = loss_fn(model)
        if phases is not None:
            phases["forward_peak"] = read_peak()
            reset_peak()
        optimizer.zero_grad(set_to_none=True)  # after the forward, as train.fit does
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if phases is not None:
            phases["backward_peak"] = read_peak()

    return step


def measure(spec: dict) -> dict:
    """One unit, in this process: two steps measured as the module docstring says."""
    import gc

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .train import TrainConfig, make_optimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    params, unit = spec["params"], spec["unit"]
    train = {k: v for k, v in params[TRAIN_SECTION[unit]]["train"].items()
             if k in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**train)
    data = load_batch(Path(spec["corpus"]), spec["batch"], spec["seconds"],
                      params["data"]["text_frontend"])
    # Warm-up: the same unit, one step, then freed. The first use of each kernel at each
    # shape (oneDNN's JIT primitives, MKL and SDPA buffers, AdamW) maps code and workspace
    # for the process's life; without this it would land in the measured growth.
    model, loss_fn, _ = build_unit(unit, params, data)
    optimizer = make_optimizer(model, cfg)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        loss = loss_fn(model)
    loss.backward()
    optimizer.step()
    del model, loss_fn, optimizer, loss
    gc.collect()

    start = resident_bytes()
    model, loss_fn, shapes = build_unit(unit, params, data)
    model.train()
    optimizer = make_optimizer(model, cfg)
    step = training_step(model, loss_fn, optimizer, cfg, "cpu", _reset_peak, _peak)
    step()
    gc.collect()
    static = resident_bytes()
    phases: dict = {}
    step(phases)
    with FlopCounterMode(display=False) as counter:
        step()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "unit": unit, "shapes": shapes, "batch": spec["batch"], "precision": cfg.precision,
        "params": sum(p.numel() for p in model.parameters()), "trainable_params": trainable,
        "measured": {
            "static": static - start,
            "activations": phases["forward_peak"] - static,
            "peak": max(phases["forward_peak"], phases["backward_peak"]) - start,
            "flops": counter.get_total_flops(),
        },
    }


def measure_cuda(spec: dict) -> dict:
    """One unit on a CUDA device: memory from the caching allocator (exact, so no warm-up
    model is needed: two warm-up steps on the measured one allocate AdamW's moments and the
    kernels' workspaces), step time as the median of `timed_steps` synchronized steps, and
    model-FLOPs utilization against the card's bf16 peak and the matmul peak measured here."""
    import gc
    import statistics
    import time

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .bench import matmul_peak
    from .train import TrainConfig, make_optimizer

    torch.set_num_threads(8)
    torch.manual_seed(0)
    params, unit, dev = spec["params"], spec["unit"], torch.device("cuda")
    train = {k: v for k, v in params[TRAIN_SECTION[unit]]["train"].items()
             if k in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**train)
    data = load_batch(Path(spec["corpus"]), spec["batch"], spec["seconds"],
                      params["data"]["text_frontend"])
    gc.collect()
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated(dev)
    model, loss_fn, shapes = build_unit(unit, params, data, "cuda")
    model = model.to(dev).train()  # E1's and E2's own buffers (their step counters) too
    optimizer = make_optimizer(model, cfg)
    step = training_step(model, loss_fn, optimizer, cfg, "cuda",
                         lambda: torch.cuda.reset_peak_memory_stats(dev),
                         lambda: torch.cuda.max_memory_allocated(dev))
    step()
    step()
    torch.cuda.synchronize(dev)
    static = torch.cuda.memory_allocated(dev) - start
    phases: dict = {}
    step(phases)
    seconds = []
    for _ in range(spec.get("timed_steps", 5)):
        torch.cuda.synchronize(dev)
        t = time.perf_counter()
        step()
        torch.cuda.synchronize(dev)
        seconds.append(time.perf_counter() - t)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step_s = statistics.median(seconds)
    peak_bf16 = matmul_peak(torch.bfloat16, dev) * 1e9
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "unit": unit, "device": torch.cuda.get_device_name(dev), "shapes": shapes,
        "batch": spec["batch"], "precision": cfg.precision,
        "params": sum(p.numel() for p in model.parameters()), "trainable_params": trainable,
        "measured": {
            "static": static,
            "activations": phases["forward_peak"] - start - static,
            "peak": max(phases["forward_peak"], phases["backward_peak"]) - start,
            "flops": flops,
        },
        "step_s": step_s, "step_s_all": seconds,
        "tflops": flops / step_s / 1e12, "matmul_bf16_tflops": peak_bf16 / 1e12,
        "mfu_measured_peak": flops / step_s / peak_bf16,
    }


# ---- the plan's side and the comparison ----------------------------------------------------

def estimate(unit: str, params: dict, result: dict, device: str = "cpu") -> dict:
    """The plan's figures for the measured unit's shapes: `device`'s kernels, one process."""
    from .plan import (
        CARDS,
        Assumptions,
        Lengths,
        build_meta_models,
        pipeline_stages,
        stage_estimate,
    )

    stage = next(s for s in pipeline_stages(params) if s.train_section == TRAIN_SECTION[unit])
    n_speakers = result["n_speakers"]
    a = Assumptions(device=device, n_speakers=n_speakers)
    models = build_meta_models(params, n_speakers, params["data"]["text_frontend"])
    lengths = Lengths(**result["shapes"])
    sized = copy.deepcopy(params)
    sized[stage.train_section]["train"]["batch_size"] = result["batch"]
    est = stage_estimate(stage, sized, models, a, nproc=1, lengths_mean=lengths,
                         lengths_max=lengths, batch_per_device=result["batch"])
    m = est["memory"]
    out = {
        "static": m["weights"] + m["grads"] + m["adamw"],
        "activations": m["activations"] + m["autocast_copies"],
        "peak": m["total"],
        "flops": est["flops_per_step"],
        "params": est["params"],
    }
    if device == "cuda":  # the step time the plan's hours rest on (its MFU on its card)
        out["step_s"] = est["flops_per_step"] / (a.mfu * CARDS[a.card]["bf16_tflops"] * 1e12)
        out["mfu"] = a.mfu
    return out


def check_plan(params: dict, corpus: Path, units: list[str], batch: int, seconds: float,
               timeout: float = 600.0, device: str = "cpu") -> list[dict]:
    """Measure the units in one fresh subprocess and set the plan's figures beside them.
    device cuda: measured on the first GPU (`measure_cuda`), against the plan's GPU figures."""
    if device not in ("cpu", "cuda"):
        raise UserError(f"plan-check --device {device!r}: cpu or cuda")
    if device == "cpu" and not os.path.exists(CLEAR_REFS):
        raise UserError(f"plan-check measures with {CLEAR_REFS} (Linux); not available here")
    if not Path(corpus).is_dir():
        raise UserError(f"{corpus}: not a directory (a LibriTTS-layout corpus for the dry run)")
    from .data.readers import read_libritts

    n_speakers = len(set(read_libritts(corpus).sort_values("utt_id").head(batch).speaker))
    if device == "cuda":  # CPU threads only build the batch; the allocator needs no glibc knobs
        env = {**os.environ, "OMP_NUM_THREADS": "8"}
    else:
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4096", "MALLOC_TRIM_THRESHOLD_": "0",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results = []
    spec = {"params": params, "units": list(units), "corpus": str(corpus), "batch": batch,
            "seconds": seconds, "device": device}
    proc = subprocess.run([sys.executable, "-m", "e2etts.dryrun"], input=json.dumps(spec),
                          capture_output=True, text=True, env=env, timeout=timeout * len(units))
    if proc.returncode != 0:
        raise UserError(f"plan-check {' '.join(units)}: the measuring process failed:\n"
                        f"{proc.stderr[-3000:]}")
    for line in proc.stdout.strip().splitlines()[-len(units):]:
        result = json.loads(line)
        unit = result["unit"]
        result["n_speakers"] = n_speakers
        result["estimated"] = estimate(unit, params, result, device)
        result["ratio"] = {k: result["measured"][k] / result["estimated"][k]
                           for k in ("static", "activations", "peak", "flops") if result["estimated"][k]}
        results.append(result)
    return results


COMPARED = ("static", "activations", "peak")


def disagreements(results: list[dict], tolerance: float) -> list[str]:
    """Memory figures where measured and planned differ by more than `tolerance` (relative
    to the plan), one line each; FLOPs are shown, not judged (the counter cannot see CPU's
    fused attention kernel, so measured FLOPs miss the T^2 term where it runs)."""
    out = []
    for r in results:
        for key in COMPARED:
            measured, planned = r["measured"][key], r["estimated"][key]
            if abs(measured - planned) > tolerance * planned:
                out.append(f"{r['unit']}: {key} measured {measured / 1e6:.1f} MB, planned "
                           f"{planned / 1e6:.1f} MB (off by more than {tolerance:.0%})")
    return out


def format_check(results: list[dict]) -> str:
    lines = ["| unit | params | shapes (mel / tokens / text / LLM units) | static MB meas. / plan "
             "| activations MB meas. / plan | peak MB meas. / plan (ratio) | GFLOP meas. / plan |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        m, e, s = r["measured"], r["estimated"], r["shapes"]
        lines.append(
            f"| {r['unit']} ({r['precision']}, batch {r['batch']}) | {r['params'] / 1e6:,.2f} M "
            f"| {s['mel']} / {s['tokens']} / {s['text']} / {s['units']} "
            f"| {m['static'] / 1e6:,.0f} / {e['static'] / 1e6:,.0f} "
            f"| {m['activations'] / 1e6:,.1f} / {e['activations'] / 1e6:,.1f} "
            f"| {m['peak'] / 1e6:,.0f} / {e['peak'] / 1e6:,.0f} ({r['ratio']['peak']:.2f}) "
            f"| {m['flops'] / 1e9:,.2f} / {e['flops'] / 1e9:,.2f} |")
    timed = [r for r in results if "step_s" in r]
    if timed:
        lines += ["", f"On {timed[0]['device']} (bf16 matmul measured at "
                  f"{timed[0]['matmul_bf16_tflops']:.0f} TFLOP/s):", "",
                  "| unit | step s meas. / plan | TFLOP/s | MFU vs measured matmul / plan's MFU vs card |",
                  "| --- | --- | --- | --- |"]
        for r in timed:
            e = r["estimated"]
            lines.append(f"| {r['unit']} | {r['step_s']:.3f} / {e['step_s']:.3f} | {r['tflops']:.0f} "
                         f"| {r['mfu_measured_peak']:.2f} / {e['mfu']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    from .cli import pin_kernel_paths

    pin_kernel_paths()
    import gc

    spec = json.loads(sys.stdin.read())
    measure_unit = measure_cuda if spec.get("device") == "cuda" else measure
    for unit in spec.pop("units"):
        print(json.dumps(measure_unit({**spec, "unit": unit})), flush=True)
        gc.collect()  # the unit's modules are gone before the next one's baseline
