"""What the avatar keeps of the signing, on every shared clip and hard framing (run by hand).

    python benchmarks/bench_signing.py OUT_DIR [--only SUBSTR ...] [--max-frames N] [--no-identity]

Anonymizes each clip (the shared signing clips, the talking faces and the framings of
``tools/make_framings.py``, whole, or cut to their first ``--max-frames`` frames) and reads both videos
back with the independent ``../shared/tools/readback.py`` (MediaPipe + dlib, none of our code).
Prints one table, one row per clip: hand recall, finger-angle error (deg), hand-to-face contact
error (face widths), dlib re-identified frames, the palette the identity guard chose and the frames it
drew with a calmer expression / a blank or blurred face, and ``r/gain`` of every facial-grammar series the
original moves (std >= 0.01 inter-ocular units; ``-`` where it does not). Writes ``OUT_DIR/results.json``.

``--ceiling`` adds, under each clip, the read-back's own noise ceiling: the same measures between
the original and a copy nobody would call a different video (scaled by 0.97 and shifted by 1.5%,
edges replicated). A figure the read-back cannot reach against such a copy cannot be asked of
the avatar either: e.g. a brow furrow that reads back at r 0.77 against the copy.

``--jitter`` reads the output back twice more, as copies no viewer could tell from it (shifted by
half a pixel; scaled by 0.97 about the centre), and prints each under the clip's row, then the range
of the three reads. MediaPipe tracks from frame to frame, so pixels far from a hand move its read:
a change of the avatar's mouth colour alone moved one clip's hand recall by 0.05 and its angle
error by 1.7 deg. A goal missed by less than that range is not shown missed by one read.

``--against OLD/results.json`` then prints this run's goal lines beside an earlier run's, clip for
clip, with the look where the identity guard chose another (``compare_signing.py`` does the same
for two finished runs). Copy the earlier run's ``OUT_DIR/sources`` into this one's first: x264 does
not cut a framing the same way twice, and only the same cuts compare clip for clip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from outside_tools import load_module, load_readback

from signanon.avatar.hand_choice import READ_COPIES

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SERIES = ("brow_raise", "brow_furrow", "eye_open", "mouth_open", "mouth_width")
SHORT = {"brow_raise": "brow", "brow_furrow": "furrow", "eye_open": "eyes", "mouth_open": "mouth", "mouth_width": "width"}


def clips(work: Path, max_frames: int | None, plan: list[tuple[str, str]] | None = None) -> list[tuple[str, Path]]:
    """(name, path) of every clip to measure: the shared clips as they are (``max_frames`` None) or
    cut to their first ``max_frames`` frames, then the framings of ``plan`` ((source file, framing)
    pairs, the file in the shared ``video`` or ``talking_face`` folder, the framing composed with
    ``+``; default ``make_framings.PLAN``; whole, or cut to ``max_frames`` frames).

    Whole clips are measured as the files themselves, not re-encoded: re-encoding a clip moves a
    drawing's read-back angle by up to 1.3 deg (ASL DIFFERENT plain 10.13 on an x264 copy, 11.23 on
    the gif; hands_issue11.txt, session 31), and a user anonymizes the file they have."""
    framings = load_module(REPO / "tools" / "make_framings.py", "make_framings")
    out = []
    src_dir = work / "sources"
    src_dir.mkdir(parents=True, exist_ok=True)
    for folder in ("video", "talking_face"):
        for src in sorted((SHARED / "data" / folder).iterdir()):
            if max_frames is None:
                out.append((src.stem, src))
                continue
            cut = src_dir / f"{src.stem}.mp4"
            if not cut.exists():
                frames, fps = framings.read_frames(src, max_frames)
                framings.write_frames(cut, frames, fps)
            out.append((src.stem, cut))
    for clip, framing in framings.PLAN if plan is None else plan:
        path = src_dir / f"{Path(clip).stem}__{framing}.mp4"
        if not path.exists():
            folders = (SHARED / "data" / "video", SHARED / "data" / "talking_face")
            source = next((d / clip for d in folders if (d / clip).exists()), folders[0] / clip)
            framings.make(source, framing, path, max_frames or 10**9)
        out.append((path.stem, path))
    return out


def measure(name: str, src: Path, work: Path, readback, identity: bool, min_output_side: int | None = None) -> dict:
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig

    out = work / "anon" / f"{name}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config = AvatarConfig() if min_output_side is None else AvatarConfig(min_output_side=min_output_side)
    summary = AvatarAnonymizer(config)(src, out, progress=False)
    row = {"clip": name, "seconds": round(time.perf_counter() - t0, 1), "frames": summary.frames_out}
    row["guard"] = summary.extra.get("identity_guard", {})
    row["hand_drawing"] = summary.extra.get("hand_drawing", {})
    row["signing"] = readback.signing(str(src), str(out))
    if identity:
        row["identity"] = readback.identity(str(src), str(out))
    return row


def warped_copy(src: Path, out: Path, affine) -> Path:
    """``src`` warped by ``affine(w, h)`` (a 2x3 float32 matrix, bilinear, edges replicated) into
    ``out`` (H.264); kept when it exists."""
    import cv2

    framings = sys.modules["make_framings"]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        frames, fps = framings.read_frames(src, 10**9)
        h, w = frames[0].shape[:2]
        m = affine(w, h)
        framings.write_frames(out, [cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames], fps)
    return out


def ceiling_copy(src: Path, work: Path) -> Path:
    """``src`` scaled by 0.97 about the centre (edges replicated): the second of the hand choice's
    read copies."""
    return warped_copy(src, work / "ceiling" / f"{src.stem}.mp4", READ_COPIES[1])


# the output's copies read back by --jitter: (label, file suffix, affine(w, h)), the copies the
# product's hand choice reads its probes as (hand_choice.READ_COPIES: shifted 0.5 px, scaled 0.97)
JITTERS = tuple(zip(("output shifted 0.5 px", "output scaled 0.97"), ("shift", "s97"), READ_COPIES))


def jitter_reads(name: str, src: Path, work: Path, readback) -> list[dict]:
    """The read-back of each :data:`JITTERS` copy of the clip's output against the original."""
    out = work / "anon" / f"{name}.mp4"
    return [
        {"label": label, "signing": readback.signing(str(src), str(warped_copy(out, work / "jitter" / f"{name}__{suffix}.mp4", m)))}
        for label, suffix, m in JITTERS
    ]


