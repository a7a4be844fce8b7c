"""The comparison report: ``index.html`` (self-contained) and ``README.md``.

index.html has no JavaScript and no external URL: CSS is inline, the charts are inline
SVG (WER and SIM bars with 95% bootstrap whiskers, training curves) and the audio samples
are base64 ``data:`` URLs, so the file can be mailed or archived alone.
README.md carries the same comparison table in Markdown, the paired-bootstrap p-values,
the flags and a note on the judges.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text

PALETTE = [
    "#4269d0",
    "#efb118",
    "#ff725c",
    "#6cc5b0",
    "#3ca951",
    "#ff8ab7",
    "#a463f2",
    "#97bbf5",
    "#9c6b4e",
]
GREY = "#b8b8b8"
MAX_AUDIO_BYTES = 3_000_000  # per sample; longer outputs are listed, not embedded
# Training-log columns that are bookkeeping, not curves.
NOT_CURVES = {"step", "epoch", "wall_s", "train_min", "probe_s", "lr", "grad_norm", "ntp_ramp", "tau"}
CODE_WORDS = ("code", "perplexity", "entropy", "usage")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;
color:#222;line-height:1.4;padding:0 12px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #d4d4d4;padding:3px 7px;font-size:13px;vertical-align:top}
th{background:#f1f1f1;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.topline td{background:#f7f9fc}tr.flagged td{color:#999}
.flag{color:#b3261e;font-weight:600}.note{color:#555;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:18px}.curves{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0}figcaption{font-size:12px;color:#555}
audio{width:170px;height:32px;display:block}.scroll{overflow-x:auto;max-width:100%}.hyp{font-size:11px;color:#555;max-width:220px}
svg text{font-family:system-ui,sans-serif}
"""


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


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


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


def _seed_counts(summary: dict) -> list[int]:
    return [len(e.get("seeds") or [None]) for e in summary.values()]


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
            row["WER per seed"] = " / ".join(_pct(v) for v in per_seed) if per_seed else _pct(m.get("wer"))
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


def markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no systems scored)"
    cols = list(rows[0])

    def cell(text) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- SVG charts
def _flagged_note(col: str, val: str) -> str:
    """The comparison table's cell text: the note of an unintelligible row is flagged."""
    if col == "note" and "unintelligible" in val:
        return f"<span class='flag'>{_esc(val)}</span>"
    return _esc(val)


