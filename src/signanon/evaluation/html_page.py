"""The human-readable ``report.html``: the paper's Table 1, what each number means, and the plots
(:mod:`.plots`, embedded), next to the side-by-side video."""

from __future__ import annotations

import html

from .plots import plot_face_grammar, plot_hands, plot_identity, plot_temporal
from .signing import READER_SIGNING_KEYS


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td><td>{html.escape(note)}</td></tr>" for k, v, note in pairs)


def _table1_html(ident: dict) -> str:
    """The paper's Table 1: raw cosine, centred cosine (when a population is known), distance."""
    metric = "Euclidean distance" if ident["metric"] == "euclidean" else "cosine distance"
    centred = ident.get("population") is not None
    c_head = "<th>centred cosine (mean): the paper's units</th><th>centred worst / least</th>" if centred else ""

    def c_cells(mean_key: str, edge: str, edge_key: str) -> str:
        return f"<td>{_fmt(ident[mean_key])}</td><td>{edge} {_fmt(ident[edge_key])}</td>" if centred else ""

    paper = ident.get("paper_table1") or {}
    p_head = "<th>paper (FaceNet)</th>" if paper else ""

    def p_cell(key: str) -> str:
        return f"<td>{paper[key][0]:g} to {paper[key][1]:g}</td>" if paper else ""

    return (
        f"<table><tr><th></th><th>raw cosine (mean)</th><th>raw worst / least</th>{c_head}{p_head}"
        f"<th>{metric} (mean)</th><th>re-identified</th></tr>"
        f"<tr><th>Original (same signer)</th><td>{_fmt(ident['original_mean'])}</td>"
        f"<td>min {_fmt(ident['original_min'])}</td>{c_cells('original_mean_centred', 'min', 'original_min_centred')}"
        f"{p_cell('same_signer')}<td>{_fmt(ident['original_distance_mean'])}</td><td>-</td></tr>"
        f"<tr><th>Anonymized (vs original)</th><td>{_fmt(ident['anonymized_mean'])}</td>"
        f"<td>max {_fmt(ident['anonymized_max'])}</td>{c_cells('anonymized_mean_centred', 'max', 'anonymized_max_centred')}"
        f"{p_cell('anonymized')}<td>{_fmt(ident['anonymized_distance_mean'])}</td><td>{_fmt(ident['reid_rate'])}</td></tr></table>"
    )


def _population_html(pop: dict | None) -> str:
    """Which population centred the cosine, and how big it is."""
    if pop is None:
        return ""
    groups = ", ".join(f"{html.escape(k)} {v}" for k, v in pop["groups"].items())
    return (
        f"<p class=note>Centred cosine: the embeddings minus the mean embedding of a population of "
        f"{pop['people']} people ({groups}; {pop['embeddings']} embeddings, {html.escape(pop['weighting'])}; "
        f"file {html.escape(pop['file'])}), then the cosine. Unrelated faces score near 0. The "
        "population is small (the paper's scale was measured with 61 photos): read the centred figures "
        "as approximate.</p>"
    )


def _identity_html(ident: dict) -> str:
    details = _rows([
        ("reid_rate", ident["reid_rate"], f"share of sampled frames with an original face whose anonymized face is within {ident['threshold']:g} of it (no face = not re-identified)"),
        ("reid_rate_gallery", ident["reid_rate_gallery"], "matched against every original face (all frames, extra clips): a stronger attacker"),
        ("reid_rate_signer_mean", ident.get("reid_rate_signer_mean"), "each anonymized frame's largest face against the mean of the original's largest faces (false finds included), over every sampled frame: the independent read-back's measure"),
        ("reid_rate_every_face", ident.get("reid_rate_every_face"), "every face of the anonymized frame, not only the largest, against every original face: what the privacy check (--verify) refuses"),
        ("anonymized_frames_without_face", ident["anonymized_frames_without_face"], f"of {ident['frames_judged']} judged frames, the recogniser found no face in the anonymized one"),
        ("original_cross_clip_mean", ident["original_cross_clip_mean"], "cosine between the original and the extra clips of the same signer"),
        ("original_frames_without_face", ident["original_frames_without_face"], "left out: nothing to compare"),
    ])
    note = (
        "<p class=note>dlib's raw embeddings are not centred: strangers also score a high raw cosine "
        "(about 0.74-0.88), the same person about 0.95. Read the centred cosine (the paper's scale) or "
        "dlib's own Euclidean distance: &le; 0.6 means the same person.</p>"
        if ident["metric"] == "euclidean"
        else "<p class=note>Centred embeddings: cosine near 0 = unrelated faces.</p>"
    )
    return (
        f"<h2>Identity ({html.escape(ident['embedder'])})</h2>{_table1_html(ident)}"
        f"{_population_html(ident.get('population'))}<table>{details}</table>{note}"
    )


