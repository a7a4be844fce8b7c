"""Peak-memory probe for the joint E1 step (issue 6): the 16 longest training utterances
as one batch, a few optimizer steps, step times and the process's peak RSS.

    python scripts/probe_e1_peak_batch.py --flow-crop-tokens 40   # the default
    python scripts/probe_e1_peak_batch.py --flow-crop-tokens 0    # FM on whole utterances

Reads params.yaml, data/features and the cascade tokenizer; single-threaded. Run the
settings one after another (or side by side and say so): the figures are per process.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
import yaml

from e2etts.joint.e1 import build_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flow-crop-tokens", type=int, required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--features-dir", default="data/features")
    p.add_argument("--tokenizer", default="results/checkpoints/s1234/cascade/tokenizer/final.pt")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    params = yaml.safe_load(Path(args.params).read_text())
    params["joint_e1"]["objective"]["flow_crop_tokens"] = args.flow_crop_tokens
    task = build_task(params, Path(args.features_dir), args.tokenizer)
    model = task.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    longest = sorted(range(len(task.dataset)), key=lambda i: -task.lengths[i])[:16]
    batch = task.collate([task.dataset[i] for i in longest])
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(round(time.perf_counter() - start, 2))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"flow_crop_tokens {args.flow_crop_tokens}: batch mel {tuple(batch['mel'].shape)}, "
          f"step s {times}, peak RSS {peak_mb} MB")


if __name__ == "__main__":
    main()
