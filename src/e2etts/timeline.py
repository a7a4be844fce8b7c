"""Where a pipeline run's minutes went: `python -m e2etts.timeline .snakemake/log/<run>.log`.

Reads one Snakemake run log (each job's start and finish time, rule, wildcards, threads and
`benchmark:` file) and prints, as Markdown:
- the run's makespan, the core-minutes its jobs held (wall x threads) and the core-minutes
  left idle on `--cores` cores;
- per rule: jobs, wall minutes, core-minutes held, CPU minutes and the largest peak RSS (from
  the benchmark files, when they exist under `--root`);
- the stretches where fewer jobs ran than there are cores, and which job ran alone then.

The log's timestamps have one-second resolution; jobs that finish within a second of their
start count as zero. A job without a "Finished" line (the run stopped) ends at the log's last
timestamp and is marked unfinished.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FINISHED = re.compile(r"^Finished job(?:id)?:? (\d+)")
_FIELD = re.compile(r"^\s+(jobid|wildcards|threads|benchmark): (.*)$")


@dataclass
class Job:
    jobid: int
    rule: str
    start: datetime
    end: datetime | None = None
    threads: int = 1
    wildcards: str = ""
    benchmark: str = ""
    bench: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.rule}[{self.wildcards}]" if self.wildcards else self.rule


def _stamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def parse_log(text: str) -> tuple[list[Job], datetime | None]:
    """Jobs of one Snakemake log in start order, and the log's last timestamp."""
    jobs: dict[int, Job] = {}  # by jobid, in start order
    last: datetime | None = None
    pending: Job | None = None  # a job block whose jobid line has not been read yet
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m:
            last = _stamp(m.group(1))
            continue
        m = _RULE.match(line)
        if m and last is not None:
            pending = Job(jobid=-1, rule=m.group(1), start=last)
            continue
        m = _FIELD.match(line)
        if m and pending is not None:
            key, value = m.group(1), m.group(2).strip()
            if key == "jobid":
                pending.jobid = int(value)
                jobs[pending.jobid] = pending
            elif key == "threads":
                pending.threads = int(value)
            elif key == "wildcards":
                pending.wildcards = value
            else:
                pending.benchmark = value
            continue
        m = _FINISHED.match(line)
        if m and last is not None:
            job = jobs.get(int(m.group(1)))
            if job is not None:
                job.end = last
            pending = None
    return list(jobs.values()), last


def read_benchmarks(jobs: list[Job], root: Path) -> None:
    """Attach each job's `benchmark:` row (s, cpu_time, max_rss, ...) where the file exists."""
    for job in jobs:
        path = root / job.benchmark if job.benchmark else None
        if path is not None and path.is_file():
            table = pd.read_csv(path, sep="\t")
            if len(table):
                job.bench = table.iloc[-1].to_dict()


def summarize(jobs: list[Job], last: datetime | None, cores: int) -> dict:
    """Makespan, held and idle core-minutes, per-rule totals and the under-filled stretches."""
    if not jobs:
        raise ValueError("no jobs in the log: is it a Snakemake run log?")
    t0 = min(j.start for j in jobs)
    t_end = max([j.end for j in jobs if j.end] + ([last] if last else []))

    def minutes(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() / 60.0

    spans = [(minutes(t0, j.start), minutes(t0, j.end or t_end), j) for j in jobs]
    makespan = minutes(t0, t_end)
    held = sum((b - a) * j.threads for a, b, j in spans)

    rules: dict[str, dict] = {}
    for a, b, j in spans:
        r = rules.setdefault(j.rule, {"jobs": 0, "wall_min": 0.0, "core_min": 0.0, "cpu_min": 0.0, "max_rss_mb": 0.0})
        r["jobs"] += 1
        r["wall_min"] += b - a
        r["core_min"] += (b - a) * j.threads
        r["cpu_min"] += float(j.bench.get("cpu_time", 0.0)) / 60.0
        r["max_rss_mb"] = max(r["max_rss_mb"], float(j.bench.get("max_rss", 0.0)))

    # Sweep the start/end events: stretches where the running jobs held fewer threads than cores.
    events = sorted({0.0, makespan} | {a for a, _, _ in spans} | {b for _, b, _ in spans})
    underfilled = []
    for lo, hi in zip(events[:-1], events[1:], strict=True):
        if hi - lo <= 0:
            continue
        running = [j for a, b, j in spans if a <= lo and b >= hi]
        busy = sum(j.threads for j in running)
        if busy < cores:
            names = ", ".join(j.name for j in running) or "(none)"
            if underfilled and underfilled[-1]["jobs"] == names and abs(underfilled[-1]["end_min"] - lo) < 1e-9:
                underfilled[-1]["end_min"] = hi
                underfilled[-1]["idle_core_min"] += (cores - busy) * (hi - lo)
            else:
                underfilled.append({"start_min": lo, "end_min": hi, "jobs": names,
                                    "idle_core_min": (cores - busy) * (hi - lo)})
    return {
        "start": t0.isoformat(), "makespan_min": makespan, "cores": cores,
        "held_core_min": held, "idle_core_min": cores * makespan - held,
        "unfinished": [j.name for j in jobs if j.end is None],
        "rules": rules, "underfilled": underfilled,
    }


def to_markdown(summary: dict, min_stretch: float = 1.0) -> str:
    h, m = divmod(round(summary["makespan_min"]), 60)
    out = [
        f"makespan **{h} h {m:02d} min** ({summary['makespan_min']:.1f} min) on {summary['cores']} cores; "
        f"jobs held {summary['held_core_min']:.0f} core-minutes, {summary['idle_core_min']:.0f} core-minutes idle",
        "",
        "| rule | jobs | wall min | core-min held | CPU min | largest peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule, r in sorted(summary["rules"].items(), key=lambda kv: -kv[1]["core_min"]):
        rss = f"{r['max_rss_mb']:.0f}" if r["max_rss_mb"] else "-"
        cpu = f"{r['cpu_min']:.1f}" if r["cpu_min"] else "-"
        out.append(f"| {rule} | {r['jobs']} | {r['wall_min']:.1f} | {r['core_min']:.1f} | {cpu} | {rss} |")
    out += ["", f"Stretches of at least {min_stretch:g} min with a core idle:", "",
            "| from min | to min | idle core-min | running |", "| --- | --- | --- | --- |"]
    for s in summary["underfilled"]:
        if s["end_min"] - s["start_min"] >= min_stretch:
            out.append(f"| {s['start_min']:.1f} | {s['end_min']:.1f} | {s['idle_core_min']:.1f} | {s['jobs']} |")
    if summary["unfinished"]:
        out += ["", "Unfinished (no Finished line): " + ", ".join(summary["unfinished"])]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="a Snakemake run log (.snakemake/log/*.snakemake.log)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--root", default=".", help="the checkout whose benchmarks/ the log's jobs wrote")
    ap.add_argument("--min-stretch", type=float, default=1.0, help="list idle stretches at least this long (min)")
    args = ap.parse_args()
    path = Path(args.log)
    if not path.is_file():
        raise SystemExit(f"timeline: no such log file: {path}")
    jobs, last = parse_log(path.read_text())
    read_benchmarks(jobs, Path(args.root))
    try:
        summary = summarize(jobs, last, args.cores)
    except ValueError as err:
        raise SystemExit(f"timeline: {path}: {err}") from None
    print(to_markdown(summary, args.min_stretch))


if __name__ == "__main__":
    main()
