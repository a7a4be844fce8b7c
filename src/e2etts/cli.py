"""`e2etts` command line: the interface Snakemake rules and users call.

User errors (bad files, bad params) print one line `error: ...` and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from . import tasks
from .errors import UserError

# Kernel paths pinned for every command (docs/reproducibility.md, "Across machines"; issue 21,
# item 10). A value already in the environment wins.
# - MKL (torch's BLAS and LAPACK here) picks its code path by CPU; MKL_CBWR=AVX2 asks for its
#   AVX2 branch on any CPU with AVX2, so an AVX-512 CPU computes like an AVX2 one. On the
#   project's AMD machine sgemm (features, training steps) is byte-identical with and without
#   it, but LAPACK is not: lstsq/pinv (Griffin-Lim's inverse mel) change, so synthesized wavs
#   differ in their last bits from unpinned ones.
# - OpenBLAS (numpy's BLAS: faster-whisper's log-mel, so the judge's transcripts) picks its
#   kernels by CPU too (SkylakeX on that machine); Haswell/L2 512 KiB is what the sessions'
#   shell set and the committed judged figures were computed with.
KERNEL_ENV = {"MKL_CBWR": "AVX2", "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}


def pin_kernel_paths() -> None:
    """Set KERNEL_ENV where the environment does not; before torch or numpy is imported
    (both read these variables when their libraries load)."""
    for key, value in KERNEL_ENV.items():
        os.environ.setdefault(key, value)


# glibc malloc thresholds for every command (issue 18, peak RSS). By default glibc raises its
# mmap threshold to the size of each large block freed (up to 32 MiB), so the training steps'
# activations of 0.1-32 MiB end up in the heap, which fragments and keeps growing over a job.
# Fixed at 4 MiB (which also turns the dynamic raising off), blocks of 4 MiB and more go back
# to the system when freed. E2 full, 120 steps: peak RSS 3.76 vs 4.24 GB, step time 0.99x,
# the same checkpoint bytes; at 1 MiB 2.93 GB but 1.28x the step time (docs/benchmarks.md).
MALLOC_THRESHOLDS = {"MALLOC_MMAP_THRESHOLD_": 4 << 20, "MALLOC_TRIM_THRESHOLD_": 4 << 20}
_MALLOPT_PARAM = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD


def fix_malloc_thresholds() -> bool:
    """Apply MALLOC_THRESHOLDS to this process (mallopt) and, through the environment, to its
    children. glibc read MALLOC_*_ variables when this process started, so a value a user
    exported wins and is left alone. False where the C library has no mallopt (not glibc)."""
    import ctypes

    if any(key in os.environ for key in MALLOC_THRESHOLDS):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    for key, value in MALLOC_THRESHOLDS.items():
        if mallopt(_MALLOPT_PARAM[key], value) != 1:
            return False
        os.environ[key] = str(value)
    return True


def _threads(n: int) -> None:
    import torch

    # One thread per rule thread: oversubscribing the 2-core default machine was ~3x slower.
    torch.set_num_threads(max(1, n))


def cmd_prepare_corpus(args) -> None:
    from .config import load_params
    from .data.prepare import prepare_corpus

    params = load_params(args.params)
    prepare_corpus(params["data"], params["seed"], Path(args.manifest), Path(args.wav_dir), args.jobs)


def cmd_corpus_digest(args) -> None:
    from .atomic import write_json
    from .config import load_params
    from .data.source_digest import corpus_digest

    params = load_params(args.params)
    digest = corpus_digest(params["data"], Path(args.cache) if args.cache else None)
    write_json(args.out, digest)
    print(json.dumps(digest))


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
    extract_features(frame, Path(args.out), threads=args.threads, text_frontend=args.text_frontend)


def cmd_speaker_check(args) -> None:
    import pandas as pd

    from .atomic import write_json
    from .data.report import speaker_distinctness

    frames = [pd.read_csv(m, sep="\t", keep_default_na=False) for m in args.manifests]
    result = speaker_distinctness(pd.concat(frames), n_per_speaker=args.per_speaker, seed=args.seed)
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


def cmd_train(args) -> None:
    import dataclasses

    from .config import build, load_params
    from .run_signature import input_digest
    from .seed import seed_everything
    from .train import TrainConfig, fit

    params = load_params(args.params)
    spec = tasks.get(args.component)
    ctx = tasks.TaskContext.from_args(args, params)
    spec.check(ctx)
    # Stage-2 runs reuse a component's model section with their own `train` section.
    train_name = args.train_section or ctx.section
    train_cfg = build(TrainConfig, params[train_name]["train"], f"{train_name}.train")
    # Models are built after seeding so initial weights depend on the seed alone.
    seed_everything(params["seed"])
    task = spec.build(ctx)
    if args.snapshot_every:
        if not spec.curves:
            takes = " and ".join(name for name, other in tasks.TASKS.items() if other.curves)
            raise UserError(f"--snapshot-every: learning curves exist for {takes}, not {args.component}")
        train_cfg = dataclasses.replace(train_cfg, snapshot_every=args.snapshot_every)
    result = fit(task, train_cfg, Path(args.out_dir), seed=params["seed"], log_dir=args.log_dir,
                 inputs=input_digest(spec.inputs(ctx)))
    print(json.dumps(result))


def cmd_learning_curve(args) -> None:
    from .config import load_params
    from .data.features import FeatureSet
    from .evaluate.curves import build_probe, learning_curve

    params = load_params(args.params)
    # The tokenizer's CTC head reads the front end its training features were encoded with.
    text_frontend = FeatureSet(Path(args.features)).text_frontend
    probe = build_probe(args.component, params["curves"], params, args.tokenizer, args.flow,
                        args.items, text_frontend)
    learning_curve(probe, args.checkpoint_dir, args.log_dir, args.out)


def cmd_export_components(args) -> None:
    """Split a joint E1 checkpoint into per-component model files (kind-tagged)."""
    from .atomic import torch_save
    from .checkpoint import load_model_file

    ckpt = load_model_file(args.checkpoint, expected_kind="joint_e1")
    out = Path(args.out_dir)
    for name, part in ckpt["components"].items():
        torch_save(out / f"{name}.pt", {**part, "kind": name, "step": ckpt["step"], "dev": ckpt["dev"]})
    print(f"exported {', '.join(ckpt['components'])} to {out}")


def cmd_extract_tokens(args) -> None:
    from .atomic import write_json
    from .data.features import FeatureSet
    from .tokenizer.model import load_tokenizer
    from .tokenizer.train import extract_tokens

    tokenizer = load_tokenizer(args.tokenizer)
    stats = {}
    for feat, out in zip(args.features, args.out, strict=True):
        stats[Path(out).stem] = extract_tokens(tokenizer, FeatureSet(feat), Path(out))
    if args.stats:
        write_json(args.stats, stats)
    print(json.dumps(stats, indent=1))


def cmd_token_stats(args) -> None:
    """tokens_<system>.json: per split (file stem), codebook use, H(X_n) and I(X_{n+1}; X_n)."""
    from .atomic import write_json
    from .token_stats import token_file_stats

    for path in args.tokens:
        if not Path(path).is_file():
            raise UserError(f"{path}: token file not found; run extract-tokens first")
    stats = {Path(p).stem: token_file_stats(p, n_shuffles=args.shuffles, seed=args.seed) for p in args.tokens}
    write_json(args.out, stats)
    print(json.dumps(stats, indent=1))


def cmd_assemble_system(args) -> None:
    from .atomic import write_json
    from .config import load_params
    from .synthesis import vocoder_spec

    params = load_params(args.params)
    vocoder = vocoder_spec(params["vocoder"], args.vocoder)
    for path in (args.tokenizer, args.llm, args.flow):
        if not Path(path).exists():
            raise UserError(f"{path}: checkpoint not found")
    write_json(
        Path(args.out),
        {
            "name": args.name,
            "tokenizer": args.tokenizer,
            "llm": args.llm,
            "flow": args.flow,
            "vocoder": vocoder,
            "synthesis": params["synthesis"],
            # A section of its own, so these limits do not change the params of the
            # learning-curve rule, which reads `synthesis`.
            "synthesis_checks": params["synthesis_checks"],
        },
    )


def cmd_synthesize(args) -> None:
    import pandas as pd

    from .atomic import check_writable, write_json
    from .audio import save_wav
    from .synthesis import System

    # Before loading anything: a bad output path used to surface as a traceback from the
    # writer after the whole synthesis had run.
    if args.items:
        if not args.out_dir:
            raise UserError("--items needs --out-dir (where <item_id>.wav go)")
        check_writable(Path(args.out_dir) / "synthesis.json", "--out-dir")
    elif args.out:
        check_writable(args.out, "--out")
    system = System(args.system)
    if args.items:
        items = pd.read_csv(args.items, sep="\t", keep_default_na=False)
        missing = {"item_id", "prompt_wav", "prompt_text", "target_text"} - set(items.columns)
        if missing:
            raise UserError(f"{args.items}: missing columns {', '.join(sorted(missing))}")
        out_dir = Path(args.out_dir)
        total_audio, total_time, rows = 0.0, 0.0, []
        for i, row in enumerate(items.itertuples()):
            wav, info = system.synthesize(row.target_text, row.prompt_wav, row.prompt_text, seed=args.seed + i)
            save_wav(out_dir / f"{row.item_id}.wav", wav)
            total_audio += info["audio_s"]
            total_time += info["synth_s"]
            rows.append({"item_id": row.item_id, **info})
        # Kept and scored (a bad system is measured, not stopped), but never silent.
        too_short = [r["item_id"] for r in rows if r["too_short"]]
        if too_short:
            print(f"warning: {system.name}: {len(too_short)} of {len(rows)} outputs are shorter than "
                  f"their text allows (synthesis_checks.max_chars_per_second): {', '.join(too_short[:10])}",
                  file=sys.stderr)
        stats = {
            "system": system.name,
            "n_items": len(rows),
            "rtf": total_time / max(total_audio, 1e-6),
            "audio_s": total_audio,
            "synth_s": total_time,
            "llm_s": sum(r["llm_s"] for r in rows),
            "flow_s": sum(r["flow_s"] for r in rows),
            "vocoder_s": sum(r["vocoder_s"] for r in rows),
            "n_too_short": len(too_short),
            "too_short_items": too_short,
            "decoding": system.decoding,
        }
        write_json(out_dir / "synthesis.json", stats)
        print(f"{system.name}: {len(rows)} items, RTF {stats['rtf']:.3f}")
        return
    if not (args.text and args.prompt_wav and args.prompt_text and args.out):
        raise UserError("give --text, --prompt-wav, --prompt-text and --out (or --items and --out-dir)")
    wav, info = system.synthesize(args.text, args.prompt_wav, args.prompt_text, seed=args.seed)
    if info["too_short"]:
        raise UserError(
            f"--text {args.text!r}: synthesized only {info['audio_s']:.2f} s, less than the "
            f"{info['min_expected_s']:.2f} s its {info['n_chars']} "
            f"characters take at {system.cfg.max_chars_per_second:g} characters per second "
            f"(synthesis_checks.max_chars_per_second); {args.out} not written"
        )
    save_wav(args.out, wav)
    chunks = f", {info['n_chunks']} sentence chunks" if info["n_chunks"] > 1 else ""
    print(f"wrote {args.out}: {info['audio_s']:.2f} s of audio{chunks}, RTF {info['rtf']:.3f} "
          f"(LLM {info['llm_s']:.2f} s, flow {info['flow_s']:.2f} s, vocoder {info['vocoder_s']:.2f} s)")


def cmd_make_items(args) -> None:
    import pandas as pd

    from .atomic import write_tsv
    from .evaluate.items import make_test_items

    test = pd.read_csv(args.test, sep="\t", keep_default_na=False)
    train = pd.read_csv(args.train, sep="\t", keep_default_na=False)
    items = make_test_items(test, args.n_items, args.seed, set(train["speaker"]))
    write_tsv(args.out, items)
    print(f"{len(items)} items ({int(items['seen'].sum())} seen-speaker, "
          f"{int((~items['seen'].astype(bool)).sum())} unseen-speaker) -> {args.out}")


def cmd_topline(args) -> None:
    import pandas as pd

    from .evaluate import toplines

    items = pd.read_csv(args.items, sep="\t", keep_default_na=False)
    out_dir = Path(args.out_dir)
    if args.kind == "gt":
        toplines.ground_truth(items, out_dir)
    elif args.kind == "gt_vocoded":
        from .config import load_params
        from .synthesis import decoding_settings, make_vocoder, vocoder_spec

        spec = vocoder_spec(load_params(args.params)["vocoder"], args.vocoder)
        toplines.vocoded(items, make_vocoder(spec), out_dir, decoding_settings(spec))
    else:
        from .synthesis import System

        if not args.system:
            raise UserError("topline resynth needs --system (its tokenizer, flow and vocoder)")
        system = System(args.system)
        toplines.resynthesize(items, system, out_dir, name=f"resynth_{system.name}", seed=args.seed)


def cmd_score(args) -> None:
    import pandas as pd

    from .atomic import write_json, write_tsv
    from .config import load_params
    from .evaluate.asr import WERJudge
    from .evaluate.score import score_system
    from .evaluate.sim import SIMJudge

    ev = load_params(args.params)["eval"]
    items = pd.read_csv(args.items, sep="\t", keep_default_na=False)
    wav_dir = Path(args.wav_dir)
    synth = json.loads((wav_dir / "synthesis.json").read_text())
    wer_judge = WERJudge.from_params(ev, cpu_threads=args.threads)
    sim_judge = SIMJudge(backend=ev["sim_backend"])
    # Transcripts are cached by (judge, wav content): re-scoring unchanged audio is free.
    cache = Path(args.metrics).with_suffix(".transcripts.json")
    per_utt, metrics = score_system(
        items, wav_dir, args.system, wer_judge, sim_judge, synth.get("rtf"), cache_path=cache
    )
    if "decoding" in synth:  # absent from outputs written before it was recorded
        metrics["decoding"] = synth["decoding"]
    write_tsv(args.per_utt, per_utt)
    write_json(args.metrics, metrics)
    print(json.dumps(metrics, indent=1))


def _seed_of(path: Path) -> int | None:
    """The training seed of an output from its `s<seed>` folder (None: seed-free)."""
    m = re.fullmatch(r"s(\d+)", path.parent.name)
    return int(m.group(1)) if m else None


def cmd_summarize(args) -> None:
    import pandas as pd

    from .atomic import write_json
    from .evaluate.score import summarize

    metrics: dict[str, dict] = {}
    per_utt: dict[str, dict] = {}
    for path in map(Path, args.metrics):
        name, seed = path.stem, _seed_of(path)
        if seed in metrics.get(name, {}):
            raise UserError(f"{path}: a second metrics file for {name} at seed {seed}")
        metrics.setdefault(name, {})[seed] = json.loads(path.read_text())
        per_utt.setdefault(name, {})[seed] = pd.read_csv(path.with_suffix(".tsv"), sep="\t", keep_default_na=False)
    summary = summarize(metrics, per_utt)
    if args.token_stats:
        from .token_stats import add_token_stats

        stats: dict[str, list] = {}
        for path in map(Path, args.token_stats):
            if not path.stem.startswith("tokens_"):
                raise UserError(f"{path}: expected a tokens_<tokenizer>.json file")
            stats.setdefault(path.stem[len("tokens_") :], []).append(json.loads(path.read_text()))
        pairs = [item.partition("=") for item in args.tokenizer_of]
        bad = [a for a, eq, b in pairs if not (eq and a and b)]
        if bad:
            raise UserError(f"--tokenizer-of: expected NAME=TOKENIZER, got {bad}")
        add_token_stats(summary, stats, {a: b for a, _, b in pairs}, split=args.token_split)
    write_json(args.out, summary)
    print(json.dumps(summary, indent=1))


def cmd_report(args) -> None:
    import pandas as pd

    from .report.html import build_report

    summary = json.loads(Path(args.summary).read_text())
    items = pd.read_csv(args.items, sep="\t", keep_default_na=False)

    def run_dir(root: str, name: str) -> Path:
        """A row's outputs under root: its first training seed's for a seeded row."""
        seeds = summary[name].get("seeds")
        return Path(root) / f"s{seeds[0]}" if seeds else Path(root)

    per_utt = {
        name: pd.read_csv(run_dir(args.metrics_dir, name) / f"{name}.tsv", sep="\t", keep_default_na=False)
        for name in summary
    }
    wav_dirs = {name: run_dir(args.samples_dir, name) / name for name in summary}
    # Training curves of the first seed (results/train_logs/s<seed>/<system>/<component>/).
    seeds = [e["seeds"][0] for e in summary.values() if e.get("seeds")]
    logs_root = Path(args.train_logs_dir) / (f"s{seeds[0]}" if seeds else "")
    curves = {}
    for log in sorted(logs_root.glob("*/*/*_log.tsv")):
        system, component = log.parts[-3], log.parts[-2]
        curves[f"{system}/{component}/{log.stem.replace('_log', '')}"] = pd.read_csv(log, sep="\t")
    build_report(summary, per_utt, items, wav_dirs, curves, Path(args.out_dir), n_audio=args.n_audio)


def cmd_plan(args) -> None:
    from .atomic import write_json
    from .config import load_params
    from .plan import Assumptions, format_plan, make_plan, profile_nproc

    if not 0 < args.mfu <= 1:
        raise UserError(f"plan: --mfu {args.mfu} is not a fraction in (0, 1]")
    params = load_params(args.params, args.configfile)
    assumptions = Assumptions(card=args.card, mfu=args.mfu, device="cuda")
    if args.corpus_hours is not None:
        assumptions.corpus_hours = args.corpus_hours
    if args.corpus_utterances is not None:
        assumptions.corpus_utterances = args.corpus_utterances
    plan = make_plan(params, assumptions, profile_nproc(args.profile))
    print(format_plan(plan))
    if args.json:
        write_json(args.json, plan)


def cmd_plan_check(args) -> None:
    from .config import load_params
    from .dryrun import check_plan, disagreements, format_check

    params = load_params(args.params, args.configfile)
    results = check_plan(params, Path(args.corpus), args.units, args.batch, args.seconds,
                         device=args.device)
    print(format_check(results))
    if args.json:
        from .atomic import write_json

        write_json(args.json, results)
    off = disagreements(results, args.tolerance)
    if off:
        raise UserError("the plan and the measurement disagree:\n" + "\n".join(off))


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

    p = add("corpus-digest", cmd_corpus_digest, "content digest of a real corpus (DVC's view of data.corpus_path)")
    p.add_argument("--params", default="params.yaml", help="params.yaml path or inline JSON")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--cache", default=None, help="per-file sha256 cache keyed by path, size, mtime")

    p = add("validate", cmd_validate, "validate rows and write train/dev/test manifests")
    p.add_argument("--params", required=True)
    p.add_argument("--raw", required=True, help="raw manifest from prepare-corpus")
    p.add_argument("--out-dir", required=True)

    p = add("features", cmd_features, "log-mel + text ids for one split manifest")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--text-frontend", choices=["chars", "phones"], default="chars")

    p = add("speaker-check", cmd_speaker_check, "resemblyzer check that speakers differ")
    p.add_argument("--manifests", nargs="+", required=True)
    p.add_argument("--per-speaker", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = add("train", cmd_train, "train one component (resumes from its last.pt)")
    p.add_argument("component", choices=list(tasks.TASKS), help="the task (tasks.TASKS)")
    p.add_argument("--params", required=True, help="params.yaml path or inline JSON")
    p.add_argument("--section", default=None, help="params section of the objective (joint_e2_*)")
    p.add_argument("--train-section", default=None, help="params section whose `train` is used")
    p.add_argument("--init", default=None, help="checkpoint to start from (stage 2 / E2; joint_e1: the tokenizer)")
    p.add_argument("--init-flow", default=None, help="joint_e1: warm-start E1's flow from this flow final.pt")
    p.add_argument("--init-llm", default=None, help="joint_e1: warm-start E1's LLM from this llm final.pt")
    p.add_argument("--init-reward", default=None,
                   help="joint_e1: warm-start E1's reward model from this reward final.pt (same training speakers)")
    p.add_argument("--flow", default=None, help="frozen flow checkpoint (joint_e2)")
    p.add_argument("--reward", default=None, help="frozen reward checkpoint (joint_e2)")
    p.add_argument("--tokenizer", default=None,
                   help="the tokens' tokenizer, aligning text to tokens (llm, joint_e2; alignment: interleaved)")
    p.add_argument("--features-dir", default="data/features")
    p.add_argument("--tokens-dir", default=None, help="speech tokens (llm, flow)")
    p.add_argument("--manifest-dir", default="data/manifests", help="wav manifests (vocoder)")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="export the weights every N steps for `e2etts learning-curve` (llm, flow)")
    p.add_argument("--out-dir", required=True, help="checkpoint directory")
    p.add_argument("--log-dir", default=None,
                   help="train/dev/snapshot logs (wall-clock columns); default: the checkpoint directory")

    p = add("learning-curve", cmd_learning_curve,
            "score a run's snapshots (train --snapshot-every) on the dev list -> curve_log.tsv")
    p.add_argument("component", choices=[name for name, spec in tasks.TASKS.items() if spec.curves])
    p.add_argument("--params", required=True, help="params.yaml path or inline JSON (curves, synthesis, "
                   "vocoder, eval, seed)")
    p.add_argument("--checkpoint-dir", required=True, help="the run's checkpoint directory (snapshots/)")
    p.add_argument("--log-dir", required=True, help="the run's log directory (snapshot_log.tsv)")
    p.add_argument("--items", required=True, help="the fixed dev list (data/manifests/dev_items.tsv)")
    p.add_argument("--tokenizer", required=True, help="the tokens' tokenizer final.pt")
    p.add_argument("--flow", default=None, help="a trained flow final.pt (the llm's probe decodes with it)")
    p.add_argument("--features", default="data/features/dev.pt",
                   help="a feature file of the run (its text front end)")
    p.add_argument("--out", required=True, help="curve_log.tsv")

    p = add("export-components", cmd_export_components, "split a joint E1 checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out-dir", required=True)

    p = add("extract-tokens", cmd_extract_tokens, "speech tokens for feature files")
    p.add_argument("--tokenizer", required=True, help="tokenizer final.pt")
    p.add_argument("--features", nargs="+", required=True)
    p.add_argument("--out", nargs="+", required=True)
    p.add_argument("--stats", default=None, help="write codebook statistics JSON here")

    p = add("token-stats", cmd_token_stats, "token diagnostics: code entropy, consecutive-code MI")
    p.add_argument("--tokens", nargs="+", required=True, help="token files, one per split (<split>.pt)")
    p.add_argument("--out", required=True, help="JSON: {split: statistics}")
    p.add_argument("--shuffles", type=int, default=5, help="seeded successor shuffles for the MI baseline")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles")

    p = add("assemble-system", cmd_assemble_system, "write a system.json naming its checkpoints")
    p.add_argument("--params", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--llm", required=True)
    p.add_argument("--flow", required=True)
    p.add_argument("--vocoder", default=None, help="vocoder final.pt (vocoder.type: vocos)")
    p.add_argument("--out", required=True)

    p = add("synthesize", cmd_synthesize, "zero-shot synthesis with a trained system")
    p.add_argument("--system", required=True, help="system directory, e.g. results/checkpoints/cascade")
    p.add_argument("--text")
    p.add_argument("--prompt-wav")
    p.add_argument("--prompt-text")
    p.add_argument("--out", help="output wav (16 kHz)")
    p.add_argument("--items", help="batch form: TSV with item_id, prompt_wav, prompt_text, target_text")
    p.add_argument("--out-dir", help="batch form: where <item_id>.wav go")
    p.add_argument("--seed", type=int, default=0)
    p = add("make-items", cmd_make_items, "the fixed test list (prompt + unseen target sentence)")
    p.add_argument("--test", required=True, help="test manifest")
    p.add_argument("--train", required=True, help="train manifest (which speakers are seen)")
    p.add_argument("--n-items", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = add("topline", cmd_topline, "ground truth, vocoded ground truth, token resynthesis")
    p.add_argument("kind", choices=["gt", "gt_vocoded", "resynth"])
    p.add_argument("--items", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--vocoder", default=None, help="vocoder final.pt (vocoder.type: vocos)")
    p.add_argument("--system", default=None, help="system directory (resynth)")
    p.add_argument("--seed", type=int, default=0)

    p = add("score", cmd_score, "WER and SIM of one system's outputs")
    p.add_argument("--params", required=True)
    p.add_argument("--items", required=True)
    p.add_argument("--wav-dir", required=True)
    p.add_argument("--system", required=True)
    p.add_argument("--per-utt", required=True)
    p.add_argument("--metrics", required=True)

    p = add("summarize", cmd_summarize, "summary.json over systems, p-values vs cascade")
    p.add_argument("--metrics", nargs="+", required=True, help="per-system metrics JSON files")
    p.add_argument("--token-stats", nargs="*", default=[], help="tokens_<tokenizer>.json files")
    p.add_argument("--tokenizer-of", nargs="*", default=[], help="NAME=TOKENIZER per row")
    p.add_argument("--token-split", default="train", help="split of the token figures in the summary")
    p.add_argument("--out", required=True)

    p = add("report", cmd_report, "results/report/index.html and README.md")
    p.add_argument("--summary", required=True)
    p.add_argument("--items", required=True)
    p.add_argument("--metrics-dir", required=True)
    p.add_argument("--samples-dir", required=True)
    p.add_argument("--train-logs-dir", default="results/train_logs", help="<system>/<component>/*_log.tsv")
    p.add_argument("--n-audio", type=int, default=5, help="test items with audio players")
    p.add_argument("--out-dir", required=True)

    # Literal, so that building the parser imports no torch; tests/test_plan.py checks them
    # against plan.CARDS and dryrun.UNITS.
    cards = ["a100-sxm", "h100-sxm", "h200"]
    units = ["tokenizer", "llm", "flow", "reward", "joint_e1", "joint_e2"]
    p = add("plan", cmd_plan, "parameters, FLOPs, memory and device-hours of a configuration")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--configfile", nargs="*", default=[], help="overrides merged over --params, in order")
    p.add_argument("--profile", default=None, help="Snakemake profile directory: resources.nproc per rule")
    p.add_argument("--card", choices=cards, default="h200")
    p.add_argument("--mfu", type=float, default=0.35, help="assumed model-FLOPs utilization")
    p.add_argument("--corpus-hours", type=float, default=None, help="default: LibriTTS train subsets")
    p.add_argument("--corpus-utterances", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the plan here")

    p = add("plan-check", cmd_plan_check, "dry run: one measured training step per component vs the plan")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--configfile", nargs="*", default=[], help="overrides merged over --params, in order")
    p.add_argument("--corpus", required=True, help="a LibriTTS-layout directory (a few utterances)")
    p.add_argument("--units", nargs="+", default=units, choices=units)
    p.add_argument("--batch", type=int, default=1, help="utterances in the measured batch")
    p.add_argument("--seconds", type=float, default=3.0, help="audio per utterance (cut or tiled)")
    p.add_argument("--tolerance", type=float, default=0.25, help="fail when memory differs by more (relative)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: measured on the first GPU (allocator memory, step time, MFU)")
    p.add_argument("--json", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a command line, not a call from Python: it may re-execute itself
        from .allocator import reexec_with_allocator

        reexec_with_allocator(sys.argv[1:])
    pin_kernel_paths()
    fix_malloc_thresholds()
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
