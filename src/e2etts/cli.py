"""`e2etts` command line: the interface Snakemake rules and users call.

User errors (bad files, bad params) print one line `error: ...` and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import UserError


def _threads(n: int) -> None:
    import torch

    # One thread per rule thread: oversubscribing the 2-core default machine was ~3x slower.
    torch.set_num_threads(max(1, n))


def cmd_prepare_corpus(args) -> None:
    from .config import load_params
    from .data.prepare import prepare_corpus

    params = load_params(args.params)
    prepare_corpus(params["data"], params["seed"], Path(args.manifest), Path(args.wav_dir), args.jobs)


def cmd_validate(args) -> None:
    from .config import load_params
    from .data.prepare import validate_splits

    params = load_params(args.params)
    report = validate_splits(params["data"], Path(args.raw), Path(args.out_dir))
    print(json.dumps(report["corpus"], indent=1))


def cmd_features(args) -> None:
    import pandas as pd

    from .data.features import extract_features

    frame = pd.read_csv(args.manifest, sep="\t", keep_default_na=False)
    extract_features(frame, Path(args.out), threads=args.threads)


def cmd_speaker_check(args) -> None:
    import pandas as pd

    from .atomic import write_json
    from .data.report import speaker_distinctness

    frames = [pd.read_csv(m, sep="\t", keep_default_na=False) for m in args.manifests]
    result = speaker_distinctness(pd.concat(frames), n_per_speaker=args.per_speaker, seed=args.seed)
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2etts", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=func)
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        return p

    p = add("prepare-corpus", cmd_prepare_corpus, "synthesize the embedded corpus or read a real one")
    p.add_argument("--params", required=True, help="params.yaml path or inline JSON")
    p.add_argument("--manifest", required=True, help="output raw manifest (TSV, all splits)")
    p.add_argument("--wav-dir", required=True, help="where synthesized wavs go")
    p.add_argument("--jobs", type=int, default=1)

    p = add("validate", cmd_validate, "validate rows and write train/dev/test manifests")
    p.add_argument("--params", required=True)
    p.add_argument("--raw", required=True, help="raw manifest from prepare-corpus")
    p.add_argument("--out-dir", required=True)

    p = add("features", cmd_features, "log-mel + text ids for one split manifest")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)

    p = add("speaker-check", cmd_speaker_check, "resemblyzer check that speakers differ")
    p.add_argument("--manifests", nargs="+", required=True)
    p.add_argument("--per-speaker", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    _threads(args.threads)
    try:
        args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
