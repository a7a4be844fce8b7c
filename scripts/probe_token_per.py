"""Token-level intelligibility probe (issue 8): what the LLM says, read by the tokenizer.

Speech tokens -> the tokenizer's own post-quantizer decoder and CTC head -> phones, scored
against the target text's phones (phone error rate, PER). No flow, vocoder or Whisper in
the loop, so it separates the text -> token link from the token -> audio link:
- `gt`: tokens of the real target audio (the tokenizer's own error, the floor);
- `llm`: tokens the LLM samples for the target text with the system's decoding settings.

    python scripts/probe_token_per.py --system results/checkpoints/s1234/cascade [--n-items 40]
        [--greedy]

Items: `make_test_items` over data/manifests/dev.tsv (seed 0), as probe_resynthesis.py.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import torch

from e2etts.evaluate.curves import symbol_error_rate
from e2etts.evaluate.items import make_test_items
from e2etts.nn import ctc_greedy_decode
from e2etts.synthesis import SynthesisConfig, System, clean_text
from e2etts.text import encode_text


@torch.no_grad()
def read_tokens(tokenizer, indices: torch.Tensor) -> list[int]:
    """indices (T,) -> phone ids recognized by the tokenizer's CTC head."""
    lens = torch.tensor([indices.numel()])
    logits = tokenizer.recognize(tokenizer.fsq.indices_to_vectors(indices)[None], lens)
    return ctc_greedy_decode(logits, lens)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="results/checkpoints/s1234/cascade")
    p.add_argument("--n-items", type=int, default=40)
    p.add_argument("--greedy", action="store_true", help="temperature 0 instead of the system's sampler")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a synthesis setting, e.g. --set min_tokens_per_char=1.0")
    p.add_argument("--manifests", default="data/manifests")
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        if key not in SynthesisConfig.__dataclass_fields__:
            p.error(f"--set {kv}: unknown synthesis setting {key!r}")
        try:
            number = float(value)
        except ValueError:
            p.error(f"--set {kv}: expected KEY=NUMBER")
        overrides[key] = type(getattr(SynthesisConfig(), key))(number)  # top_k stays an int
    if args.greedy:
        overrides["temperature"] = 0.0
    system = System(args.system, overrides)
    system.tokenizer.eval()
    frontend = system.llm.cfg.text_frontend
    dev = pd.read_csv(f"{args.manifests}/dev.tsv", sep="\t", keep_default_na=False)
    train = pd.read_csv(f"{args.manifests}/train.tsv", sep="\t", keep_default_na=False)
    items = make_test_items(dev, args.n_items, 0, set(train["speaker"]))
    refs, gt_hyps, llm_hyps, len_ratio = [], [], [], []
    start = time.perf_counter()
    for i, row in enumerate(items.itertuples()):
        refs.append(encode_text(row.target_text, frontend))
        gt_tokens = system.target_tokens(row.target_wav)
        gt_hyps.append(read_tokens(system.tokenizer, gt_tokens))
        _, prompt_tokens = system.prompt_features(row.prompt_wav)
        text = clean_text(row.target_text, "text")
        ids, n_target = system.text_ids(clean_text(row.prompt_text, "prompt"), text)
        new = system.speech_tokens(ids, prompt_tokens, len(text), torch.Generator().manual_seed(i), n_target)
        llm_hyps.append(read_tokens(system.tokenizer, new) if new.numel() else [])
        len_ratio.append(new.numel() / gt_tokens.numel())
    print(json.dumps({
        "system": args.system, "n_items": len(refs), "overrides": overrides,
        "per_gt_tokens": round(symbol_error_rate(refs, gt_hyps), 4),
        "per_llm_tokens": round(symbol_error_rate(refs, llm_hyps), 4),
        "llm_len_ratio": round(sum(len_ratio) / len(len_ratio), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
