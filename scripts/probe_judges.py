"""Measure candidate WER judges on one wav directory (e.g. the ground truth of the test list).

For each judge spec MODEL[:BEAM[:BATCH]] (MODEL: a packaged judge name or a CT2 directory),
prints one JSON line: corpus WER under the project's normalizer, seconds to load the model,
seconds to transcribe all items (one thread unless --threads), and, with --check-batched,
how many transcripts differ between the batched path and faster-whisper's per-clip path.
Nothing is cached: every run transcribes every item.

    python scripts/probe_judges.py --items results/eval/items.tsv --wav-dir results/samples/gt \
        --judge tiny.en:1:1 --judge base:1:8 --judge base:5:8
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", required=True, help="items TSV (item_id, target_text)")
    ap.add_argument("--wav-dir", required=True, help="folder with <item_id>.wav")
    ap.add_argument("--judge", action="append", required=True, help="MODEL[:BEAM[:BATCH]]")
    ap.add_argument("--n-items", type=int, default=0, help="first N items only (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cap", type=float, default=12.0, help="max Whisper tokens per second (0: none)")
    ap.add_argument("--check-batched", action="store_true", help="also run the per-clip path and compare")
    ap.add_argument("--out", help="write per-item transcripts (TSV) here, one column per judge")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from e2etts.audio import load_wav
    from e2etts.evaluate.asr import WERJudge, corpus_wer
    from e2etts.evaluate.normalize import NORMALIZER

    items = pd.read_csv(args.items, sep="\t", keep_default_na=False)
    if args.n_items:
        items = items.head(args.n_items)
    wavs = [load_wav(Path(args.wav_dir) / f"{i}.wav", 16000).numpy() for i in items["item_id"]]
    refs = items["target_text"].astype(str).tolist()
    table = {"item_id": items["item_id"].tolist(), "reference": refs}
    for spec in args.judge:
        model, beam, batch = (spec.split(":") + ["1", "8"])[:3]
        t0 = time.perf_counter()
        is_dir = os.path.isdir(model)
        judge = WERJudge(
            model_dir=model if is_dir else None,
            model=None if is_dir else model,
            beam_size=int(beam),
            batch_size=int(batch),
            cpu_threads=args.threads,
            max_tokens_per_second=args.cap or None,
        )
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        hyps = judge.transcribe_batch(wavs)
        run_s = time.perf_counter() - t0
        row = {
            "judge": judge.name,
            "batch": int(batch),
            "normalizer": NORMALIZER,
            "n": len(refs),
            "wer": round(corpus_wer(refs, hyps), 4),
            "load_s": round(load_s, 2),
            "transcribe_s": round(run_s, 2),
            "audio_s": round(sum(w.size for w in wavs) / 16000, 1),
        }
        if args.check_batched:
            t0 = time.perf_counter()
            single = [judge.transcribe(w) for w in wavs]
            row["per_clip_s"] = round(time.perf_counter() - t0, 2)
            row["per_clip_wer"] = round(corpus_wer(refs, single), 4)
            row["n_differ"] = sum(a != b for a, b in zip(hyps, single, strict=True))
        table[spec] = hyps
        print(json.dumps(row), flush=True)
    if args.out:
        pd.DataFrame(table).to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
