"""Writing evaluation results: ``report.json``, ``report.html`` (plots embedded), the side-by-side
video, and the benchmark table (json, csv, html).

``report.json`` is for other tools: plain JSON, NaN written as null, every array a list. The html
page is for people: the paper's Table 1, what each number means, and plots (matplotlib, embedded
as PNG, so the page is one self-contained file next to its video).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ..landmarks import layout

# -------------------------------------------------------------------------------------------------
# JSON


def jsonable(value):
    """Plain-JSON copy of ``value``: numpy arrays/scalars -> lists/numbers, NaN/inf -> None,
    Paths -> str, tuples -> lists, dict keys -> str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: dict, folder: Path, video: Path | None) -> dict:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns the ``outputs`` section."""
    outputs = {"json": str(folder / "report.json")}
    if video is not None and video.exists():
        outputs["side_by_side"] = str(video)
    if report.get("config", {}).get("html", True):
        outputs["html"] = str(folder / "report.html")
    report["outputs"] = outputs
    _write_atomic(folder / "report.json", json.dumps(report, indent=1, allow_nan=False) + "\n")
    if "html" in outputs:
        _write_atomic(folder / "report.html", render_html(report, video.name if video is not None and video.exists() else None))
    return outputs


# -------------------------------------------------------------------------------------------------
# Side-by-side video

BODY_EDGES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24))
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)
COLOURS = {"body": (255, 255, 255), "face": (80, 220, 255), "left": (255, 120, 60), "right": (60, 255, 120)}


def _cv2():
    import cv2

    return cv2


def draw_landmarks(rgb: np.ndarray, data: np.ndarray, conf: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Draw body, hands and face mesh on a copy of ``rgb`` (uint8 (H, W, 3)).

    data: float (586, 3) in the frame's pixels before scaling by ``scale``; conf: (586,).
    """
    cv2 = _cv2()
    out = np.ascontiguousarray(rgb).copy()
    pts = np.round(np.asarray(data)[:, :2] * scale).astype(np.int32)
    h, w = out.shape[:2]
    face = slice(layout.FACE.start, layout.FACE.stop)
    if conf[face.start] > 0:
        xy = pts[face]
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        out[xy[ok, 1], xy[ok, 0]] = COLOURS["face"]
    groups = ((layout.BODY, BODY_EDGES, "body"), (layout.LEFT_HAND, HAND_EDGES, "left"),
              (layout.RIGHT_HAND, HAND_EDGES, "right"))
    for rows, edges, colour in groups:
        for a, b in edges:
            if conf[rows.start + a] > 0 and conf[rows.start + b] > 0:
                cv2.line(out, tuple(map(int, pts[rows.start + a])), tuple(map(int, pts[rows.start + b])),
                         COLOURS[colour], 1, cv2.LINE_AA)
    return out


def _label(image: np.ndarray, text: str, y: int, colour=(255, 255, 255)) -> None:
    cv2 = _cv2()
    scale = max(0.35, image.shape[0] / 900)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


class SideBySideWriter:
    """Writes ``original | anonymized`` frames, landmarks drawn, both at the original's height.

    Each frame is captioned with its index and, on sampled frames, the recogniser's distance
    between the two faces (red "SAME PERSON" when within the threshold).
    """

    def __init__(self, path: Path, original, anonymized, threshold: float):
        from ..video import VideoWriter

        self.height = original.height
        self.scale = original.height / anonymized.height
        self.right_width = max(2, int(round(anonymized.width * self.scale)))
        self.threshold = threshold
        self._writer = VideoWriter(path, original.width + self.right_width, self.height, original.fps)
        self._writer.open()
        self._last_caption = ""

    def _caption(self, pair: dict | None) -> tuple[str, tuple[int, int, int]]:
        if pair is None:
            return self._last_caption, (255, 255, 255)
        if not pair["original_face"]:
            text = "no face in original"
        elif not pair["anonymized_face"]:
            text = "no face in anonymized"
        else:
            text = f"face distance {pair['distance']:.2f}" + (" SAME PERSON" if pair["reidentified"] else "")
        self._last_caption = text
        return text, ((255, 60, 60) if pair["reidentified"] else (255, 255, 255))

    def write(self, t: int, original: np.ndarray, anonymized: np.ndarray, lm_o, lm_a, pair: dict | None) -> None:
        cv2 = _cv2()
        right = anonymized
        if anonymized.shape[0] != self.height:
            right = cv2.resize(anonymized, (self.right_width, self.height), interpolation=cv2.INTER_AREA)
        left = draw_landmarks(original, *lm_o) if lm_o is not None else original.copy()
        right = draw_landmarks(right, *lm_a, scale=self.scale) if lm_a is not None else right.copy()
        _label(left, f"original  #{t}", 18)
        _label(right, "anonymized", 18)
        text, colour = self._caption(pair)
        _label(right, text, self.height - 8, colour)
        self._writer.write(np.concatenate([left, right], axis=1))

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