def _html_table(
    rows: list[dict[str, str]],
    text_cols: tuple[str, ...],
    row_classes: list[str] | None = None,
    show=lambda col, val: _esc(val),
) -> list[str]:
    """rows (the same keys each) -> the page lines of an HTML table (header row, one line per
    row, "</table>"); columns not in text_cols are numbers (class 'num', right-aligned);
    row_classes gives each <tr> a class; show(col, val) -> the cell's HTML."""
    lines = ["<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in rows[0]) + "</tr>"]
    for i, r in enumerate(rows):
        cells = []
        for col, val in r.items():
            klass = "" if col in text_cols else " class='num'"
            cells.append(f"<td{klass}>{show(col, val)}</td>")
        tr = "<tr>" if row_classes is None else f"<tr class='{row_classes[i]}'>"
        lines.append(tr + "".join(cells) + "</tr>")
    return [*lines, "</table>"]


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    # First tick at or below lo, last at or above hi: the ticks span every value.
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def bar_chart(summary: dict, key: str, title: str, as_percent: bool) -> str:
    """Horizontal bars of ``summary[*][key]`` with ``<key>_ci95`` whiskers (inline SVG).
    Unintelligible systems are drawn grey."""
    names = [n for n in summary if _num(summary[n].get(key)) is not None]
    if not names:
        return ""
    values = [_num(summary[n][key]) for n in names]
    cis = []
    for n, v in zip(names, values, strict=True):
        ci = summary[n].get(f"{key}_ci95") or [v, v]
        cis.append(
            (
                _num(ci[0]) if _num(ci[0]) is not None else v,
                _num(ci[1]) if _num(ci[1]) is not None else v,
            )
        )
    lo = min(0.0, *values, *(c[0] for c in cis))
    hi = max(*values, *(c[1] for c in cis), 1e-9)
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    left, right, top, row_h = 150, 70, 34, 26
    width = 560
    plot_w = width - left - right
    height = top + row_h * len(names) + 30

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    fmt = _pct if as_percent else _f3
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{_esc(title)}</text>',
    ]
    axis_y = top + row_h * len(names)
    for t in ticks:
        x = x_of(t)
        label = f"{100 * t:g}%" if as_percent else f"{t:g}"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{axis_y}" stroke="#e5e5e5"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" font-size="10">{label}</text>'
        )
    for i, (name, v, (c_lo, c_hi)) in enumerate(zip(names, values, cis, strict=True)):
        y = top + i * row_h
        colour = GREY if summary[name].get("unintelligible") else PALETTE[i % len(PALETTE)]
        x0, x1 = x_of(min(0.0, v)), x_of(max(0.0, v))
        out.append(
            f'<text x="{left - 6}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" font-size="12">{_esc(name)}</text>'
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 5}" width="{max(x1 - x0, 0.5):.1f}" height="{row_h - 10}" fill="{colour}"/>'
        )
        mid = y + row_h / 2
        wl, wh = x_of(c_lo), x_of(c_hi)
        out.append(
            f'<line x1="{wl:.1f}" x2="{wh:.1f}" y1="{mid}" y2="{mid}" stroke="#222" stroke-width="1.2"/>'
        )
        for wx in (wl, wh):
            out.append(
                f'<line x1="{wx:.1f}" x2="{wx:.1f}" y1="{mid - 6}" y2="{mid + 6}" stroke="#222" stroke-width="1.2"/>'
            )
        out.append(
            f'<text x="{max(wh, x1) + 5:.1f}" y="{mid + 4}" font-size="11">{_esc(fmt(v))}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#444"/>'
    )
    out.append("</svg>")
    return "".join(out)


