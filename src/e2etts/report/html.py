"""The comparison report: ``index.html`` (self-contained) and ``README.md``.

index.html has no JavaScript and no external URL: CSS is inline, the charts are inline
SVG (WER and SIM bars with 95% bootstrap whiskers, training curves; ``report/charts.py``)
and the audio samples are base64 ``data:`` URLs, so the file can be mailed or archived alone.
README.md carries the same comparison table in Markdown, the paired-bootstrap p-values,
the flags and a note on the judges.

Both are Jinja2 templates shipped with the package (``report/templates/``); this module
only turns the summary, tables and logs into their context. index.html is auto-escaped,
README.md is not (Markdown).
"""

from __future__ import annotations

import base64
import html
import math
from functools import cache
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from ..atomic import write_text
from .charts import Bar, bar_chart, line_chart

MAX_AUDIO_BYTES = 3_000_000  # per sample; longer outputs are listed, not embedded
# Training-log columns that are bookkeeping, not curves.
NOT_CURVES = {
    "step",
    "epoch",
    "wall_s",
    "train_min",
    "probe_s",
    "lr",
    "grad_norm",
    "ntp_ramp",
    "tau",
}
CODE_WORDS = ("code", "perplexity", "entropy", "usage")
RANKING_NOTE = "Rank = order by corpus WER among the systems (toplines and unintelligible rows are not ranked)."
# Columns of the HTML tables that hold text (left-aligned); the others are numbers.
COMPARISON_TEXT_COLS = ("system", "note")
TOKEN_TEXT_COLS = ("tokenizer", "used by", "split")


# ---------------------------------------------------------------------------- formatting
def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _pct(x) -> str:
    v = _num(x)
    return "-" if v is None else f"{100 * v:.1f}%"


def _f3(x) -> str:
    v = _num(x)
    return "-" if v is None else f"{v:.3f}"


def _pval(x) -> str:
    v = _num(x)
    if v is None:
        return "-"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _ci(ci, fmt) -> str:
    if not ci or len(ci) != 2 or _num(ci[0]) is None:
        return "-"
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def baselines_of(summary: dict) -> list[str]:
    """The rows the systems were tested against (``p_wer_lower_than_<row>`` keys), in the
    order first met: the cascade, then its compute-matched control."""
    found: list[str] = []
    for entry in summary.values():
        for key in entry:
            if key.startswith("p_wer_lower_than_"):
                name = key[len("p_wer_lower_than_") :]
                if name not in found:
                    found.append(name)
    return sorted(found, key=lambda n: (n != "cascade", found.index(n)))


def _factor(summary: dict) -> str:
    """The unintelligibility factor as summarize applied it (e.g. "3x"), from summary.json."""
    factors = {e["unintelligible_factor"] for e in summary.values() if "unintelligible_factor" in e}
    return f"{factors.pop():g}x" if len(factors) == 1 else "a multiple of"


def _seed_count(entry: dict) -> int:
    """Training seeds behind a summary row (1 for a row no training seed touches)."""
    return len(entry.get("seeds") or [None])


def _seed_counts(summary: dict) -> list[int]:
    return [_seed_count(e) for e in summary.values()]


def display_order(summary: dict) -> list[str]:
    """Toplines first (gt, gt_vocoded, resynth_*), then the baselines, then the other systems.

    summary.json is written with sorted keys, so its own order carries no meaning.
    """
    fixed = [n for n in ("gt", "gt_vocoded") if n in summary]
    resynth = sorted(n for n in summary if n.startswith("resynth_"))
    head = fixed + resynth + [b for b in baselines_of(summary) if b in summary]
    return head + [n for n in summary if n not in head]


