"""The report's templates (escaping, figures taken from summary.json, packaging) and its charts."""

import re
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest

from e2etts.report.charts import Bar, bar_chart, line_chart
from e2etts.report.html import build_report

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert(1)</script>"


def _summary(factor: float = 3.0) -> dict:
    """Three rows as evaluate.score.summarize writes them, one unintelligible at ``factor``."""
    return {
        "gt_vocoded": {"wer": 0.05, "sim": 0.85, "topline": True, "unintelligible_factor": factor},
        "cascade": {"wer": 0.12, "sim": 0.80, "wer_rank": 1, "unintelligible_factor": factor},
        "babble": {
            "wer": 0.9,
            "sim": 0.3,
            "unintelligible": True,
            "unintelligible_wer_threshold": factor * 0.05,
            "unintelligible_factor": factor,
        },
    }


def _items(item_id: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [item_id],
            "speaker": ["spk0"],
            "seen": [True],
            "prompt_text": ["a prompt"],
            "target_text": ["a target"],
            "prompt_wav": ["/nonexistent/p.wav"],
            "target_wav": ["/nonexistent/t.wav"],
        }
    )


def test_names_are_escaped(tmp_path):
    summary = _summary()
    summary[f"sys{EVIL}"] = summary.pop("cascade")
    wav_dirs = {name: tmp_path / "none" for name in summary}
    build_report(summary, {}, _items(f"item{EVIL}"), wav_dirs, {}, tmp_path, n_audio=1)
    page = (tmp_path / "index.html").read_text()
    assert "<script" not in page.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # The system in the table, its chart labels (WER and SIM) and its samples column; the item.
    assert page.count(f"sys{escaped}") == 4
    assert page.count(f"item{escaped}") == 1
    # Markdown is not HTML-escaped: the README names the system as it is.
    assert f"| sys{EVIL} |" in (tmp_path / "README.md").read_text()


def test_unintelligible_factor_comes_from_the_summary(tmp_path):
    texts = {}
    for factor in (3.0, 4.5):
        out = tmp_path / str(factor)
        build_report(_summary(factor), {}, pd.DataFrame(), {}, {}, out, n_audio=0)
        texts[factor] = (out / "index.html").read_text() + (out / "README.md").read_text()
    # The page's note and flag, the README's flag and its closing note.
    assert texts[3.0].count("3x") == 4 and "4.5x" not in texts[3.0]
    assert texts[4.5].count("4.5x") == 4 and "3x" not in texts[4.5]
    assert "22.5%" in texts[4.5]  # the threshold itself: 4.5 x 5%


def test_bar_chart_draws_one_bar_and_whisker_per_value():
    bars = [
        Bar("a", 0.1, (0.05, 0.15), "10.0%"),
        Bar("b", 0.3, (0.2, 0.4), "30.0%"),
        Bar("c", 0.2, (0.2, 0.2), "20.0%", grey=True),
    ]
    svg = str(bar_chart(bars, "WER", as_percent=True))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 3
    assert svg.count('stroke="#222"') == 3 * 3  # per bar: the interval and its two caps
    assert svg.count('fill="#b8b8b8"') == 1  # the grey one
    for label in ("a", "b", "c", "10.0%", "30.0%", "20.0%"):
        assert f">{label}</text>" in svg
    assert bar_chart([], "WER", as_percent=True) == ""


def test_line_chart_draws_every_point():
    curve = pd.DataFrame(
        {
            "step": [0, 10, 20, 30, 40],
            "loss": [5.0, 4.0, float("nan"), 2.5, 2.0],
            "dev": [None] * 4 + [3.0],
        }
    )
    svg = str(line_chart(curve, "losses", ["loss", "dev"]))
    (points,) = re.findall(r'<polyline [^>]*points="([^"]*)"', svg)
    assert len(points.split()) == 4  # the NaN is skipped
    assert svg.count("<circle") == 1  # a column with one point is a dot
    assert "loss (last 2)" in svg and "dev (last 3)" in svg


def test_templates_are_package_data():
    """Every template ships in the wheel (a normal install has no source tree to read)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["e2etts.report"]
    package = ROOT / "src" / "e2etts" / "report"
    templates = sorted(p.relative_to(package).as_posix() for p in (package / "templates").iterdir())
    assert {"templates/index.html.jinja", "templates/README.md.jinja"} <= set(templates)
    for name in templates:
        assert any(fnmatch(name, pat) for pat in patterns), name