def line_chart(
    curve: pd.DataFrame, title: str, columns: list[str], width: int = 370, height: int = 230
) -> str:
    """Lines of ``columns`` against ``step`` (inline SVG); NaN points are skipped, so a
    dev metric logged every N steps still draws a line through its points."""
    if "step" not in curve.columns or not columns:
        return ""
    steps = pd.to_numeric(curve["step"], errors="coerce").to_numpy(float)
    series = {}
    for col in columns:
        ys = pd.to_numeric(curve[col], errors="coerce").to_numpy(float)
        ok = np.isfinite(ys) & np.isfinite(steps)
        if ok.any():
            series[col] = (steps[ok], ys[ok])
    if not series:
        return ""
    xs_all = np.concatenate([s[0] for s in series.values()])
    ys_all = np.concatenate([s[1] for s in series.values()])
    x_lo, x_hi = float(xs_all.min()), float(xs_all.max())
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    y_ticks = _nice_ticks(float(ys_all.min()), float(ys_all.max()), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    left, right, top, bottom = 46, 12, 24, 40 + 14 * ((len(series) + 1) // 2)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + plot_w * (x - x_lo) / (x_hi - x_lo)

    def py(y: float) -> float:
        return top + plot_h * (1 - (y - y_lo) / (y_hi - y_lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12" font-weight="600">{_esc(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{left - 4}" y="{py(t) + 3:.1f}" text-anchor="end" font-size="9">{t:g}</text>'
        )
    for t in _nice_ticks(x_lo, x_hi, 4):
        if x_lo <= t <= x_hi:
            out.append(
                f'<text x="{px(t):.1f}" y="{top + plot_h + 12}" text-anchor="middle" font-size="9">{t:g}</text>'
            )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 24}" text-anchor="middle" font-size="9">step</text>'
    )
    for i, (col, (xs, ys)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
        if len(xs) > 1:
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{pts}"/>'
            )
        else:
            out.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="3" fill="{colour}"/>')
        lx = left + (i % 2) * (plot_w / 2)
        ly = top + plot_h + 36 + 14 * (i // 2)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>')
        out.append(
            f'<text x="{lx + 13:.1f}" y="{ly - 4}" font-size="9">{_esc(col)} (last {ys[-1]:.3g})</text>'
        )
    out.append("</svg>")
    return "".join(out)


def curve_panels(name: str, curve: pd.DataFrame) -> list[str]:
    """Charts of a training log: losses; accuracies and codebook statistics when logged
    (separate panels, since their scales differ)."""
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
    charts = []
    for kind, cols in (("loss", loss), ("accuracy", acc), ("codebook", codes)):
        svg = line_chart(curve, f"{name}: {kind}", cols[:6])
        if svg:
            charts.append(f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>")
    return charts


# ---------------------------------------------------------------------------- audio
def _audio_tag(path: Path | None) -> str:
    if path is None or not path.is_file():
        return "<em>missing</em>"
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        return f"<em>{_esc(path.name)}: {size / 1e6:.1f} MB, not embedded</em>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def _utt_line(per: pd.DataFrame | None, item_id: str) -> str:
    if per is None or "item_id" not in per.columns:
        return ""
    hit = per[per["item_id"].astype(str) == item_id]
    if hit.empty:
        return ""
    r = hit.iloc[0]
    hyp = r.get("hypothesis", "")
    hyp = hyp if isinstance(hyp, str) else ""  # NaN when a TSV was read with default NA
    return (
        f'<div class="hyp">WER {_pct(r.get("wer"))}, SIM {_f3(r.get("sim"))}'
        f"<br>&ldquo;{_esc(hyp) if hyp else '<em>(nothing)</em>'}&rdquo;</div>"
    )


def samples_table(
    summary: dict, per_utt: dict, items: pd.DataFrame, wav_dirs: dict, n_audio: int
) -> str:
    # "gt" is the target recording itself, already shown as the ground-truth column.
    systems = [s for s in summary if s != "gt" and s in wav_dirs]
    head = ["item", "target text", "prompt", "ground truth", *systems]
    out = [
        "<div class='scroll'><table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
    ]
    for it in items.head(max(0, n_audio)).itertuples(index=False):
        item_id = str(it.item_id)
        seen = "seen" if str(it.seen).lower() in ("true", "1") else "unseen"
        cells = [
            f"{_esc(item_id)}<br><span class='note'>{_esc(it.speaker)} ({seen})</span>",
            _esc(it.target_text),
            _audio_tag(Path(it.prompt_wav)) + f"<div class='hyp'>{_esc(it.prompt_text)}</div>",
            _audio_tag(Path(it.target_wav)),
        ]
        for s in systems:
            cells.append(
                _audio_tag(Path(wav_dirs[s]) / f"{item_id}.wav")
                + _utt_line(per_utt.get(s), item_id)
            )
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table></div>")
    return "".join(out)


# ---------------------------------------------------------------------------- report
def _pvalue_lines(summary: dict) -> list[str]:
    baselines = baselines_of(summary)
    if not baselines:
        return ["- no baseline row: no paired tests"]
    lines = []
    for baseline in baselines:
        base = summary.get(baseline, {})
        for name, m in summary.items():
            if f"p_wer_lower_than_{baseline}" not in m or m.get("topline"):
                continue
            lines.append(
                f"- {name} vs {baseline}: WER {_pct(m.get('wer'))} vs {_pct(base.get('wer'))}"
                f" (difference {_pct(m.get(f'delta_wer_vs_{baseline}'))},"
                f" 95% CI {_ci(m.get(f'delta_wer_vs_{baseline}_ci95'), _pct)}),"
                f" p(WER lower) = {_pval(m.get(f'p_wer_lower_than_{baseline}'))}; "
                f"SIM {_f3(m.get('sim'))} vs {_f3(base.get('sim'))}, "
                f"p(SIM higher) = {_pval(m.get(f'p_sim_higher_than_{baseline}'))} "
                f"({m.get('n_paired', '?')} paired items)"
            )
    return lines


def _flag_lines(summary: dict) -> list[str]:
    lines = []
    for name, m in summary.items():
        if m.get("unintelligible"):
            lines.append(
                f"- **{name}: unintelligible** (WER {_pct(m.get('wer'))} > "
                f"{_pct(m.get('unintelligible_wer_threshold'))} = {_factor(summary)} the gt_vocoded WER): not ranked"
            )
        if m.get("n_missing"):
            lines.append(
                f"- {name}: {m['n_missing']} of {m.get('n_items')} outputs missing or silent (WER 1, SIM 0)"
            )
    return lines


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
    summary = {name: summary[name] for name in display_order(summary)}
    rows = comparison_rows(summary)
    judges = judges or judges_note(summary)
    baselines = baselines_of(summary)
    n_seeds = max(_seed_counts(summary), default=1)
    ranking = "Rank = order by corpus WER among the systems (toplines and unintelligible rows are not ranked)."
    method = (
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

    page = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>e2e-tts evaluation report</title><style>{CSS}</style></head><body>",
        "<h1>e2e-tts: cascade vs end-to-end training</h1>",
        f"<p class='note'>{_esc(judges)}<br>{_esc(method)}<br>{_esc(ranking)} "
        f"Rows flagged <span class='flag'>unintelligible</span> have a WER above {_esc(_factor(summary))} the vocoded "
        "ground truth (gt_vocoded).</p>",
        "<h2>Comparison</h2>",
    ]
    if rows:
        row_classes = [
            "flagged" if summary[name].get("unintelligible") else ("topline" if summary[name].get("topline") else "")
            for name in summary
        ]
        page += _html_table(rows, text_cols=("system", "note"), row_classes=row_classes, show=_flagged_note)
    flags = _flag_lines(summary)
    if flags:
        page.append(
            "<ul>" + "".join(f"<li>{_esc(f[2:].replace('**', ''))}</li>" for f in flags) + "</ul>"
        )
    tok_rows = token_rows(summary)
    if tok_rows:
        page.append("<h2>Token diagnostics</h2>")
        table = _html_table(tok_rows, text_cols=("tokenizer", "used by", "split"))
        page += [*table[:-1], f"{table[-1]}<p class='note'>{_esc(TOKEN_NOTE)}</p>"]
    page.append("<h2>WER and SIM</h2><div class='charts'>")
    page.append(bar_chart(summary, "wer", "WER (95% CI), lower is better", True))
    page.append(bar_chart(summary, "sim", "SIM (95% CI), higher is better", False))
    page.append("</div>")
    if curves:
        page.append("<h2>Training curves</h2><div class='curves'>")
        for name, curve in curves.items():
            page.extend(curve_panels(name, curve))
        page.append("</div>")
    if n_audio > 0 and len(items):
        page.append(f"<h2>Samples (first {min(n_audio, len(items))} test items)</h2>")
        page.append(samples_table(summary, per_utt, items, wav_dirs, n_audio))
    page.append("</body></html>")
    write_text(out_dir / "index.html", "\n".join(page) + "\n")

    readme = [
        "# e2e-tts evaluation results",
        "",
        markdown_table(rows),
        "",
        method,
        "",
        "## Paired bootstrap",
        "",
        *(_pvalue_lines(summary) or ["- no system besides the baseline and toplines"]),
        "",
        *(
            ["## Token diagnostics", "", markdown_table(tok_rows), "", TOKEN_NOTE, ""]
            if tok_rows
            else []
        ),
        "## Flags",
        "",
        *(_flag_lines(summary) or ["- none"]),
        "",
        "## Judges",
        "",
        judges,
        "",
        ranking + f" A row is unintelligible when its WER exceeds {_factor(summary)} the WER of gt_vocoded "
        "(ground-truth mel through the shared vocoder).",
        "",
        "Audio samples, charts and training curves: [index.html](index.html).",
        "",
    ]
    write_text(out_dir / "README.md", "\n".join(readme))