# -------------------------------------------------------------------------------------------------
# HTML


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)


def plot_identity(identity: dict) -> str:
    plt = _plt()
    frames = [p["frame"] for p in identity["per_frame"]]
    dist = _arr([p["distance"] for p in identity["per_frame"]])
    missing = [p["frame"] for p in identity["per_frame"] if p["original_face"] and not p["anonymized_face"]]
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.plot(frames, dist, "o-", ms=3, label="original vs anonymized (same frame)")
    ax.axhline(identity["threshold"], color="red", ls="--", label=f"same-person threshold {identity['threshold']:g}")
    if identity.get("original_distance_mean") is not None:
        ax.axhline(identity["original_distance_mean"], color="green", ls=":", label="mean between original frames")
    if missing:
        ax.plot(missing, np.full(len(missing), identity["threshold"]), "kx", label="no face in anonymized")
    ax.set_xlabel("frame")
    ax.set_ylabel(f"{identity['metric']} distance")
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def plot_face_grammar(report: dict) -> str:
    plt = _plt()
    fo, fa = report["series"]["face_original"], report["series"]["face_anonymized"]
    names = list(fo)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.5 * len(names)), sharex=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.plot(_arr(fo[name]), label="original", lw=1.2)
        ax.plot(_arr(fa[name]), label="anonymized", lw=1.2)
        r = report["face_grammar"][name]["r"]
        ax.set_title(f"{name}  r = {'n/a' if r is None else f'{r:.2f}'}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("frame")
    fig.tight_layout()
    return _png(fig)


def plot_hands(report: dict) -> str:
    plt = _plt()
    series = report["series"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    axes[0].plot(_arr(series["handshape_error_deg"]), lw=1)
    axes[0].set_title("handshape error per frame (deg)", fontsize=8)
    axes[0].set_xlabel("frame")
    for h, (ax, hand) in enumerate(zip(axes[1:], ("left", "right"))):
        for key, style in (("wrist_original", "-"), ("wrist_anonymized", "--")):
            xy = np.array([[np.nan if v is None else v for v in pt] for pt in (f[h] for f in series[key])]).reshape(-1, 2)
            ax.plot(xy[:, 0], xy[:, 1], style, label=key.split("_")[1], lw=1)
        ax.invert_yaxis()
        ax.set_aspect("equal", "datalim")
        ax.set_title(f"{hand} wrist path (shoulder widths)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def plot_temporal(temporal: dict) -> str:
    plt = _plt()
    per = temporal["per_frame"]
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.plot(per["frame"], _arr(per["output"]), label="anonymized (input's flow)")
    ax.plot(per["frame"], _arr(per["input"]), label="input (floor)")
    ax.set_xlabel("frame")
    ax.set_ylabel("warp error (0-255)")
    ax.legend(fontsize=7)
    return _png(fig)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td><td>{html.escape(note)}</td></tr>" for k, v, note in pairs)


def _identity_html(ident: dict) -> str:
    metric = "Euclidean distance" if ident["metric"] == "euclidean" else "cosine distance"
    table1 = (
        "<table><tr><th></th><th>cosine similarity (mean)</th><th>worst / least frame</th>"
        f"<th>{metric} (mean)</th><th>re-identified</th></tr>"
        f"<tr><th>Original (same signer)</th><td>{_fmt(ident['original_mean'])}</td>"
        f"<td>min {_fmt(ident['original_min'])}</td><td>{_fmt(ident['original_distance_mean'])}</td><td>-</td></tr>"
        f"<tr><th>Anonymized (vs original)</th><td>{_fmt(ident['anonymized_mean'])}</td>"
        f"<td>max {_fmt(ident['anonymized_max'])}</td><td>{_fmt(ident['anonymized_distance_mean'])}</td>"
        f"<td>{_fmt(ident['reid_rate'])}</td></tr></table>"
    )
    details = _rows([
        ("reid_rate", ident["reid_rate"], f"share of sampled frames with an original face whose anonymized face is within {ident['threshold']:g} of it (no face = not re-identified)"),
        ("reid_rate_gallery", ident["reid_rate_gallery"], "matched against every original face (all frames, extra clips): a stronger attacker"),
        ("anonymized_frames_without_face", ident["anonymized_frames_without_face"], f"of {ident['frames_judged']} judged frames, the recogniser found no face in the anonymized one"),
        ("original_cross_clip_mean", ident["original_cross_clip_mean"], "cosine between the original and the extra clips of the same signer"),
        ("original_frames_without_face", ident["original_frames_without_face"], "left out: nothing to compare"),
    ])
    note = (
        "<p class=note>dlib's embeddings are not centred: strangers also score a high cosine "
        "(about 0.74-0.88), the same person about 0.95. Read dlib's own Euclidean distance: "
        "&le; 0.6 means the same person. A cosine near the same-signer row means the identity "
        "survived; DiffSLVA's FaceNet numbers (0.77-0.89 vs 0.13 to -0.02) are on a centred scale "
        "and cannot be compared with dlib's cosine directly.</p>"
        if ident["metric"] == "euclidean"
        else "<p class=note>Centred embeddings: cosine near 0 = unrelated faces.</p>"
    )
    return f"<h2>Identity ({html.escape(ident['embedder'])})</h2>{table1}<table>{details}</table>{note}"


def _signing_html(sig: dict, grammar: dict) -> str:
    rows = _rows([
        ("hand_recall", sig["hand_recall"], "frames with a hand in the original where the anonymized video shows it too (per hand)"),
        ("hand_extra_rate", sig["hand_extra_rate"], "hands found in the anonymized video where the original has none"),
        ("handshape_angle_error_deg", sig["handshape_angle_error_deg"], "mean |flexion angle difference| over 15 finger joints, hands present in both"),
        ("handshape_angle_error_chance_deg", sig["handshape_angle_error_chance_deg"], "the original against itself half a clip later: what unrelated handshapes score"),
        ("wrist_error_sw", sig["wrist_error_sw"], "wrist position difference, in shoulder widths around the shoulder midpoint"),
        ("fingertip_error_sw", sig["fingertip_error_sw"], "fingertips, same units (the avatar's proportions differ: expect some)"),
        ("wrist_r", sig["wrist_r"], "correlation of wrist x and y over time"),
    ])
    fingers = ", ".join(f"{k} {_fmt(v, 1)}" for k, v in sig["handshape_angle_error_per_finger_deg"].items())
    g_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(v['r'], 2)}</td><td>{v['frames']}</td>"
        f"<td>{_fmt(v['original_std'])}</td><td>{_fmt(v['anonymized_std'])}</td></tr>"
        for k, v in grammar.items()
    )
    return (
        f"<h2>Signing preserved</h2><table>{rows}</table><p>Per finger (deg): {fingers}</p>"
        "<h3>Facial grammar: correlation original vs anonymized</h3><table><tr><th>series</th><th>r</th>"
        f"<th>frames</th><th>std original</th><th>std anonymized</th></tr>{g_rows}</table>"
        "<p class=note>Brow, eye and mouth measures are divided by the inter-ocular distance; head "
        "angles are degrees. A series that barely moves in the original gives an unstable r.</p>"
    )


def _temporal_html(tmp: dict) -> str:
    rows = _rows([
        ("warp_error", tmp["warp_error"], "anonymized frame t vs frame t-1 warped by the input's flow, non-occluded pixels, 0-255"),
        ("warp_error_input", tmp["warp_error_input"], "the same for the input itself: the floor"),
        ("warp_error_ratio", tmp["warp_error_ratio"], "output / input"),
        ("occluded_share", tmp["occluded_share"], "pixels masked by the forward-backward check"),
    ])
    return f"<h2>Temporal consistency</h2><p>{_fmt(tmp['flow'])}</p><table>{rows}</table>"


CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;text-align:left}.note{color:#555;font-size:13px}.warn{color:#a40}img{max-width:100%}"
)


