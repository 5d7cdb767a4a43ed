"""The evaluation's plots (matplotlib, Agg), each returned as a ``data:image/png;base64,...`` URL so
the html page stays one self-contained file. Inputs are sections of ``report.json``."""

from __future__ import annotations

import base64
import io

import numpy as np


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


def _grammar_title(name: str, entry: dict) -> str:
    """``name  r = ..  gain = ..  [DAMPED]`` for one facial-grammar panel."""
    def num(v):
        return "n/a" if v is None else f"{v:.2f}"

    unit = "deg" if entry.get("unit") == "degrees" else "IOD"
    flag = ("  DAMPED" if entry.get("damped") else "  LOST (no face in the anonymized video)" if entry.get("lost")
            else "" if entry.get("moving", True) else "  (original barely moves)")
    return f"{name} ({unit})  r = {num(entry.get('r'))}  gain = {num(entry.get('gain'))}{flag}"


def plot_face_grammar(report: dict) -> str:
    plt = _plt()
    fo, fa = report["series"]["face_original"], report["series"]["face_anonymized"]
    names = list(fo)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.5 * len(names)), sharex=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        ax.plot(_arr(fo[name]), label="original", lw=1.2)
        ax.plot(_arr(fa[name]), label="anonymized", lw=1.2)
        ax.set_title(_grammar_title(name, report["face_grammar"][name]), fontsize=8, loc="left",
                     color="#c00" if report["face_grammar"][name].get("status") in ("damped", "lost") else "black")
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("frame")
    fig.tight_layout()
    return _png(fig)


def plot_hands(report: dict) -> str:
    plt = _plt()
    series = report["series"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    axes[0].plot(_arr(series["handshape_error_deg"]), lw=1)
    fast = _arr(series.get("fast_hand", []))
    for t in np.nonzero(fast > 0)[0]:  # frames where a hand of the original moves fast: shaded
        axes[0].axvspan(t - 0.5, t + 0.5, color="#f4c430", alpha=0.35, lw=0)
    axes[0].set_title("handshape error per frame (deg); shaded: a fast hand", fontsize=8)
    axes[0].set_xlabel("frame")
    for h, (ax, hand) in enumerate(zip(axes[1:], ("left", "right"))):
        for key, style in (("wrist_original", "-"), ("wrist_anonymized", "--")):
            xy = np.array([[np.nan if v is None else v for v in pt] for pt in (f[h] for f in series[key])]).reshape(-1, 2)
            ax.plot(xy[:, 0], xy[:, 1], style, label=key.split("_")[1], lw=1)
        ax.invert_yaxis()
        ax.set_aspect("equal", "datalim")
        ax.set_title(f"{hand} wrist path (shoulder widths)", fontsize=8)
        ax.legend(fontsize=7)
    _contact_panel(axes[3], series)
    fig.tight_layout()
    return _png(fig)


def _contact_panel(ax, series: dict) -> None:
    """Nearest hand-to-face distance per frame (face widths), original solid, anonymized dashed."""
    if "contact_original" not in series:
        ax.set_axis_off()
        return
    for key, style in (("contact_original", "-"), ("contact_anonymized", "--")):
        values = np.array([[np.nan if v is None else v for v in row] for row in series[key]], np.float64).reshape(-1, 2)
        for h, hand in enumerate(("left", "right")):
            ax.plot(values[:, h], style, lw=1, color=f"C{h}", label=f"{hand} {key.split('_')[1]}")
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="near the face (0.5)")
    ax.set_ylim(bottom=0)
    ax.set_title("hand-to-face distance (face widths)", fontsize=8)
    ax.set_xlabel("frame")
    ax.legend(fontsize=6)


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
