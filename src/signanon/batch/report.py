"""``OUT_DIR/batch_report.json`` (read by other tools), ``.csv`` (one row per clip) and ``.html``
(the table and a plot of seconds per clip, coloured by status; the gallery attack beside chance).

``totals`` counts what this run did (done, skipped, failed, quarantined); every input has an entry
with its relative ``input``, ``output``, ``status`` (this run), ``outcome`` (what the clip is now:
done, failed or quarantined), a one-line ``reason``, ``seconds``, ``frames`` and, with evaluation,
``reid_rate``, ``hand_recall``, ``handshape_angle_error_deg``, ``face_grammar_r`` and
``gallery_rank``.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import write_json_atomic, write_text_atomic
from ..job import method_of

REPORT_NAME = "batch_report"
REPORT_FILES = tuple(f"{REPORT_NAME}.{ext}" for ext in ("json", "csv", "html"))  # in OUT_DIR
CSV_COLUMNS = ("input", "output", "status", "outcome", "reason", "seconds", "frames", "signer", "region", "reid_rate",
               "hand_recall", "handshape_angle_error_deg", "gallery_rank")  # fmt: skip
_COLOURS = {"done": "#2e7d32", "skipped": "#90a4ae", "failed": "#c62828", "quarantined": "#ef6c00"}


def totals_of(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many clips this run did, skipped, failed and quarantined."""
    counts = {status: 0 for status in _COLOURS}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return counts


def build_report(corpus, entries: list[dict[str, Any]], gallery: dict | None, config: Any, batch: Any) -> dict:
    """The report dict (JSON-able) of one run."""
    ranks = {p["input"]: p["rank"] for p in (gallery or {}).get("per_clip", [])}
    clips = []
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k != "files"}
        if gallery is not None:
            entry["gallery_rank"] = ranks.get(entry["input"])
        clips.append(entry)
    return {
        "signanon": __version__,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": corpus.source.name,  # its name only: the folders above it can name people
        "method": method_of(config),
        "batch": dataclasses.asdict(batch),
        "totals": totals_of(entries),
        "ignored_files": list(corpus.ignored),
        "notes": list(corpus.notes),
        "gallery_attack": gallery,
        "clips": clips,
    }


def write_reports(out_dir: Path, report: dict) -> Path:
    """Write the JSON, CSV and HTML reports atomically; returns the JSON path."""
    json_name, csv_name, html_name = REPORT_FILES
    write_json_atomic(out_dir / json_name, report)
    write_text_atomic(out_dir / csv_name, printable(to_csv(report["clips"])))
    write_text_atomic(out_dir / html_name, printable(to_html(report)))
    return out_dir / json_name


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a file name's bytes that are not UTF-8 (kept by Python as
    surrogates) written as ``\\xff`` escapes (JSON escapes them itself)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    row = {k: entry.get(k) for k in CSV_COLUMNS}
    for name, r in (entry.get("face_grammar_r") or {}).items():
        row[f"face_r_{name}"] = r
    return row


def to_csv(clips: list[dict[str, Any]]) -> str:
    """One row per clip; facial-grammar correlations as ``face_r_<series>`` columns."""
    rows = [_flat(c) for c in clips]
    columns = list(CSV_COLUMNS) + sorted({k for r in rows for k in r if k not in CSV_COLUMNS})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape("" if value is None else str(value))


def seconds_plot(clips: list[dict[str, Any]], width: int = 720, bar: int = 14) -> str:
    """An inline SVG: one horizontal bar per clip, its seconds, coloured by this run's status."""
    longest = max([c.get("seconds") or 0.0 for c in clips] + [1e-9])
    height = bar * len(clips) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="seconds per clip">']  # fmt: skip
    label = 260
    for i, clip in enumerate(clips):
        y = 10 + i * bar
        w = (width - label - 60) * (clip.get("seconds") or 0.0) / longest
        colour = _COLOURS.get(clip["status"], "#555")
        parts.append(f'<text x="0" y="{y + bar - 4}" font-size="11">{html.escape(clip["input"][-40:])}</text>')
        parts.append(f'<rect x="{label}" y="{y + 1}" width="{w:.1f}" height="{bar - 3}" fill="{colour}"/>')
        parts.append(f'<text x="{label + w + 4:.1f}" y="{y + bar - 4}" font-size="11">{_cell(clip.get("seconds"))} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _gallery_html(gallery: dict | None) -> str:
    if not gallery:
        return ""
    return (
        f"<h2>Gallery attack</h2><p>Each output's faces matched against every original clip "
        f"({gallery['identities']} {gallery['identity_unit']}s, {gallery['probes']} outputs with a face): "
        f"top-1 {gallery['top1']}/{gallery['probes']} ({_cell(gallery['top1_rate'])}, chance "
        f"{_cell(gallery['chance_top1_rate'])}), mean rank of the true {gallery['identity_unit']} "
        f"{_cell(gallery['mean_rank'])} (chance {_cell(gallery['chance_mean_rank'])}).</p>"
    )


def to_html(report: dict) -> str:
    """A self-contained page: totals, the gallery attack, the plot and the table."""
    rows = [_flat(c) for c in report["clips"]]
    columns = list(CSV_COLUMNS) + sorted({k for r in rows for k in r if k not in CSV_COLUMNS})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f'<tr style="color:{_COLOURS.get(r["status"], "#000")}">' + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    totals = ", ".join(f"{n} {status}" for status, n in report["totals"].items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>signanon batch report</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:12px}</style></head><body>"
        f"<h1>signanon batch report</h1><p>{html.escape(report['input'])}, method {report['method']}, "
        f"written {report['written']}: {totals}.</p>"
        + "".join(f"<p>note: {html.escape(note)}</p>" for note in report.get("notes", []))
        + f"{_gallery_html(report.get('gallery_attack'))}<h2>Seconds per clip</h2>{seconds_plot(report['clips'])}"
        f"<h2>Clips</h2><table><tr>{head}</tr>{body}</table></body></html>\n"
    )
