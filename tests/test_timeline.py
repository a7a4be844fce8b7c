"""The run-timeline reader: job spans, held and idle core-minutes, under-filled stretches."""

from __future__ import annotations

import pytest

from e2etts.timeline import main, parse_log, read_benchmarks, summarize, to_markdown


def _block(stamp: str, rule: str, jobid: int, wildcards: str = "", threads: int = 1, bench: str = "") -> str:
    lines = [f"[Thu Dec  3 {stamp} 2026]", f"localrule {rule}:", "    input: a", "    output: b",
             f"    jobid: {jobid}"]
    if bench:
        lines.append(f"    benchmark: {bench}")
    if wildcards:
        lines.append(f"    wildcards: {wildcards}")
    if threads > 1:
        lines.append(f"    threads: {threads}")
    lines.append("Shell command: e2etts something > log 2>&1")
    return "\n".join(lines)


def _finish(stamp: str, jobid: int, rule: str) -> str:
    return f"[Thu Dec  3 {stamp} 2026]\nFinished jobid: {jobid} (Rule: {rule})\n1 of 4 steps (25%) done"


# Two cores. features (2 threads) 10:00-10:02; then flow 10:02-10:12 and llm 10:02-10:06;
# then score 10:06-10:08; flow runs alone 10:08-10:12.
LOG = "\n".join([
    "Building DAG of jobs...",
    _block("10:00:00", "features", 1, threads=2, bench="benchmarks/features.tsv"),
    _finish("10:02:00", 1, "features"),
    _block("10:02:00", "train_flow", 2, wildcards="seed=1234, system=cascade"),
    _block("10:02:00", "train_llm", 3, wildcards="seed=1234, system=cascade"),
    _finish("10:06:00", 3, "train_llm"),
    _block("10:06:00", "score", 4),
    _finish("10:08:00", 4, "score"),
    _finish("10:12:00", 2, "train_flow"),
])


def test_spans_held_and_idle_core_minutes(tmp_path):
    jobs, last = parse_log(LOG)
    assert [j.rule for j in jobs] == ["features", "train_flow", "train_llm", "score"]
    assert jobs[0].threads == 2 and jobs[1].wildcards == "seed=1234, system=cascade"
    s = summarize(jobs, last, cores=2)
    assert s["makespan_min"] == pytest.approx(12.0)
    # features 2 min x 2 threads + flow 10 + llm 4 + score 2 = 20 core-minutes held of 24.
    assert s["held_core_min"] == pytest.approx(20.0)
    assert s["idle_core_min"] == pytest.approx(4.0)
    assert s["unfinished"] == []
    (stretch,) = s["underfilled"]
    assert (stretch["start_min"], stretch["end_min"]) == pytest.approx((8.0, 12.0))
    assert stretch["jobs"] == "train_flow[seed=1234, system=cascade]"
    assert s["rules"]["features"]["core_min"] == pytest.approx(4.0)


def test_benchmark_rows_and_markdown(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks/features.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "120.0\t0:02:00\t1234.5\t1\t1\t1\t0\t0\t190\t228.0\n")
    jobs, last = parse_log(LOG)
    read_benchmarks(jobs, tmp_path)
    s = summarize(jobs, last, cores=2)
    assert s["rules"]["features"]["cpu_min"] == pytest.approx(3.8)
    assert s["rules"]["features"]["max_rss_mb"] == pytest.approx(1234.5)
    text = to_markdown(s)
    assert "makespan **0 h 12 min**" in text
    assert "| features | 1 | 2.0 | 4.0 | 3.8 | 1234 |" in text  # 1234.5 rounds to even
    assert "| 8.0 | 12.0 | 4.0 | train_flow[seed=1234, system=cascade] |" in text


def test_a_stopped_run_marks_its_running_job_unfinished():
    log = "\n".join([_block("10:00:00", "train_llm", 7), "[Thu Dec  3 10:30:00 2026]", "Terminating processes..."])
    jobs, last = parse_log(log)
    s = summarize(jobs, last, cores=2)
    assert s["unfinished"] == ["train_llm"]
    assert s["makespan_min"] == pytest.approx(30.0)
    assert s["idle_core_min"] == pytest.approx(30.0)


def test_a_log_without_jobs_is_refused():
    with pytest.raises(ValueError, match="no jobs"):
        summarize(*parse_log("Building DAG of jobs...\nNothing to be done."), cores=2)


def test_the_command_names_a_log_without_jobs(tmp_path, monkeypatch):
    log = tmp_path / "empty.snakemake.log"
    log.write_text("Building DAG of jobs...\nNothing to be done.\n")
    monkeypatch.setattr("sys.argv", ["timeline", str(log)])
    with pytest.raises(SystemExit, match=r"empty\.snakemake\.log: no jobs"):
        main()