def spread(reads: list[dict]) -> str:
    """``recall lo-hi, angle lo-hi, series r and gain lo-hi`` over several reads of one clip."""
    sig = [r["signing"] for r in reads]
    parts = []
    if sig[0]["hands_in_original"]:
        rec = [s["hand_recall"] for s in sig]
        parts.append(f"recall {min(rec):.2f}-{max(rec):.2f}")
        ang = [s["handshape_angle_error_deg"] for s in sig if s["handshape_angle_error_deg"] is not None]
        if ang:
            parts.append(f"angle {min(ang):.1f}-{max(ang):.1f}")
    std = sig[0]["face_series_gain"]["original_std"]
    for k in SERIES:
        if std[k] is None or std[k] < 0.01:
            continue
        r = [s["face_series_r"][k] for s in sig if s["face_series_r"][k] is not None]
        g = [s["face_series_gain"][k] for s in sig if s["face_series_gain"][k] is not None]
        if r and g:
            parts.append(f"{SHORT[k]} r {min(r):.2f}-{max(r):.2f} gain {min(g):.2f}-{max(g):.2f}")
    return "  (range of 3 reads) " + ", ".join(parts)


def _ceiling_misses(row: dict, key: str) -> bool:
    """Whether the read of the original against its own scaled copy (``--ceiling``) misses the
    series' goal (r >= 0.6, gain 0.7-1.4); False without a ceiling read."""
    ceiling = row.get("ceiling")
    if not ceiling:
        return False
    r, g = ceiling["face_series_r"][key], ceiling["face_series_gain"][key]
    return r is None or g is None or r < 0.6 or not 0.7 <= g <= 1.4