def judges_note(summary: dict) -> str:
    """One line naming the WER and SIM judges found in the summary."""
    asr = sorted({str(e["asr_judge"]) for e in summary.values() if e.get("asr_judge")})
    sim = sorted({str(e["sim_judge"]) for e in summary.values() if e.get("sim_judge")})
    norm = sorted({str(e["text_normalizer"]) for e in summary.values() if e.get("text_normalizer")})
    return (
        f"WER judge: {', '.join(asr) or 'Whisper (faster-whisper)'}"
        + (f", text normalizer: {', '.join(norm)}" if norm else "")
        + "; "
        f"SIM judge: {', '.join(sim) or 'resemblyzer'} (cosine of speaker embeddings, output vs prompt, 16 kHz)."
    )


def comparison_rows(summary: dict) -> list[dict[str, str]]:
    """The comparison table as display strings, one dict per system (summary order)."""
    baselines = baselines_of(summary)
    several_seeds = max(_seed_counts(summary), default=1) > 1
    rows = []
    for name, m in summary.items():
        if m.get("unintelligible"):
            note = "unintelligible: not ranked"
        elif m.get("topline"):
            note = "topline"
        else:
            note = ""
        row = {
            "system": name,
            "rank": str(m["wer_rank"]) if m.get("wer_rank") else "-",
            "WER": _pct(m.get("wer")),
            "WER 95% CI": _ci(m.get("wer_ci95"), _pct),
            "WER utt-mean": _pct(m.get("wer_utt_mean")),
            "words hit": _pct(m.get("word_hit_rate")),
            "empty": str(m.get("n_empty_hypotheses", "-")),
            "SIM": _f3(m.get("sim")),
            "SIM 95% CI": _ci(m.get("sim_ci95"), _f3),
            "WER seen / unseen": f"{_pct(m.get('wer_seen'))} / {_pct(m.get('wer_unseen'))}",
            "SIM seen / unseen": f"{_f3(m.get('sim_seen'))} / {_f3(m.get('sim_unseen'))}",
            "RTF": _f3(m.get("rtf")),
            "missing": f"{m.get('n_missing', 0)}/{m.get('n_items', '-')}",
        }
        if several_seeds:
            per_seed = m.get("wer_per_seed")
            row["seeds"] = str(len(m.get("seeds") or [])) or "-"
            row["WER per seed"] = (
                " / ".join(_pct(v) for v in per_seed) if per_seed else _pct(m.get("wer"))
            )
            row["WER seed sd"] = _pct(m.get("wer_seed_sd"))
        for baseline in baselines:
            row[f"p WER < {baseline}"] = _pval(m.get(f"p_wer_lower_than_{baseline}"))
            row[f"p SIM > {baseline}"] = _pval(m.get(f"p_sim_higher_than_{baseline}"))
        row["note"] = note
        rows.append(row)
    return rows


TOKEN_NOTE = (
    "Token diagnostics (issue 16), per tokenizer, on the split named: H = unigram code entropy "
    "H(X_n); I = mutual information I(X_{n+1}; X_n) between consecutive codes within "
    "utterances. The plug-in I over the codebook-squared joint table is biased upward; the "
    "baseline is the plug-in I after seeded shuffles of all successors (same marginals, no "
    "dependence) and I corrected = raw - baseline. The correction is conservative (it tends "
    "to understate I) and depends on the number of pairs: compare tokenizers on the same split. "
    "Bits; the paper reports H 10.9-11.4 and I 2.50-2.55 on a larger codebook."
)


