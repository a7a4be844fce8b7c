"""Peak memory and step time of the E2 training step (issue 18): one batch of the 16 longest
training items (the job's peak), a few optimizer steps, the median step time, the process's
peak RSS and a digest of the LLM's gradients after the first step (so two settings can be
checked for the same bits).

    python scripts/probe_e2_peak_batch.py --seed-dir s2345                 # as the job runs
    python scripts/probe_e2_peak_batch.py --seed-dir s2345 --recompute flow   # the frozen
        # flow's activations recomputed in the backward pass (torch.utils.checkpoint)
    python scripts/probe_e2_peak_batch.py --seed-dir s2345 --batch run --steps 120 [--malloc-trim N]
        # the run's own first batches, resident memory every 20 steps; glibc's malloc_trim(0)
        # after every N-th step hands the heap's free pages back

Reads params.yaml, data/features, e2e_tok's tokens, its stage-2 LLM, flow, reward model and
tokenizer (the seed's outputs of a run); single-threaded. Run the settings one after
another: the figures are per process.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import resource
import statistics
import time
from pathlib import Path

import torch
import yaml
from torch.utils.checkpoint import checkpoint

from e2etts.batching import make_batches
from e2etts.dryrun import resident_bytes
from e2etts.joint.e2 import build_task


def recomputed(fn):
    """fn's activations dropped after the forward pass and recomputed in the backward one
    (the global RNG state is replayed, so the recomputation draws the same noise)."""

    def inner(*args, **kwargs):
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        return checkpoint(fn, *args, use_reentrant=False, **kwargs)

    return inner


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--section", default="joint_e2_full")
    p.add_argument("--recompute", choices=["none", "flow", "flow+reward"], default="none")
    p.add_argument("--batch", choices=["longest", "run"], default="longest")
    p.add_argument("--malloc-trim", type=int, default=0, metavar="N", help="glibc malloc_trim(0) after every N-th step (0: never)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--features-dir", default="data/features")
    p.add_argument("--seed-dir", default="s1234", help="the seed's folder under data/tokens and results/checkpoints")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    params = yaml.safe_load(Path(args.params).read_text())
    ckpt = Path("results/checkpoints") / args.seed_dir / "e2e_tok"
    task = build_task(
        params, args.section, Path(args.features_dir), Path("data/tokens") / args.seed_dir / "e2e_tok",
        ckpt / "llm/final.pt", ckpt / "flow/final.pt", ckpt / "reward/final.pt", ckpt / "tokenizer/final.pt",
    )
    model = task.model.train()
    if args.recompute != "none":
        model.frozen.flow.loss = recomputed(model.frozen.flow.loss)
    if args.recompute == "flow+reward":
        model.frozen.reward.forward = recomputed(model.frozen.reward.forward)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=2e-4)
    if args.batch == "run":  # the first epoch's bucketed batches, as training draws them
        chosen_per_step = make_batches(task.lengths, 16, 0, 0)[: args.steps]
    else:
        chosen_per_step = [sorted(range(len(task.dataset)), key=lambda i: -task.lengths[i])[:16]] * args.steps
    libc = ctypes.CDLL("libc.so.6") if args.malloc_trim > 0 else None
    rss_before = resident_bytes() // 2**20
    times, digest, resident = [], None, []
    for step, chosen in enumerate(chosen_per_step):
        batch = task.collate([task.dataset[i] for i in chosen])
        torch.manual_seed(step)  # the same draws in every setting
        start = time.perf_counter()
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            h = hashlib.sha256()
            for q in model.llm.parameters():
                h.update(q.grad.numpy().tobytes())
            digest = h.hexdigest()[:16]
        opt.step()
        if libc is not None and step % args.malloc_trim == args.malloc_trim - 1:
            libc.malloc_trim(0)
        times.append(time.perf_counter() - start)
        if step % 20 == 19:
            resident.append(resident_bytes() // 2**20)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"recompute {args.recompute}, {args.batch} batch, malloc_trim {args.malloc_trim}: last mel {tuple(batch['mel'].shape)}, tokens {tuple(batch['tokens'].shape)}, "
          f"median step {statistics.median(times[1:] or times):.2f} s, peak RSS {peak_mb} MB "
          f"(before the steps {rss_before} MB), first-step LLM gradient digest {digest}"
          + (f"; resident every 20 steps {resident} MB" if resident else ""))


if __name__ == "__main__":
    main()
