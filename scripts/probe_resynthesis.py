"""Token-resynthesis probe behind docs/archive/design-decisions-sessions-1-7.md (issue 8).

Ground-truth tokens of dev utterances (a tokenizer) -> a flow with decoding settings ->
Griffin-Lim -> Whisper WER; also the oracles that bound it. One JSON line per run.

    python scripts/probe_resynthesis.py --tokenizer T.pt --flow F.pt [--n-steps 10]
        [--cfg 0.7] [--start-t 0] [--noise-scale 1] [--prior-only] [--n-items 40]
    python scripts/probe_resynthesis.py --oracles   # GT vocoded, 4-frame block-averaged GT

Items: `make_test_items` over data/manifests/dev.tsv (seed 0): unseen sentences, seen and
unseen voices, prompts from the same speaker. Single-threaded, ~1 s per item.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import torch

from e2etts.audio import load_wav, log_mel
from e2etts.evaluate.asr import WERJudge, corpus_wer
from e2etts.evaluate.items import make_test_items
from e2etts.synthesis import make_vocoder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer")
    p.add_argument("--flow")
    p.add_argument("--n-steps", type=int, default=10)
    p.add_argument("--cfg", type=float, default=0.7)
    p.add_argument("--start-t", type=float, default=0.0)
    p.add_argument("--noise-scale", type=float, default=1.0)
    p.add_argument("--prior-only", action="store_true", help="decode mu, the flow's prior")
    p.add_argument("--oracles", action="store_true")
    p.add_argument("--n-items", type=int, default=40)
    p.add_argument("--manifests", default="data/manifests")
    args = p.parse_args()
    torch.set_num_threads(1)

    dev = pd.read_csv(f"{args.manifests}/dev.tsv", sep="\t", keep_default_na=False)
    train = pd.read_csv(f"{args.manifests}/train.tsv", sep="\t", keep_default_na=False)
    items = make_test_items(dev, args.n_items, 0, set(train["speaker"]))
    vocoder = make_vocoder({"type": "griffinlim", "iters": 32})
    judge = WERJudge()
    start = time.perf_counter()
    refs = list(items["target_text"])

    if args.oracles:
        hyps = {"gt_vocoded": [], "block4_vocoded": []}
        for row in items.itertuples():
            mel = log_mel(load_wav(row.target_wav))
            T = (mel.shape[0] // 4) * 4
            mel = mel[:T]
            hyps["gt_vocoded"].append(judge.transcribe(vocoder(mel).numpy()))
            block = mel.reshape(T // 4, 4, -1).mean(1).repeat_interleave(4, 0)
            hyps["block4_vocoded"].append(judge.transcribe(vocoder(block).numpy()))
        print(json.dumps({k: round(corpus_wer(refs, v), 4) for k, v in hyps.items()} | {"n": len(refs)}))
        return

    from e2etts.flow.model import load_flow
    from e2etts.tokenizer.model import load_tokenizer

    tokenizer, flow = load_tokenizer(args.tokenizer), load_flow(args.flow).eval()
    hyps = []
    with torch.no_grad():
        for i, row in enumerate(items.itertuples()):
            prompt = log_mel(load_wav(row.prompt_wav))
            prompt = prompt[: (prompt.shape[0] // 4) * 4]
            target = log_mel(load_wav(row.target_wav))
            target = target[: (target.shape[0] // 4) * 4]
            # Prompt and target are tokenized separately, as synthesis and the topline do.
            _, prompt_tokens, _ = tokenizer.encode(prompt[None], torch.tensor([prompt.shape[0]]))
            _, target_tokens, _ = tokenizer.encode(target[None], torch.tensor([target.shape[0]]))
            vectors = tokenizer.fsq.indices_to_vectors(torch.cat([prompt_tokens, target_tokens], 1))
            if args.prior_only:
                cond = flow.encode_tokens(vectors, torch.tensor([vectors.shape[1]]))
                out = flow.norm.denormalize(flow.prior_proj(cond))[0, prompt.shape[0]:]
            else:
                out = flow.sample(
                    vectors, prompt[None], n_steps=args.n_steps, cfg_strength=args.cfg,
                    noise_scale=args.noise_scale, start_t=args.start_t,
                    generator=torch.Generator().manual_seed(i),
                )[0]
            hyps.append(judge.transcribe(vocoder(out).numpy()))
    print(json.dumps({
        "tokenizer": args.tokenizer, "flow": args.flow, "prior_only": args.prior_only,
        "n_steps": args.n_steps, "cfg": args.cfg, "start_t": args.start_t,
        "noise_scale": args.noise_scale, "n": len(refs), "wer": round(corpus_wer(refs, hyps), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