def token_rows(summary: dict) -> list[dict[str, str]]:
    """One display row per tokenizer found in the summary (``tokenizer`` and the ``token_*``
    keys that ``token_stats.add_token_stats`` copies into each row using it)."""
    users: dict[str, list[str]] = {}
    first: dict[str, dict] = {}
    for name, m in summary.items():
        tok = m.get("tokenizer")
        if not tok or _num(m.get("token_mi_bits")) is None:
            continue
        users.setdefault(tok, []).append(name)
        first.setdefault(tok, m)
    rows = []
    for tok, m in first.items():
        n_pairs = _num(m.get("token_n_pairs"))
        rows.append(
            {
                "tokenizer": tok,
                "used by": ", ".join(users[tok]),
                "split": str(m.get("token_split", "-")),
                "pairs": "-" if n_pairs is None else f"{int(n_pairs):,}",
                "H (bits)": _f3(m.get("token_entropy_bits")),
                "I raw (bits)": _f3(m.get("token_mi_bits_raw")),
                "I baseline (bits)": _f3(m.get("token_mi_bits_shuffled")),
                "I corrected (bits)": _f3(m.get("token_mi_bits")),
            }
        )
    return rows


def method_note(summary: dict) -> str:
    """The paragraph on how WER, SIM, intervals and p-values were computed (both files)."""
    baselines = baselines_of(summary)
    n_seeds = max(_seed_counts(summary), default=1)
    return (
        "WER is corpus WER (all errors / all reference words) over the fixed test list after one "
        "normalization of reference and hypothesis; 'words hit' is the share of reference words "
        "the judge recognized and 'empty' counts outputs it transcribed as nothing (on babble, "
        "WER alone rewards silence); 'utt-mean' averages per-utterance WER as "
        "Seed-TTS-Eval does. "
        + (
            f"Trained systems: the mean over {n_seeds} training seeds (per-seed figures and their "
            "standard deviation in the table); 95% intervals and p-values resample seeds and "
            "utterances (two-level bootstrap). "
            if n_seeds > 1
            else "One training seed: 95% intervals resample utterances (bootstrap); a seed's "
            "spread is not in them. "
        )
        + (
            f"p-values: one-sided bootstrap against {' and '.join(baselines)} "
            "(small = better than that row; cascade_matched is the cascade given the E2E "
            "chain's extra LLM updates)."
            if baselines
            else ""
        )
    )


def paired_tests(summary: dict) -> list[dict[str, str]]:
    """One dict per (baseline, system) paired test, baseline-major: display strings, and
    ``n_seeds`` (int), the training seeds the test resampled with the items; toplines are
    not tested."""
    out = []
    for baseline in baselines_of(summary):
        base = summary.get(baseline, {})
        for name, m in summary.items():
            if f"p_wer_lower_than_{baseline}" not in m or m.get("topline"):
                continue
            out.append(
                {
                    "name": name,
                    "baseline": baseline,
                    "wer": _pct(m.get("wer")),
                    "base_wer": _pct(base.get("wer")),
                    "delta_wer": _pct(m.get(f"delta_wer_vs_{baseline}")),
                    "delta_wer_ci": _ci(m.get(f"delta_wer_vs_{baseline}_ci95"), _pct),
                    "p_wer": _pval(m.get(f"p_wer_lower_than_{baseline}")),
                    "sim": _f3(m.get("sim")),
                    "base_sim": _f3(base.get("sim")),
                    "p_sim": _pval(m.get(f"p_sim_higher_than_{baseline}")),
                    "n_paired": str(m.get("n_paired", "?")),
                    # training seeds both rows were resampled over (1: items only)
                    "n_seeds": min(_seed_count(m), _seed_count(base)),
                }
            )
    return out


def flags(summary: dict) -> list[dict]:
    """What the reader must be warned of, per system in summary order: ``kind``
    "unintelligible" (with its WER and the threshold it exceeds) or "missing" (outputs)."""
    out = []
    for name, m in summary.items():
        if m.get("unintelligible"):
            out.append(
                {
                    "kind": "unintelligible",
                    "name": name,
                    "wer": _pct(m.get("wer")),
                    "threshold": _pct(m.get("unintelligible_wer_threshold")),
                }
            )
        if m.get("n_missing"):
            out.append(
                {
                    "kind": "missing",
                    "name": name,
                    "n_missing": str(m["n_missing"]),
                    "n_items": str(m.get("n_items")),
                }
            )
    return out


