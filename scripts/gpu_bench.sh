#!/usr/bin/env bash
# GPU smoke + benchmark: needs only what the repo carries (no downloads), < 8 min on one
# H100/H200. Prints per-stage training throughput (mel frames/s, MFU vs the measured bf16
# matmul peak), synthesis RTF per stage, and runs the smoke pipeline's training on CUDA.
# Record the figures in docs/benchmarks.md with the card's name.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" DVC_NO_ANALYTICS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
mkdir -p "${OUT:-results/gpu_bench}"
python -m e2etts.bench --device cuda --batch 64 --threads 4 --out "${OUT:-results/gpu_bench}/bench_cuda.json"
# The smoke pipeline with every training rule on CUDA (train.device: auto picks it).
work=$(mktemp -d)
git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$work"
( cd "$work" && time snakemake --cores 4 --configfile config/smoke.yaml > "$work/smoke.log" 2>&1 ) \
  && cp "$work/results/metrics/summary.json" "${OUT:-results/gpu_bench}/smoke_summary.json" \
  || { tail -50 "$work/smoke.log"; exit 1; }
echo "gpu_bench: ok"
