#!/usr/bin/env bash
# Ablation: where does the E2E gain come from, the E2 stage or the E1 tokenizer?
#
# With the interleaved LLM, e2e_full beats its own starting point (e2e_tok) but not the
# cascade. This applies E2 to the cascade instead, with a compute-matched control:
#   cascade_e2full  E2 (params section joint_e2_full) on the cascade's LLM and flow, with a
#                   reward model fitted from scratch on the cascade's tokens (reward steps
#                   doubled: e2e_tok's reward model had 400 E1 steps + 400 fitting steps);
#   cascade_ntp900  the cascade LLM trained for the same 900 more steps on its own
#                   next-token loss at E2's learning rate (the same extra compute, no E2).
# Both are synthesized and scored with the pipeline's judges on the test list, with paired
# bootstrap p-values against the cascade.
#
# Run on a finished default pipeline, from the repository root, with the .venv on PATH:
#   bash scripts/ablation_e2_on_cascade.sh [OUT_DIR]      (default: results_ablation)
# The two trainings run side by side, one thread each; the whole script took 31 min on the
# 2-core development machine (session 6).
set -euo pipefail
OUT=${1:-results_ablation}
# The default's first training seed (params `seeds`): its cascade, tokens and scores.
S=s$(python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["seeds"][0])')
CASCADE=results/checkpoints/$S/cascade
ITEMS=results/eval/items.tsv
for f in "$CASCADE/system.json" "$CASCADE/llm/final.pt" "$CASCADE/flow/final.pt" \
    "$CASCADE/tokenizer/final.pt" data/tokens/$S/cascade/train.pt "$ITEMS" \
    results/metrics/systems/$S/cascade.tsv results/metrics/systems/gt_vocoded.tsv; do
    [[ -e "$f" ]] || { echo "missing $f: run the default pipeline first (make run)" >&2; exit 2; }
done
mkdir -p "$OUT/logs" "$OUT/metrics"

# The ablation's parameters: params.yaml with the two changed train sections.
python - "$OUT/params.json" <<'PY'
import json, sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["reward"]["train"]["max_steps"] = 2 * p["reward"]["train"]["max_steps"]
e2 = p["joint_e2_full"]["train"]
p["llm"]["train"].update(max_steps=e2["max_steps"], lr=e2["lr"], warmup_steps=e2["warmup_steps"],
                         eval_every=e2["eval_every"], ckpt_every=e2["ckpt_every"])
with open(sys.argv[1], "w") as f:
    json.dump(p, f, indent=1)
PY
P="$OUT/params.json"
SEED=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["seed"])' "$P")

( e2etts train reward --params "$P" --tokens-dir data/tokens/$S/cascade \
      --out-dir "$OUT/cascade_reward" --log-dir "$OUT/train_logs/reward" --threads 1 \
  && e2etts train joint_e2 --section joint_e2_full --params "$P" --tokens-dir data/tokens/$S/cascade \
      --init "$CASCADE/llm/final.pt" --flow "$CASCADE/flow/final.pt" \
      --reward "$OUT/cascade_reward/final.pt" --tokenizer "$CASCADE/tokenizer/final.pt" \
      --out-dir "$OUT/cascade_e2full/llm" --log-dir "$OUT/train_logs/cascade_e2full" --threads 1
) > "$OUT/logs/cascade_e2full.log" 2>&1 &
E2_PID=$!
e2etts train llm --params "$P" --tokens-dir data/tokens/$S/cascade --init "$CASCADE/llm/final.pt" \
    --tokenizer "$CASCADE/tokenizer/final.pt" --out-dir "$OUT/cascade_ntp900/llm" \
    --log-dir "$OUT/train_logs/cascade_ntp900" --threads 1 > "$OUT/logs/cascade_ntp900.log" 2>&1
wait "$E2_PID"

evaluate() {  # $1 = system name; the LLM is $OUT/$1/llm/final.pt, the rest the cascade's
    local name=$1
    e2etts assemble-system --params "$P" --name "$name" --tokenizer "$CASCADE/tokenizer/final.pt" \
        --llm "$OUT/$name/llm/final.pt" --flow "$CASCADE/flow/final.pt" --out "$OUT/$name/system.json"
    e2etts synthesize --system "$OUT/$name" --items "$ITEMS" --out-dir "$OUT/samples/$name" \
        --seed "$SEED" --threads 1
    e2etts score --params "$P" --items "$ITEMS" --wav-dir "$OUT/samples/$name" --system "$name" \
        --per-utt "$OUT/metrics/$name.tsv" --metrics "$OUT/metrics/$name.json" --threads 1
}
evaluate cascade_e2full > "$OUT/logs/eval_cascade_e2full.log" 2>&1 &
EVAL_PID=$!
evaluate cascade_ntp900 > "$OUT/logs/eval_cascade_ntp900.log" 2>&1
wait "$EVAL_PID"

cp results/metrics/systems/gt_vocoded.{json,tsv} "$OUT/metrics/"
cp results/metrics/systems/$S/cascade.{json,tsv} "$OUT/metrics/"
e2etts summarize --metrics "$OUT"/metrics/{gt_vocoded,cascade,cascade_ntp900,cascade_e2full}.json \
    --out "$OUT/summary.json"
python - "$OUT/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for name, m in s.items():
    p = m.get("p_wer_lower_than_cascade")
    print(f"{name:16s} WER {100 * m['wer']:5.1f} %  SIM {m['sim']:.3f}"
          + (f"  p(WER < cascade) {p:.3f}" if p is not None else ""))
PY