def _grammar_row(name: str, v: dict, reader: bool) -> str:
    """One facial-grammar row; a damped series is highlighted. ``reader``: with the reader check's
    columns (the original against its own imperceptible copy)."""
    status = v.get("status", "")
    cls = f' class="{status}"' if status in ("damped", "exaggerated", "lost") else ""
    flag = status.upper() if status in ("damped", "lost") else status
    if v.get("at_reader_limit"):
        flag += ", at the reader's limit"
    check = f"<td>{_fmt(v.get('reader_r'), 2)}</td><td>{_fmt(v.get('reader_gain'), 2)}</td>" if reader else ""
    return (
        f"<tr{cls}><th>{html.escape(name)}</th><td>{_fmt(v['r'], 2)}</td><td>{_fmt(v.get('gain'), 2)}</td>{check}"
        f"<td>{_fmt(v['original_std'] if v['frames'] else v.get('original_std_own'), 4)}</td><td>{_fmt(v['anonymized_std'], 4)}</td>"
        f"<td>{html.escape(v.get('unit', ''))}</td><td>{'yes' if v.get('moving') else 'no'}</td>"
        f"<td>{v['frames']}</td><td>{html.escape(flag)}</td></tr>"
    )


def _grammar_html(grammar: dict) -> str:
    damped = [k for k, v in grammar.items() if v.get("damped")]
    alert = (
        f"<p class=warn><b>Damped facial grammar:</b> {html.escape(', '.join(damped))}: the original moves "
        "these series and the anonymized video follows them weakly (gain &lt; 0.7) or out of step (r &lt; 0.6).</p>"
        if damped else "<p>No moving facial-grammar series is damped.</p>"
    )
    lost = [k for k, v in grammar.items() if v.get("lost")]
    if lost:
        alert += (
            f"<p class=warn><b>Lost facial grammar:</b> {html.escape(', '.join(lost))}: the original moves these "
            "series and the anonymized video shows a face in too few frames (under 5) to follow them on.</p>"
        )
    exaggerated = [k for k, v in grammar.items() if v.get("status") == "exaggerated"]
    if exaggerated:
        alert += (
            f"<p class=warn><b>Exaggerated:</b> {html.escape(', '.join(exaggerated))}: the anonymized video moves "
            "these series more than the original does (gain &gt; 1.4).</p>"
        )
    reader = any("reader_r" in v for v in grammar.values())
    limit = [k for k, v in grammar.items() if v.get("at_reader_limit")]
    if limit:
        alert += (
            f"<p class=note>At the reader's limit: {html.escape(', '.join(limit))}. MediaPipe, reading the original "
            "a second time as a copy nobody could tell from it (scaled by 0.97, shifted by 1.5%), misses the goal on "
            "these series too: the figure says as much about the reader as about the anonymizer.</p>"
        )
    rows = "".join(_grammar_row(k, v, reader) for k, v in grammar.items())
    check = "<th>reader r</th><th>reader gain</th>" if reader else ""
    return (
        "<h3>Facial grammar: original vs anonymized</h3>" + alert +
        f"<table><tr><th>series</th><th>r</th><th>gain</th>{check}<th>std original</th><th>std anonymized</th>"
        f"<th>unit</th><th>moving</th><th>frames</th><th>flag</th></tr>{rows}</table>"
        "<p class=note>Brow, eye and mouth series are image distances over the inter-ocular distance "
        "(brow furrow: the inner brow ends' distance, smaller = drawn together); head angles are "
        "degrees. Gain = std of the anonymized series / std of the original's (1 = full strength; "
        "0.7-1.4 is the goal). A series is moving when the original's std is at least 0.01 "
        "inter-ocular distances (1 degree for head angles) over the frames where it shows a face; a moving "
        "series is damped when its gain is under 0.7 or its r under 0.6, and lost when the anonymized video "
        "shows a face in fewer than 5 of those frames. A series that barely moves gives an unstable r and gain.</p>"
    )


