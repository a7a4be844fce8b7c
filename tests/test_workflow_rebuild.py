"""The workflow re-runs what changed and rebuilds what is missing (issue 21, items 2 and 3).
Every pipeline here runs in a copy_repo() copy."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from workflow_utils import REPO as REPO_ROOT
from workflow_utils import copy_repo, run

pytestmark = pytest.mark.slow


def _tone(path: Path, hz: float, seconds: float = 1.2) -> None:
    t = np.arange(int(seconds * 16000)) / 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)


WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def _ljspeech(root: Path, words: list[str]) -> None:
    lines = []
    for i, word in enumerate(words):
        _tone(root / "wavs" / f"LJ001-{i:04d}.wav", 200 + 10 * i)
        lines.append(f"LJ001-{i:04d}|the word {word}|the word {word}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


def _jobs(stdout: str) -> set[str]:
    """Rule names a dry run would run (its 'rule <name>:' lines)."""
    return set(re.findall(r"^(?:local)?rule (\w+):", stdout, flags=re.M))


def test_changed_ljspeech_corpus_reruns_prepare_corpus(tmp_path):
    """Rows added to metadata.csv re-run prepare_corpus; nothing changed re-runs nothing; a
    wav replaced re-runs validation (it decodes the wavs). Failed before: the corpus files
    were no inputs of the rules, so the old manifest was reused ('Nothing to be done')."""
    repo = copy_repo(tmp_path / "repo")
    root = tmp_path / "LJSpeech-1.1"
    _ljspeech(root, WORDS)
    overlay = {"data": {"source": "ljspeech", "corpus_path": str(root), "min_duration": 0.5,
                        "real": {"dev_fraction": 0.2, "test_fraction": 0.2, "n_unseen_speakers": 0}}}
    (repo / "lj.yaml").write_text(yaml.safe_dump(overlay))
    target = ["snakemake", "data/manifests/data_report.json", "--cores", "1", "--configfile", "lj.yaml"]
    run(target, repo)
    assert _jobs(run([*target, "-n"], repo).stdout) == set()

    with open(root / "metadata.csv", "a") as meta:  # two more rows
        meta.write("LJ001-0100|the word mike|the word mike\nLJ001-0101|the word november|the word november\n")
    _tone(root / "wavs" / "LJ001-0100.wav", 400)
    _tone(root / "wavs" / "LJ001-0101.wav", 410)
    assert {"prepare_corpus", "validate_manifests"} <= _jobs(run([*target, "-n"], repo).stdout)
    run(target, repo)
    manifests = "".join((repo / f"data/manifests/{s}.tsv").read_text() for s in ("train", "dev", "test"))
    assert "the word mike" in manifests and "the word november" in manifests
    assert _jobs(run([*target, "-n"], repo).stdout) == set()

    _tone(root / "wavs" / "LJ001-0003.wav", 300, seconds=1.5)  # same name, other audio
    assert _jobs(run([*target, "-n"], repo).stdout) == {"validate_manifests"}


def _placeholder_outputs(repo: Path, config: str) -> None:
    """Every output of the smoke DAG as a placeholder file, then `snakemake --touch` to give
    them the DAG's order of modification times: the state after a finished run, in seconds
    (a dry run decides from existence and times only)."""
    out = run(["snakemake", "-n", "--forceall", "--configfile", config], repo).stdout
    for line in re.findall(r"^    output: (.*)$", out, flags=re.M):
        for name in line.split(", "):
            path = repo / name.strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("placeholder\n")
    run(["snakemake", "--touch", "--cores", "1", "--configfile", config], repo)
    assert _jobs(run(["snakemake", "-n", "--configfile", config], repo).stdout) == set()


def _seed_stage(stages: dict, name: str, seed: int) -> dict:
    """A per-seed DVC stage (`foreach: ${seeds}`) as DVC resolves it for one seed."""
    body = yaml.safe_dump(stages[name]["do"]).replace("${item}", str(seed))
    return yaml.safe_load(body)


def test_deleted_checkpoint_directory_is_rebuilt(tmp_path):
    """`rm -rf results/checkpoints/s1234/cascade/llm` then `snakemake` (and the DVC stage's
    target) retrains the LLM and re-runs what follows. Failed before: 'Nothing to be done'
    (Snakemake regenerates a missing intermediate only for a job downstream that has to
    run; system.json, the samples and the scores were present and newer)."""
    repo = copy_repo(tmp_path / "repo")
    _placeholder_outputs(repo, "config/smoke.yaml")
    shutil.rmtree(repo / "results/checkpoints/s1234/cascade/llm")
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    cascade_target = _seed_stage(dvc, "cascade", 1234)["cmd"].split()[-1]
    for target in ([], [cascade_target]):
        jobs = _jobs(run(["snakemake", *target, "-n", "--configfile", "config/smoke.yaml"], repo).stdout)
        assert {"train_llm", "assemble_system"} <= jobs, (target, jobs)
        assert "train_tokenizer" not in jobs and "train_flow" not in jobs
    jobs = _jobs(run(["snakemake", "-n", "--configfile", "config/smoke.yaml"], repo).stdout)
    assert {"synthesize_system", "score_seeded", "summarize", "report"} <= jobs

    # Each DVC stage's target requests every output the stage declares, so a deleted one is
    # rebuilt when `dvc repro` re-runs the stage.
    for stage in ("cascade", "e2e"):
        body = _seed_stage(dvc, stage, 1234)
        target = body["cmd"].split()[-1]
        for out in body["outs"]:
            name = next(iter(out)) if isinstance(out, dict) else out
            gone = repo / name
            saved = tmp_path / "saved"
            shutil.move(gone, saved)
            jobs = _jobs(run(["snakemake", target, "-n", "--configfile", "config/smoke.yaml"], repo).stdout)
            assert jobs - {f"{stage}_s1234"}, f"{stage}: {name} deleted, nothing to rebuild"
            shutil.move(saved, gone)


def test_dvc_data_stage_sees_the_corpus_content(tmp_path):
    """DVC's view of a real corpus: the data stage depends on the digest an always-run stage
    writes; the digest moves with content (rows added, a wav replaced) and not with
    modification times, and the embedded corpus gives a constant. Failed before: the data
    stage had no dependency on data.corpus_path's files."""
    import os

    from e2etts.data.source_digest import corpus_digest

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    digest_out = next(iter(stages["corpus_source"]["outs"][0]))
    assert stages["corpus_source"]["always_changed"] is True
    assert digest_out in stages["data"]["deps"]
    assert {"data.source", "data.corpus_path"} <= set(stages["corpus_source"]["params"])

    root = tmp_path / "LJSpeech-1.1"
    _ljspeech(root, WORDS[:4])
    data = {"source": "ljspeech", "corpus_path": str(root)}
    cache = tmp_path / "cache.json"
    first = corpus_digest(data, cache)
    assert first["files"] == 5 and corpus_digest(data, cache) == first
    for path in [root / "metadata.csv", *root.glob("wavs/*.wav")]:  # times only
        os.utime(path, ns=(1, 1))
    assert corpus_digest(data, cache) == first
    with open(root / "metadata.csv", "a") as meta:
        meta.write("LJ001-0100|the word mike|the word mike\n")
    added = corpus_digest(data, cache)
    assert added["sha256"] != first["sha256"]
    _tone(root / "wavs" / "LJ001-0002.wav", 300)  # same name and length, other audio
    assert corpus_digest(data, cache)["sha256"] != added["sha256"]
    assert corpus_digest(data, None) == corpus_digest(data, cache)  # the cache changes nothing
    assert corpus_digest({"source": "embedded", "corpus_path": None}) == {"source": "embedded"}