def render_html(report: dict, video_name: str | None) -> str:
    """The whole human-readable page (self-contained except the side-by-side video next to it)."""
    inputs = report["inputs"]
    head = "".join(
        f"<li>{html.escape(k)}: {html.escape(v['path'])} ({v['frames']} frames, {v['width']}x{v['height']}, "
        f"{v['fps']:.2f} fps)</li>" for k, v in (("original", inputs["original"]), ("anonymized", inputs["anonymized"]))
    ) + "".join(f"<li>extra clip: {html.escape(e['path'])} ({e['faces_found']} faces)</li>" for e in inputs["extras"])
    warnings = "".join(f"<li class=warn>{html.escape(w)}</li>" for w in report["warnings"])
    video = f'<h2>Side by side</h2><video src="{html.escape(video_name)}" controls loop width="100%"></video>' if video_name else ""
    parts = [
        "<!doctype html><html><head><meta charset=utf-8><title>signanon evaluation</title>",
        f"<style>{CSS}</style></head><body><h1>Anonymization evaluation</h1><ul>{head}</ul>",
        f"<ul>{warnings}</ul>" if warnings else "",
        _identity_html(report["identity"]),
        f'<img src="{plot_identity(report["identity"])}">',
        _signing_html(report["signing"], report["face_grammar"]),
        f'<img src="{plot_hands(report)}"><img src="{plot_face_grammar(report)}">',
        _temporal_html(report["temporal"]),
        f'<img src="{plot_temporal(report["temporal"])}">' if report["temporal"]["pairs"] else "",
        video,
        "</body></html>",
    ]
    return "\n".join(parts)


