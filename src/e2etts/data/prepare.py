"""Data stages the workflow calls: corpus -> validated split manifests -> features."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..atomic import write_json, write_tsv
from ..errors import UserError

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")
MANIFEST_COLUMNS = ["utt_id", "speaker", "text", "wav", "duration", "split", "seen"]


def prepare_corpus(data: dict, seed: int, out_manifest: Path, wav_dir: Path, jobs: int) -> pd.DataFrame:
    """Build the raw manifest (all splits) from the embedded corpus or a real one."""
    source = data["source"]
    if source == "embedded":
        from .embedded import plan_embedded_corpus
        from .sentences import load_wordnet_sentences
        from .synth import synthesize_corpus
        from .voices import make_speakers

        emb = data["embedded"]
        sentences = load_wordnet_sentences(
            min_words=emb["min_words"], max_words=emb["max_words"]
        )
        speakers = make_speakers(emb["base_voices"], emb["variants_per_voice"], seed)
        plan = plan_embedded_corpus(
            sentences,
            [s.name for s in speakers],
            n_train=emb["n_train"],
            n_dev=emb["n_dev"],
            n_test_seen_speakers=emb["n_test_seen_speakers"],
            n_test_unseen_speakers=emb["n_test_unseen_speakers"],
            n_dev_unseen_speakers=emb["n_dev_unseen_speakers"],
            test_utts_per_speaker=emb["test_utts_per_speaker"],
            seed=seed,
        )
        log.info("synthesizing %d utterances for %d speakers with %d jobs",
                 len(plan), len(speakers), jobs)
        frame = synthesize_corpus(plan, {s.name: s for s in speakers}, wav_dir, jobs)
    else:
        from .readers import read_libritts, read_ljspeech, split_real_corpus

        root = data["corpus_path"]
        if not root:
            raise UserError(f"params.yaml: data.corpus_path must be set when data.source={source}")
        from .readers import BAD

        read = read_ljspeech(root, data["on_bad_row"]) if source == "ljspeech" else read_libritts(root)
        real = data["real"]
        # Malformed metadata lines (kept only under on_bad_row: skip) take no part in the
        # split; they ride along in the raw manifest so validation counts them in the report.
        bad = read[read[BAD] != ""] if BAD in read.columns else read.iloc[:0]
        frame = split_real_corpus(
            read.drop(bad.index).drop(columns=[BAD], errors="ignore").reset_index(drop=True),
            dev_fraction=real["dev_fraction"],
            test_fraction=real["test_fraction"],
            n_unseen_speakers=real["n_unseen_speakers"],
            seed=seed,
        )
        if len(bad):
            frame = pd.concat([frame.assign(**{BAD: ""}), bad.assign(split="none", seen=False)],
                              ignore_index=True)
    write_tsv(out_manifest, frame)
    return frame


def validate_splits(data: dict, raw_manifest: Path, out_dir: Path) -> dict:
    """Validate every row, write train/dev/test manifests and the data report."""
    from .report import corpus_report
    from .validate import validate_manifest

    frame = pd.read_csv(raw_manifest, sep="\t", keep_default_na=False)
    clean, report = validate_manifest(
        frame,
        sample_rate=data["sample_rate"],
        min_duration=data["min_duration"],
        max_duration=data["max_duration"],
        on_bad_row=data["on_bad_row"],
    )
    manifests = {}
    for split in SPLITS:
        part = clean[clean["split"] == split]
        if part.empty:
            raise UserError(f"{raw_manifest}: split '{split}' is empty after validation")
        columns = [c for c in MANIFEST_COLUMNS if c in part.columns]
        manifests[split] = part[columns].reset_index(drop=True)
    for split, part in manifests.items():
        write_tsv(out_dir / f"{split}.tsv", part)
    report = {"validation": report, "corpus": corpus_report(manifests)}
    write_json(out_dir / "data_report.json", report)
    return report
