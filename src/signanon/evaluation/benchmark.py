"""The benchmark table over many evaluated pairs: ``benchmark.json``, ``.csv`` and ``.html``."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from ..files import StagedFiles
from .html_page import CSS, _fmt
from .report import jsonable


BENCHMARK_COLUMNS = (
    ("identity", "original_mean"), ("identity", "anonymized_mean"), ("identity", "anonymized_max"),
    ("identity", "anonymized_distance_mean"), ("identity", "reid_rate"), ("identity", "reid_rate_gallery"),
    ("identity", "reid_rate_every_face"), ("identity", "reid_rate_signer_mean"),
    ("identity", "anonymized_frames_without_face"), ("identity", "frames_judged"),
    ("identity", "original_mean_centred"), ("identity", "anonymized_mean_centred"),
    ("signing", "hand_recall"), ("signing", "handshape_angle_error_deg"),
    ("signing", "handshape_angle_error_chance_deg"), ("signing", "wrist_error_sw"),
    ("signing", "contact_error_face_widths"),
    ("temporal", "warp_error"), ("temporal", "warp_error_input"),
)
# with ``evaluate --reader-check``: the reader against itself, and the series at its limit
READER_COLUMNS = ("signing.reader_hand_recall", "signing.reader_handshape_angle_error_deg", "face_grammar.at_reader_limit")


def summary_row(name: str, report: dict) -> dict:
    """One benchmark row: the headline numbers of a report, the mean facial-grammar r, and the
    damped and the lost series (names joined by spaces; "" when none); with the reader check, READER_COLUMNS
    too. A key the report lacks (centred cosine of a non-dlib embedder) is None."""
    row = {"clip": name}
    for section, key in BENCHMARK_COLUMNS:
        row[f"{section}.{key}"] = report[section].get(key)
    rs = [v["r"] for v in report["face_grammar"].values() if v["r"] is not None]
    row["face_grammar.mean_r"] = float(np.mean(rs)) if rs else None
    row["face_grammar.damped"] = " ".join(k for k, v in report["face_grammar"].items() if v.get("damped"))
    row["face_grammar.lost"] = " ".join(k for k, v in report["face_grammar"].items() if v.get("lost"))
    if "reader_hand_recall" in report["signing"]:
        row["signing.reader_hand_recall"] = report["signing"]["reader_hand_recall"]
        row["signing.reader_handshape_angle_error_deg"] = report["signing"]["reader_handshape_angle_error_deg"]
        row["face_grammar.at_reader_limit"] = " ".join(report["signing"]["out_of_goal_at_reader_limit"])
    return row


def _mean_row(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    mean = {"clip": "mean"}
    for key in (ok[0] if ok else {}):
        if key == "clip":
            continue
        vals = [r[key] for r in ok if isinstance(r[key], (int, float)) and not isinstance(r[key], bool)]
        mean[key] = float(np.mean(vals)) if vals else None
    return mean


def _skipped_html(skipped: list[dict]) -> str:
    """The sub-folders left out of the table, each with its reason (empty when none)."""
    if not skipped:
        return ""
    items = "".join(f"<li>{html.escape(s['folder'])}: {html.escape(s['reason'])}</li>" for s in skipped)
    return f"<h2>Left out: {len(skipped)}</h2><ul class=warn>{items}</ul>"


def write_benchmark(rows: list[dict], folder: Path, staged: StagedFiles | None = None,
                    skipped: list[dict] = ()) -> dict:
    """Write ``benchmark.json``, ``benchmark.csv`` and ``benchmark.html``, together; return the json
    content. ``staged``: stage them there for the caller to commit (with the pairs' reports).
    ``skipped``: the sub-folders left out, ``{"folder", "reason"}`` each (json and page; not the csv,
    a table of clips)."""
    files = StagedFiles() if staged is None else staged
    result = jsonable({"clips": rows, "mean": _mean_row(rows), "skipped": list(skipped)})
    files.write_text(folder / "benchmark.json", json.dumps(result, indent=1, allow_nan=False) + "\n")
    checked = any("signing.reader_hand_recall" in r for r in rows)
    columns = (["clip"] + [f"{s}.{k}" for s, k in BENCHMARK_COLUMNS] + ["face_grammar.mean_r", "face_grammar.damped", "face_grammar.lost"]
               + list(READER_COLUMNS) * checked + ["error"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in [*result["clips"], result["mean"]]:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    files.write_text(folder / "benchmark.csv", buf.getvalue())
    head = "".join(f"<th>{html.escape(c.split('.')[-1])}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row.get(c), 3)}</td>" for c in columns) + "</tr>"
        for row in [*result["clips"], result["mean"]]
    )
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>signanon benchmark</title><style>{CSS}</style>"
            f"</head><body><h1>Benchmark: {len(rows)} clips</h1><table><tr>{head}</tr>{body}</table>"
            f"{_skipped_html(result['skipped'])}</body></html>")
    files.write_text(folder / "benchmark.html", page)
    if staged is None:
        files.commit()
    return result