# -------------------------------------------------------------------------------------------------
# Benchmark table

BENCHMARK_COLUMNS = (
    ("identity", "original_mean"), ("identity", "anonymized_mean"), ("identity", "anonymized_max"),
    ("identity", "anonymized_distance_mean"), ("identity", "reid_rate"), ("identity", "reid_rate_gallery"),
    ("identity", "anonymized_frames_without_face"), ("identity", "frames_judged"),
    ("signing", "hand_recall"), ("signing", "handshape_angle_error_deg"),
    ("signing", "handshape_angle_error_chance_deg"), ("signing", "wrist_error_sw"),
    ("temporal", "warp_error"), ("temporal", "warp_error_input"),
)


def summary_row(name: str, report: dict) -> dict:
    """One benchmark row: the headline numbers of a report, plus the mean facial-grammar r."""
    row = {"clip": name}
    for section, key in BENCHMARK_COLUMNS:
        row[f"{section}.{key}"] = report[section][key]
    rs = [v["r"] for v in report["face_grammar"].values() if v["r"] is not None]
    row["face_grammar.mean_r"] = float(np.mean(rs)) if rs else None
    return row


def _mean_row(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    mean = {"clip": "mean"}
    for key in (ok[0] if ok else {}):
        if key == "clip":
            continue
        vals = [r[key] for r in ok if isinstance(r[key], (int, float))]
        mean[key] = float(np.mean(vals)) if vals else None
    return mean


def write_benchmark(rows: list[dict], folder: Path) -> dict:
    """Write ``benchmark.json``, ``benchmark.csv`` and ``benchmark.html``; return the json content."""
    result = jsonable({"clips": rows, "mean": _mean_row(rows)})
    _write_atomic(folder / "benchmark.json", json.dumps(result, indent=1, allow_nan=False) + "\n")
    columns = ["clip"] + [f"{s}.{k}" for s, k in BENCHMARK_COLUMNS] + ["face_grammar.mean_r", "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in [*result["clips"], result["mean"]]:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    _write_atomic(folder / "benchmark.csv", buf.getvalue())
    head = "".join(f"<th>{html.escape(c.split('.')[-1])}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row.get(c), 3)}</td>" for c in columns) + "</tr>"
        for row in [*result["clips"], result["mean"]]
    )
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>signanon benchmark</title><style>{CSS}</style>"
            f"</head><body><h1>Benchmark: {len(rows)} clips</h1><table><tr>{head}</tr>{body}</table></body></html>")
    _write_atomic(folder / "benchmark.html", page)
    return result