# ---------------------------------------------------------------------------- charts
def _bars(summary: dict, key: str, fmt) -> list[Bar]:
    """Bars of ``summary[*][key]`` with ``<key>_ci95`` whiskers (the value itself where the
    interval is missing); unintelligible systems are grey."""
    bars = []
    for name, m in summary.items():
        v = _num(m.get(key))
        if v is None:
            continue
        ci = m.get(f"{key}_ci95") or [v, v]
        lo, hi = _num(ci[0]), _num(ci[1])
        bars.append(
            Bar(
                name=name,
                value=v,
                ci=(v if lo is None else lo, v if hi is None else hi),
                label=fmt(v),
                grey=bool(m.get("unintelligible")),
            )
        )
    return bars


def curve_panels(name: str, curve: pd.DataFrame) -> list[dict]:
    """Charts of a training log: losses; accuracies and codebook statistics when logged
    (separate panels, since their scales differ). One ``{"svg", "caption"}`` per panel."""
    numeric = [
        c
        for c in curve.columns
        if c not in NOT_CURVES and pd.to_numeric(curve[c], errors="coerce").notna().any()
    ]
    acc = [c for c in numeric if "acc" in c.lower()]
    codes = [c for c in numeric if c not in acc and any(k in c.lower() for k in CODE_WORDS)]
    loss = [c for c in numeric if c not in acc and c not in codes]
    caption = ""
    if "wall_s" in curve.columns:
        wall = pd.to_numeric(curve["wall_s"], errors="coerce").dropna()
        if len(wall):
            caption = f"{len(curve)} log rows, {float(wall.iloc[-1]):.0f} s wall time"
    elif "train_min" in curve.columns and len(curve):
        minutes = pd.to_numeric(curve["train_min"], errors="coerce").dropna()
        what = "held-out synthesis, {} probes" if name.endswith("/curve") else "{} evaluations"
        caption = f"{what.format(len(curve))} over {float(minutes.iloc[-1]):.1f} training minutes"
    panels = []
    for kind, cols in (("loss", loss), ("accuracy", acc), ("codebook", codes)):
        svg = line_chart(curve, f"{name}: {kind}", cols[:6])
        if svg:
            panels.append({"svg": svg, "caption": caption})
    return panels


# ---------------------------------------------------------------------------- audio
def _audio(path: Path | None) -> dict:
    """A sample for the page: ``data`` (base64 WAV) when embedded, else ``too_big`` (its
    file name and size) or neither (missing)."""
    if path is None or not path.is_file():
        return {"data": None, "too_big": None}
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        return {"data": None, "too_big": f"{path.name}: {size / 1e6:.1f} MB"}
    return {"data": base64.b64encode(path.read_bytes()).decode("ascii"), "too_big": None}


def _utt(per: pd.DataFrame | None, item_id: str) -> dict | None:
    """The judges' figures and transcript of one output, or None when not scored."""
    if per is None or "item_id" not in per.columns:
        return None
    hit = per[per["item_id"].astype(str) == item_id]
    if hit.empty:
        return None
    r = hit.iloc[0]
    hyp = r.get("hypothesis", "")
    hyp = hyp if isinstance(hyp, str) else ""  # NaN when a TSV was read with default NA
    return {"wer": _pct(r.get("wer")), "sim": _f3(r.get("sim")), "hypothesis": hyp}


