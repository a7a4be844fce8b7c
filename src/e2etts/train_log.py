"""The training loop's TSV logs (train_log.tsv, dev_log.tsv, snapshot_log.tsv) and the
learning curve's (curve_log.tsv), which
`dvc plots` and the report read. They carry wall-clock columns, so they live apart from the
checkpoints (train --log-dir)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

LOG_NAMES = ("train_log.tsv", "dev_log.tsv", "curve_log.tsv", "snapshot_log.tsv")

# Learning-curve snapshots (TrainConfig.snapshot_every): the weights in the checkpoint
# directory's snapshots/, one row per snapshot (step, train_min, snapshot) in the log
# directory's snapshot_log.tsv; `e2etts learning-curve` scores them into curve_log.tsv.
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_LOG = "snapshot_log.tsv"


class TsvLog:
    """Append-only TSV log; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        self.columns: list[str] | None = None
        self.last_row: dict[str, str] = {}  # the last row kept on resume
        if path.exists() and resume_step is not None:
            with path.open() as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            kept = [r for r in rows if int(r["step"]) <= resume_step]
            self.last_row = kept[-1] if kept else {}
            self.columns = list(rows[0].keys()) if rows else None
            with path.open("w") as fh:
                if self.columns:
                    writer = csv.DictWriter(fh, self.columns, delimiter="\t")
                    writer.writeheader()
                    writer.writerows(kept)
        elif path.exists():
            path.unlink()

    def last_value(self, column: str) -> float:
        """The column's value in the last row kept on resume (0.0 when there is none)."""
        try:
            return float(self.last_row[column])
        except (KeyError, ValueError):
            return 0.0

    def write(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row.keys())
            with self.path.open("w") as fh:
                fh.write("\t".join(self.columns) + "\n")
        with self.path.open("a") as fh:
            fh.write("\t".join(_fmt(row.get(c, "")) for c in self.columns) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
