#!/usr/bin/env bash
# GPU bench: one prepared command for a GPU machine (docs/scale.md, "Measured on a GPU").
# Runs where python3 holds torch and nothing can be downloaded (this project's lent machines):
# the package from src/ on PYTHONPATH, soundfile, jsonschema and jiwer (with their
# dependencies) from .whl/ when that python lacks them, and the smoke features and training commands from .gpu/; make both with
# scripts/gpu_prepare.sh on a machine with the project's set-up, and carry them along.
#   1. `e2etts.bench` on CUDA at params.yaml's sizes (batch 64): per-stage training
#      throughput and MFU, synthesis RTF, KV-cache speed-up;
#   2. the smoke configuration's training chain (13 training jobs: cascade, E1, stage 2,
#      reward model, E2 fm and full, the matched control) with train.device auto, so CUDA;
#   3. the CUDA tests (tests/test_gpu.py, skipped on machines without a GPU);
#   4. `e2etts plan-check --device cuda` at the scale configuration's sizes
#      (config/scale/libritts_gpu.yaml), batch 16 of 5.6 s (LibriTTS's mean): one measured
#      bf16 training step per component and end-to-end stage against the plan's memory,
#      FLOPs and step time, on a generated LibriTTS-layout corpus of tones (shapes matter,
#      not content), with the chars front end (flite's t2p is a Debian package such a
#      machine lacks; phones and chars give text of about the same length).
# Figures go to $OUT (default results/gpu_bench): gpu.txt, bench_cuda.json, plan_check_*.json,
# train_chain.log; everything printed goes to stdout as well.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results/gpu_bench}
mkdir -p "$out"
repo=$PWD
PY=python3
[ -x .venv/bin/python ] && PY=$repo/.venv/bin/python
if ! $PY -c "import soundfile, jsonschema, jiwer" 2>/dev/null; then
  [ -d .whl ] || { echo "gpu_bench: $PY lacks soundfile, jsonschema or jiwer and there is no .whl/ (scripts/gpu_prepare.sh)"; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/e2etts-site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/e2etts-site
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
status=0
t0=$SECONDS
steps=" ${*:-bench chain tests plan} "  # a subset by name: scripts/gpu_bench.sh chain tests

if [[ $steps == *" bench "* ]]; then
echo "== 1. bench (params.yaml sizes, batch 64)"
$PY -m e2etts.bench --device cuda --batch 64 --threads 4 --out "$out/bench_cuda.json" || status=1
echo "[$((SECONDS - t0)) s]"

fi
if [[ $steps == *" chain "* ]]; then
echo "== 2. the smoke configuration's training chain on CUDA"
if [ -f .gpu/train_chain.sh ]; then
  chain=$(mktemp -d)
  cp -r .gpu/data "$chain/data"
  ( cd "$chain" && e2etts() { $PY -m e2etts.cli "$@"; } && . "$repo/.gpu/train_chain.sh" ) \
    > "$out/train_chain.log" 2>&1 || { status=1; tail -20 "$out/train_chain.log"; }
  grep -h "selected step" "$chain"/logs/s1234/*/*.log | tee -a "$out/train_chain.log"
else
  echo "no .gpu/train_chain.sh: run scripts/gpu_prepare.sh where the set-up is"; status=1
fi
echo "[$((SECONDS - t0)) s]"

fi
if [[ $steps == *" tests "* ]]; then
echo "== 3. CUDA tests"
$PY -m pytest -q -p no:cacheprovider --noconftest tests/test_gpu.py > "$out/tests.log" 2>&1 || status=1
grep -E "^(FAILED|ERROR)|passed|failed" "$out/tests.log"
fi
if [[ $steps == *" plan "* ]]; then
batch=${PLAN_BATCH:-16}  # utterances per step (the scale configuration's per-device batch)
echo "== 4. plan-check on CUDA (scale sizes, batch $batch x 5.6 s)"
work=$(mktemp -d)
$PY - "$work/LibriTTS" "$batch" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

root = Path(sys.argv[1])
line = "A speaker reads a line of the test corpus, slowly and clearly, for the dry run here.\n"
for i in range(int(sys.argv[2])):  # 8 speakers, 2 s tones (the dry run tiles them to 5.6 s)
    spk = str(100 + i % 8)
    stem = f"{spk}_198_{i:06d}_000001"
    wav = root / "train-clean-100" / spk / "198" / f"{stem}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * 24000) / 24000
    sf.write(wav, 0.3 * np.sin(2 * np.pi * (180 + 20 * i) * t), 24000)
    wav.with_name(stem + ".normalized.txt").write_text(line)
EOF
printf 'data:\n  text_frontend: chars\n' > "$work/chars.yaml"
for units in ${PLAN_UNITS:-"tokenizer llm flow reward" "joint_e2" "joint_e1"}; do
  $PY -m e2etts.cli plan-check --params params.yaml \
    --configfile config/scale/libritts_gpu.yaml "$work/chars.yaml" --corpus "$work/LibriTTS" \
    --units $units --batch "$batch" --seconds 5.6 --device cuda \
    --json "$out/plan_check_$(echo "$units" | tr ' ' _)_b$batch.json" 2>&1 | grep -v Warning
  echo "plan-check $units: exit ${PIPESTATUS[0]} [$((SECONDS - t0)) s]"
done

fi
echo "gpu_bench: exit $status [$((SECONDS - t0)) s]"
exit $status
