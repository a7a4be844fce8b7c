"""Step time and memory of the cascade LLM's training step (issue 18): one batch of the 16
longest training items (the peak) or of 16 random ones, a few optimizer steps, the median
step time and the process's peak RSS; or (--batch run) the run's own first batches, each
step a new one as in training, with the resident memory every 20 steps (the allocator's
fragmentation shows there).

    python scripts/probe_llm_peak_batch.py                          # params.yaml as it is
    python scripts/probe_llm_peak_batch.py --attention-dropout 0    # the fused-attention lever
    python scripts/probe_llm_peak_batch.py --batch run --steps 120  # memory over steps

Reads params.yaml, data/features, the cascade's tokens and tokenizer (the interleaved
format's alignment); single-threaded. Run the settings one after another: the figures are
per process.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from pathlib import Path

import torch
import yaml

from e2etts.batching import make_batches
from e2etts.dryrun import resident_bytes
from e2etts.llm.train import build_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attention-dropout", type=float, default=None, help="llm.model.attention_dropout")
    p.add_argument("--batch", choices=["longest", "random", "run"], default="longest")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--features-dir", default="data/features")
    p.add_argument("--tokens-dir", default="data/tokens/s1234/cascade")
    p.add_argument("--tokenizer", default="results/checkpoints/s1234/cascade/tokenizer/final.pt")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    section = yaml.safe_load(Path(args.params).read_text())["llm"]
    if args.attention_dropout is not None:
        section["model"]["attention_dropout"] = args.attention_dropout
    task = build_task(section, Path(args.features_dir), Path(args.tokens_dir), tokenizer=Path(args.tokenizer))
    model = task.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    order = sorted(range(len(task.dataset)), key=lambda i: -task.lengths[i])
    if args.batch == "run":  # the first epoch's bucketed batches, as training draws them
        chosen_per_step = make_batches(task.lengths, 16, 0, 0)[: args.steps]
    else:
        chosen = order[:16] if args.batch == "longest" else random.Random(0).sample(order, 16)
        chosen_per_step = [chosen] * args.steps
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    times, resident = [], []
    for step, chosen in enumerate(chosen_per_step):
        batch = task.collate([task.dataset[i] for i in chosen])
        start = time.perf_counter()
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        if step % 20 == 19:
            resident.append(resident_bytes() // 2**20)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    units = tuple(batch["kinds"].shape)  # the last batch's
    print(f"attention_dropout {section['model'].get('attention_dropout')}: {args.batch} batch, units {units}, "
          f"median step {statistics.median(times[1:] or times):.3f} s, peak RSS {peak_mb} MB "
          f"(before the steps {rss_before} MB)" + (f"; resident every 20 steps {resident} MB" if resident else ""))


if __name__ == "__main__":
    main()