def samples(
    summary: dict, per_utt: dict, items: pd.DataFrame, wav_dirs: dict, n_audio: int
) -> dict:
    """The samples table: ``systems`` (columns after the ground truth) and one dict per test
    item among the first n_audio (its prompt, ground truth and each system's output)."""
    # "gt" is the target recording itself, already shown as the ground-truth column.
    systems = [s for s in summary if s != "gt" and s in wav_dirs]
    rows = []
    for it in items.head(max(0, n_audio)).itertuples(index=False):
        item_id = str(it.item_id)
        rows.append(
            {
                "item_id": item_id,
                "speaker": it.speaker,
                "seen": "seen" if str(it.seen).lower() in ("true", "1") else "unseen",
                "target_text": it.target_text,
                "prompt": _audio(Path(it.prompt_wav)),
                "prompt_text": it.prompt_text,
                "target": _audio(Path(it.target_wav)),
                "outputs": [
                    {
                        "audio": _audio(Path(wav_dirs[s]) / f"{item_id}.wav"),
                        "utt": _utt(per_utt.get(s), item_id),
                    }
                    for s in systems
                ],
            }
        )
    return {"systems": systems, "rows": rows}


# ---------------------------------------------------------------------------- templates
@jinja2.pass_eval_context
def _finalize(eval_ctx, value):
    """Escape with html.escape where the template auto-escapes: markupsafe would spell
    quotes &#39; and &#34;, html.escape &#x27; and &quot; as the SVG of charts.py (and every
    report before the template) does; Markup (the charts) passes as is."""
    if eval_ctx.autoescape and not hasattr(value, "__html__"):
        return Markup(html.escape(str(value), quote=True))
    return value


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.jinja",), disabled_extensions=("md.jinja",), default=True
        ),
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,  # a misspelt context key fails, not renders empty
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, context: dict) -> str:
    """``templates/<template>`` rendered with context (auto-escaped if it ends .html.jinja)."""
    return _environment().get_template(template).render(context)


def report_context(
    summary: dict,
    per_utt: dict,
    items: pd.DataFrame,
    wav_dirs: dict,
    curves: dict,
    n_audio: int = 5,
    judges: str | None = None,
) -> dict:
    """What index.html.jinja and README.md.jinja show; build_report gives the arguments."""
    summary = {name: summary[name] for name in display_order(summary)}
    show_samples = n_audio > 0 and len(items)
    return {
        "judges": judges or judges_note(summary),
        "method": method_note(summary),
        "ranking": RANKING_NOTE,
        "factor": _factor(summary),
        "comparison": comparison_rows(summary),
        "comparison_text_cols": COMPARISON_TEXT_COLS,
        "comparison_classes": [
            "flagged" if m.get("unintelligible") else ("topline" if m.get("topline") else "")
            for m in summary.values()
        ],
        "baselines": baselines_of(summary),
        "paired": paired_tests(summary),
        "flags": flags(summary),
        "tokens": token_rows(summary),
        "token_text_cols": TOKEN_TEXT_COLS,
        "token_note": TOKEN_NOTE,
        "wer_chart": bar_chart(_bars(summary, "wer", _pct), "WER (95% CI), lower is better", True),
        "sim_chart": bar_chart(_bars(summary, "sim", _f3), "SIM (95% CI), higher is better", False),
        # None: no training logs, so no section; [] : logs with nothing to draw.
        "curves": [p for name, curve in curves.items() for p in curve_panels(name, curve)]
        if curves
        else None,
        "samples": samples(summary, per_utt, items, wav_dirs, n_audio) if show_samples else None,
    }


def build_report(
    summary: dict,
    per_utt: dict,
    items: pd.DataFrame,
    wav_dirs: dict,
    curves: dict,
    out_dir,
    n_audio: int = 5,
    judges: str | None = None,
) -> None:
    """Write ``out_dir/index.html`` and ``out_dir/README.md``.

    summary: the output of ``evaluate.score.summarize``; per_utt: system -> per-utterance
    table; items: the test list; wav_dirs: system -> folder of ``<item_id>.wav``; curves:
    log name -> training log (``step`` plus metric columns).
    """
    out_dir = Path(out_dir)
    context = report_context(summary, per_utt, items, wav_dirs, curves, n_audio, judges)
    write_text(out_dir / "index.html", render("index.html.jinja", context))
    write_text(out_dir / "README.md", render("README.md.jinja", context))
