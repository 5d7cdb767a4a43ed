"""The human-readable ``report.html``: the paper's Table 1, what each number means, and the plots
(:mod:`.plots`, embedded), next to the side-by-side video."""

from __future__ import annotations

import html

from .plots import plot_face_grammar, plot_hands, plot_identity, plot_temporal


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