def clip_misses(row: dict) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """What one clip misses of issue 11's goals, each figure the mean over the clip's reads (one,
    or three with ``--jitter``): every series the original moves at r >= 0.6 and gain 0.7-1.4; on
    clips with 10 or more hands, recall >= 0.9 and angle error <= 12 deg; where the original's hand
    comes within half a face width of the face, the hand-to-face distance within 0.1 face widths of
    the original's (the mean error over the reads that have such hands). Returns the misses (a
    series marked "(ceiling too)" where ``--ceiling``'s read of the original's own copy misses the
    goal as well: the reader's limit, as ``evaluate --reader-check`` says) and, per goal
    (``series``, ``recall``, ``angle``, ``contact``), (figures in the goal, figures measured)."""
    reads = [row["signing"]] + [j["signing"] for j in row.get("jitter", [])]
    missed: list[str] = []
    tally = {"series": (0, 0), "recall": (0, 0), "angle": (0, 0), "contact": (0, 0)}

    def count(goal: str, ok: bool) -> None:
        tally[goal] = (tally[goal][0] + ok, tally[goal][1] + 1)

    near = [r["contact_error_face_widths"] for r in reads if r["contact_frames"]]
    if near:
        err = float(np.mean(near))
        count("contact", err <= 0.1)
        missed += [f"contact {err:.3f}"] * (err > 0.1)
    if reads[0]["hands_in_original"] >= 10:
        recall = float(np.mean([r["hand_recall"] for r in reads]))
        angle = float(np.mean([r["handshape_angle_error_deg"] for r in reads]))
        count("recall", recall >= 0.9)
        count("angle", angle <= 12)
        missed += [f"recall {recall:.3f}"] * (recall < 0.9) + [f"angle {angle:.1f}"] * (angle > 12)
    for k in SERIES:
        std = reads[0]["face_series_gain"]["original_std"][k]
        if std is None or std < 0.01:
            continue
        r = [x["face_series_r"][k] for x in reads]
        g = [x["face_series_gain"][k] for x in reads]
        ok = None not in r + g and np.mean(r) >= 0.6 and 0.7 <= np.mean(g) <= 1.4
        count("series", bool(ok))
        if not ok:
            missed.append(f"{SHORT[k]} " + ("unread" if None in r + g else f"{np.mean(r):.2f}/{np.mean(g):.2f}")
                          + (" (ceiling too)" if _ceiling_misses(row, k) else ""))
    return missed, tally


def _totals(tallies: list[dict[str, tuple[int, int]]]) -> str:
    t = {goal: [sum(x[goal][i] for x in tallies) for i in (0, 1)] for goal in ("series", "recall", "angle", "contact")}
    return (f"series in the goal {t['series'][0]} of {t['series'][1]}; recall >= 0.9 on {t['recall'][0]} of "
            f"{t['recall'][1]} clips; angle <= 12 deg on {t['angle'][0]} of {t['angle'][1]}; contact within 0.1 on "
            f"{t['contact'][0]} of {t['contact'][1]}")


def against_goal(rows: list[dict]) -> list[str]:
    """Lines: what each clip misses of issue 11's goals (:func:`clip_misses`), then the totals."""
    lines, tallies = [], []
    for row in rows:
        missed, tally = clip_misses(row)
        tallies.append(tally)
        lines.append(f"  {row['clip']:<26} " + ("; ".join(missed) or "in the goal"))
    lines.append("  " + _totals(tallies))
    return lines


def _look(row: dict) -> str:
    """The look (palette/face shape) the identity guard chose, ``+fold`` where the hand choice kept
    fingers folded under the palm; ``?`` without a guard record."""
    look = ((row.get("guard") or {}).get("look") or {}).get("chosen", "?")
    return look + ("+fold" if (row.get("hand_drawing") or {}).get("chosen") == "folded" else "")


