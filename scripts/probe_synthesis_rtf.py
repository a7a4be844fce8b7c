"""Synthesis real-time factor on real items, per component (issue 18's RTF target).

    python scripts/probe_synthesis_rtf.py --system results/checkpoints/s1234/e2e_full \
        --items results/designs/items.tsv [--n-items 10] [--rounds 3] [--seed 1234] \
        [--digest] [--profile 2]

Each item is synthesized as `e2etts synthesize --items` does (`System.synthesize`, item i
with sampling seed seed + i), one thread. One JSON line per round: RTF as total seconds over
total audio seconds, and its LLM, flow, vocoder and remaining shares. --digest adds a sha256
of every wav's float32 bytes and of the LLM's tokens, so two versions of the code can be
checked for the same outputs. --profile N prints torch.profiler's table for the LLM's
generation of the first N items (operator self-CPU time), after the rounds.

The pipeline's `e2etts synthesize` runs under tcmalloc (e2etts/allocator.py); for its
figures, run this the same way:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python scripts/probe_synthesis_rtf.py ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import pandas as pd
import torch

from e2etts.synthesis import System


def _llm_inputs(system: System, items: pd.DataFrame, seed: int) -> list[tuple]:
    """The LLM's inputs for each item, prepared outside any timing: (text ids, prompt tokens,
    target characters, sampling seed, target text length in ids); item i samples with seed + i."""
    inputs = []
    for i, row in enumerate(items.itertuples()):
        ids, n_target = system.text_ids(row.prompt_text, row.target_text)
        _, prompt_tokens = system.prompt_features(row.prompt_wav)
        inputs.append((ids, prompt_tokens, len(row.target_text), seed + i, n_target))
    return inputs


def _tokens(system: System, ids, prompt_tokens, n_chars: int, seed: int, n_target: int) -> torch.Tensor:
    """The LLM's new tokens for one item (its own generator, as synthesize seeds it)."""
    return system.speech_tokens(ids, prompt_tokens, n_chars, torch.Generator().manual_seed(seed), n_target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", required=True)
    p.add_argument("--items", required=True, help="an items TSV (e2etts make-items)")
    p.add_argument("--n-items", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--digest", action="store_true")
    p.add_argument("--profile", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)

    items = pd.read_csv(args.items, sep="\t", keep_default_na=False).head(args.n_items)
    system = System(args.system)
    # One item before timing: first-call allocations and lazy imports are not synthesis.
    first = items.iloc[0]
    system.synthesize(first.target_text, first.prompt_wav, first.prompt_text, seed=args.seed)

    for round_ in range(args.rounds):
        total = {"synth_s": 0.0, "audio_s": 0.0, "llm_s": 0.0, "flow_s": 0.0, "vocoder_s": 0.0, "n_tokens": 0}
        wav_hash, token_hash = hashlib.sha256(), hashlib.sha256()
        for i, row in enumerate(items.itertuples()):
            wav, info = system.synthesize(row.target_text, row.prompt_wav, row.prompt_text, seed=args.seed + i)
            for key in total:
                total[key] += info[key]
            wav_hash.update(wav.float().numpy().tobytes())
        audio = total["audio_s"]
        out = {
            "round": round_,
            "items": len(items),
            "audio_s": round(audio, 2),
            "rtf": round(total["synth_s"] / audio, 4),
            "llm_rtf": round(total["llm_s"] / audio, 4),
            "flow_rtf": round(total["flow_s"] / audio, 4),
            "vocoder_rtf": round(total["vocoder_s"] / audio, 4),
            "other_rtf": round((total["synth_s"] - total["llm_s"] - total["flow_s"] - total["vocoder_s"]) / audio, 4),
            "llm_ms_per_token": round(1000 * total["llm_s"] / max(1, total["n_tokens"]), 3),
        }
        if args.digest:
            out["wav_sha256"] = wav_hash.hexdigest()[:16]
        print(json.dumps(out), flush=True)

    if args.digest:
        # The LLM's tokens alone (the flow and vocoder draw from the same generator after it).
        for inputs in _llm_inputs(system, items, args.seed):
            token_hash.update(_tokens(system, *inputs).numpy().tobytes())
        print(json.dumps({"token_sha256": token_hash.hexdigest()[:16]}), flush=True)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        prepared = _llm_inputs(system, items.head(args.profile), args.seed)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            n = sum(len(_tokens(system, *inputs)) for inputs in prepared)
            elapsed = time.perf_counter() - t
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
        print(json.dumps({"profiled_tokens": n, "profiled_ms_per_token": round(1000 * elapsed / n, 3)}))


if __name__ == "__main__":
    main()
