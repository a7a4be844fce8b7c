"""The comparison report: results/report/index.html (self-contained) and README.md.

No JavaScript and no external URLs: charts are inline SVG, audio is base64 data.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ..atomic import write_text

TOPLINES = ("gt", "gt_vocoded")
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]


def _fmt(x, pct=False):
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _ci(ci, pct=False):
    return f"[{_fmt(ci[0], pct)}, {_fmt(ci[1], pct)}]" if ci else "-"


def table_rows(summary: dict) -> list[dict]:
    rows = []
    for name, m in summary.items():
        p = next((v for k, v in m.items() if k.startswith("p_wer_lower_than_")), None)
        rows.append({
            "system": name,
            "WER": _fmt(m.get("wer"), True), "WER 95% CI": _ci(m.get("wer_ci95"), True),
            "SIM": _fmt(m.get("sim")), "SIM 95% CI": _ci(m.get("sim_ci95")),
            "WER unseen spk": _fmt(m.get("wer_unseen"), True), "SIM unseen spk": _fmt(m.get("sim_unseen")),
            "RTF": _fmt(m.get("rtf")), "p (WER < cascade)": _fmt(p) if p is not None else "-",
            "note": "unintelligible (WER > 3x gt_vocoded): not ranked" if m.get("unintelligible") else "",
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def bar_chart(summary: dict, key: str, title: str, pct: bool) -> str:
    names = list(summary)
    values = [summary[n].get(key) or 0.0 for n in names]
    cis = [summary[n].get(f"{key}_ci95") or [v, v] for n, v in zip(names, values, strict=True)]
    top = max([c[1] for c in cis] + values + [1e-6]) * 1.15
    w, h, pad, bw = 640, 260, 40, 640 // max(1, len(names)) - 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 60}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    for i, (n, v, ci) in enumerate(zip(names, values, cis, strict=True)):
        x = pad + i * (bw + 20)
        y = 30 + h * (1 - v / top)
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bw}" height="{30 + h - y:.1f}" fill="{COLORS[i % len(COLORS)]}"/>')
        lo, hi = (30 + h * (1 - c / top) for c in ci)
        cx = x + bw / 2
        parts.append(f'<line x1="{cx}" x2="{cx}" y1="{lo:.1f}" y2="{hi:.1f}" stroke="black"/>')
        parts.append(f'<line x1="{cx - 6}" x2="{cx + 6}" y1="{hi:.1f}" y2="{hi:.1f}" stroke="black"/>')
        parts.append(f'<line x1="{cx - 6}" x2="{cx + 6}" y1="{lo:.1f}" y2="{lo:.1f}" stroke="black"/>')
        parts.append(f'<text x="{cx}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">{_fmt(v, pct)}</text>')
        parts.append(f'<text x="{cx}" y="{h + 48}" text-anchor="middle" font-size="11">{html.escape(n)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(curve: pd.DataFrame, title: str) -> str:
    metrics = [c for c in curve.columns if c not in ("step", "epoch", "wall_s", "lr", "grad_norm")][:4]
    if "step" not in curve or not metrics or len(curve) < 2:
        return ""
    w, h, pad = 420, 200, 36
    xs = curve["step"].astype(float)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 40}" role="img">',
             f'<text x="{w / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(title)}</text>']
    for i, m in enumerate(metrics):
        ys = pd.to_numeric(curve[m], errors="coerce")
        if ys.isna().all():
            continue
        lo, hi = float(ys.min()), float(ys.max())
        span = hi - lo or 1.0
        pts = " ".join(
            f"{pad + (w - 2 * pad) * (x - xs.min()) / max(1.0, xs.max() - xs.min()):.1f},{24 + h * (1 - (y - lo) / span) * 0.85:.1f}"
            for x, y in zip(xs, ys, strict=True) if pd.notna(y)
        )
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{pad + i * 100}" y="{h + 34}" font-size="10" fill="{color}">{html.escape(m)} {lo:.3g}..{hi:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _audio(path: Path) -> str:
    if not path.exists():
        return "<em>missing</em>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def build_report(summary: dict, per_utt: dict, items: pd.DataFrame, wav_dirs: dict, curves: dict, out_dir, n_audio: int = 5, judges: str = "") -> None:
    out_dir = Path(out_dir)
    rows = table_rows(summary)
    md_table = markdown_table(rows)
    systems = [s for s in summary if s not in TOPLINES]
    chosen = items.head(n_audio)

    h = ["<!doctype html><html><head><meta charset='utf-8'><title>e2e-tts report</title>",
         "<style>body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#eee}"
         ".flag{color:#b00}audio{width:180px}</style></head><body>",
         "<h1>e2e-tts: cascade vs end-to-end</h1>",
         f"<p>Judges: {html.escape(judges or 'Whisper (faster-whisper) for WER, resemblyzer for SIM')}. "
         "WER is corpus WER over the test list; 95% intervals resample utterances. "
         "Rows flagged unintelligible (WER above 3x the vocoded ground truth) are not ranked.</p>",
         "<h2>Comparison</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"]
    for r in rows:
        cls = " class='flag'" if r["note"] else ""
        h.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>")
    h.append("</table>")
    h.append("<h2>Charts</h2>" + bar_chart(summary, "wer", "WER (95% CI)", True) + bar_chart(summary, "sim", "SIM (95% CI)", False))
    if curves:
        h.append("<h2>Training curves</h2><div>")
        h += [line_chart(c, name) for name, c in curves.items()]
        h.append("</div>")
    h.append("<h2>Samples</h2><table><tr><th>item</th><th>text</th><th>prompt</th><th>ground truth</th>"
             + "".join(f"<th>{html.escape(s)}</th>" for s in systems) + "</tr>")
    for it in chosen.itertuples():
        cells = [html.escape(it.item_id), html.escape(it.target_text), _audio(Path(it.prompt_wav)), _audio(Path(it.target_wav))]
        cells += [_audio(Path(wav_dirs[s]) / f"{it.item_id}.wav") for s in systems]
        h.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    h.append("</table></body></html>")
    write_text(out_dir / "index.html", "\n".join(h))

    pvals = [f"- {n}: p(WER lower than cascade) = {v:.3f}" for n, m in summary.items()
             for k, v in m.items() if k.startswith("p_wer_lower_than_")]
    readme = ["# e2e-tts results", "", md_table, "",
              "Judges: " + (judges or "Whisper (faster-whisper) WER, resemblyzer SIM") + ".",
              "Rows marked unintelligible have WER above 3x the `gt_vocoded` topline and are not ranked.",
              "", "## Paired bootstrap vs cascade", "", *(pvals or ["- (no cascade row)"]), ""]
    write_text(out_dir / "README.md", "\n".join(readme))