def load_rows(path: Path) -> list[dict]:
    """The per-clip rows of a run's ``results.json``; ValueError (one line) when it is not one."""
    try:
        return json.loads(path.read_text())["clips"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a bench_signing.py results.json ({type(exc).__name__}: {exc})") from None


def compare(old: list[dict], new: list[dict]) -> list[str]:
    """Two runs' goal lines side by side on the clips both measured (``new``'s order): per clip
    its misses before | after (the look too where the identity guard chose another), then each
    run's totals on those clips and the clips with more and with fewer misses. Only runs on the
    same source cuts compare clip for clip (copy OUT_DIR/sources between them first)."""
    before = {row["clip"]: row for row in old}
    lines, tallies, worse, better = [], ([], []), [], []
    for row in new:
        if row["clip"] not in before:
            continue
        a, b = clip_misses(before[row["clip"]]), clip_misses(row)
        for i, (_, tally) in enumerate((a, b)):
            tallies[i].append(tally)
        was, now = _look(before[row["clip"]]), _look(row)
        looks = "" if was == now else f"   [look {was} -> {now}]"
        lines.append(f"  {row['clip']:<26} {'; '.join(a[0]) or 'in the goal'}  |  "
                     f"{'; '.join(b[0]) or 'in the goal'}{looks}")
        if len(b[0]) > len(a[0]):
            worse.append(row["clip"])
        elif len(b[0]) < len(a[0]):
            better.append(row["clip"])
    lines.append(f"  before: {_totals(tallies[0])}")
    lines.append(f"  after:  {_totals(tallies[1])}")
    lines.append(f"  more misses: {', '.join(worse) or 'none'}; fewer: {', '.join(better) or 'none'}")
    return lines


def fmt(row: dict) -> str:
    s = row["signing"]
    err = s["handshape_angle_error_deg"]
    cells = [
        f"{row['clip']:<28}",
        f"{s['hands_in_original']:>5}",
        f"{s['hand_recall']:>6.2f}" if s["hands_in_original"] else "     -",
        f"{err:>6.1f}" if err is not None else "     -",
        f"{s['contact_error_face_widths']:>6.3f}({s['contact_frames']:>3})" if s["contact_frames"] else "      -     ",
        f"{row['identity'].get('reid_frames', '?'):>4}" if "identity" in row else "   .",
        f"{_guard(row):>13}",
    ]
    std = s["face_series_gain"]["original_std"]
    for k in SERIES:
        r, g = s["face_series_r"][k], s["face_series_gain"][k]
        moves = std[k] is not None and std[k] >= 0.01
        cells.append(f"{r:>5.2f}/{g:<4.2f}" if moves and r is not None and g is not None else f"{'-':>10}")
    return " ".join(cells)


def _guard(row: dict) -> str:
    """The look cell: :func:`_look` and the frames the guard calmed / blanked or blurred."""
    guard = row.get("guard")
    if not guard:
        return "-"
    return f"{_look(row):<25} {guard.get('calmed', 0):>2}/{guard['blanked'] + guard['blurred']}"


def header() -> str:
    cols = ["clip".ljust(28), "hands", "recall", "angle", " contact(n) ", "reid", "look                      calm/blank"]
    return " ".join(cols + [f"{SHORT[k] + ' r/g':>10}" for k in SERIES])


def machine_line() -> str:
    """The CPU and the versions a read-back depends on: the same code read back differently on
    two machines (MediaPipe's and x264's arithmetic follow the CPU's vector units)."""
    import platform

    import av
    import mediapipe

    from signanon.video.writer import x264_options

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return (f"# machine: {model}, {os.cpu_count()} cores; mediapipe {mediapipe.__version__}, av {av.__version__}; "
            f"x264 options {x264_options()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--only", nargs="*", default=None, help="measure clips whose name contains one of these")
    ap.add_argument("--max-frames", type=int, default=None,
                    help="cut each clip to its first N frames (default: whole clips; a 60-frame cut of the DGS "
                    "clip shows one hand and no mouthing, the whole clip 89 hands and a mouth read back at 2x)")
    ap.add_argument("--no-identity", action="store_true")
    ap.add_argument("--min-output-side", type=int, default=None, metavar="PX",
                    help="as `anonymize --min-output-side PX` (default: its default; 0: every clip at its own size); "
                         "read back against the original")
    ap.add_argument("--ceiling", action="store_true", help="also print the read-back's noise ceiling per clip")
    ap.add_argument("--jitter", action="store_true",
                    help="also read back two imperceptibly warped copies of each output and print the range")
    ap.add_argument("--framings", nargs="+", default=None, metavar="CLIP:FRAMING",
                    help="measure these framings instead of make_framings.PLAN, e.g. dgs_zug.mp4:mirror, "
                         "talking_woman.mp4:blurfill or dgs_zug.mp4:blurfill+shake (composed in turn)")
    ap.add_argument("--against", type=Path, default=None, metavar="OLD/results.json",
                    help="after the run, print its goal lines beside an earlier run's, clip for clip")
    args = ap.parse_args()
    try:
        old = load_rows(args.against) if args.against else None  # before the run: a bad path fails at once
    except ValueError as exc:
        ap.error(str(exc))
    plan = None if args.framings is None else [tuple(f.split(":", 1)) for f in args.framings]
    readback = load_readback()
    rows = []
    machine = machine_line()
    print(machine, flush=True)
    print(header(), flush=True)
    for name, path in clips(args.out_dir, args.max_frames, plan):
        if args.only and not any(o in name for o in args.only):
            continue
        row = measure(name, path, args.out_dir, readback, not args.no_identity, args.min_output_side)
        rows.append(row)
        print(fmt(row), flush=True)
        if args.ceiling:
            row["ceiling"] = readback.signing(str(path), str(ceiling_copy(path, args.out_dir)))
            print(fmt({"clip": "  (read-back ceiling)", "signing": row["ceiling"]}), flush=True)
        if args.jitter:
            row["jitter"] = jitter_reads(name, path, args.out_dir, readback)
            for read in row["jitter"]:
                print(fmt({"clip": f"  ({read['label']})", "signing": read["signing"]}), flush=True)
            print(spread([row] + row["jitter"]), flush=True)
    print(f"\nAgainst the goal (mean of {'3 reads' if args.jitter else 'one read'} per clip):", flush=True)
    for line in against_goal(rows):
        print(line, flush=True)
    if old is not None:
        print(f"\nAgainst {args.against} (before | after):", flush=True)
        for line in compare(old, rows):
            print(line, flush=True)
    (args.out_dir / "results.json").write_text(json.dumps({"machine": machine, "clips": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