def _signing_html(sig: dict, grammar: dict) -> str:
    rows = _rows([
        ("hand_recall", sig["hand_recall"], "frames with a hand in the original where the anonymized video shows it too (per hand)"),
        ("hand_extra_rate", sig["hand_extra_rate"], "hands found in the anonymized video where the original has none"),
        ("handshape_angle_error_deg", sig["handshape_angle_error_deg"], "mean |flexion angle difference| over 15 finger joints, hands present in both"),
        ("handshape_angle_error_chance_deg", sig["handshape_angle_error_chance_deg"], "the original against itself half a clip later: what unrelated handshapes score"),
        ("handshape_angle_error_steady_deg", sig.get("handshape_angle_error_steady_deg"), f"the same error on the original's hands moving under {_fmt(sig.get('fast_hand_ls'), 0)} hand lengths per second ({sig.get('original_steady_hand_frames')} hands)"),
        ("handshape_angle_error_fast_deg", sig.get("handshape_angle_error_fast_deg"), f"on its faster hands ({sig.get('original_fast_hand_frames')}): a camera smears them and even the original's read of their fingers is unsure"),
        ("hand_recall_fast", sig.get("hand_recall_fast"), "hand recall on those fast hands (steady: " + _fmt(sig.get("hand_recall_steady")) + ")"),
        ("wrist_error_sw", sig["wrist_error_sw"], "wrist position difference, in shoulder widths around the shoulder midpoint"),
        ("fingertip_error_sw", sig["fingertip_error_sw"], "fingertips, same units (the avatar's proportions differ: expect some)"),
        ("wrist_r", sig["wrist_r"], "correlation of wrist x and y over time"),
        ("contact_error_face_widths", sig.get("contact_error_face_widths"), "hand-to-face contact: where the original's hand is within half a face width of the face, mean |hand-to-face distance of the output - the original's|, in face widths (goal ≤ 0.1)"),
        ("contact_kept_rate", sig.get("contact_kept_rate"), "share of those hands whose distance is within 0.1 face widths of the original's"),
        ("contact_frames", sig.get("contact_frames"), "hands (frame, side) near the face in the original and present in both"),
        ("contact_hands_lost", sig.get("contact_hands_lost"), "hands near the face in the original with no hand (or face) in the output"),
    ] + [
        (f"reader_{key}", sig[f"reader_{key}"], "the same figure for the original read again as a copy nobody could tell "
         "from it (scaled by 0.97, shifted by 1.5%): how far the landmark reader agrees with itself")
        for key in READER_SIGNING_KEYS if f"reader_{key}" in sig
    ])
    fingers = ", ".join(f"{k} {_fmt(v, 1)}" for k, v in sig["handshape_angle_error_per_finger_deg"].items())
    return f"<h2>Signing preserved</h2><table>{rows}</table><p>Per finger (deg): {fingers}</p>{_grammar_html(grammar)}"


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
    "tr.damped td,tr.damped th{background:#fdd;color:#900;font-weight:bold}"
    "tr.exaggerated td,tr.exaggerated th{background:#fec;color:#840}"
    "tr.lost td,tr.lost th{background:#fdd;color:#900;font-weight:bold;font-style:italic}"
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
