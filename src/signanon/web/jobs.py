"""What the page's buttons do, without Gradio (so it can be tested and reused).

The page builds the same :class:`~signanon.job.AnonymizeJob` as ``signanon anonymize`` and runs
it with :func:`~signanon.job.run_job`. Each control's help text and default come from the config
dataclass (:func:`signanon.config.settings_of`), so a default lives in one place.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import settings_of, with_settings
from ..errors import InputError, SignanonError
from ..job import AnonymizeJob, config_class, make_anonymizer, run_job
from ..outcome import outcome_lines
from ..progress import Progress, ProgressCallback
from ..video.region import Region
from .session import OUTCOME_NAME, REGION_NAME, RESULT_NAME, WebLimits, Workspace, check_video, find_input, stage_upload

#: DiffSLVA's prompts (the authors' demos), the repository's default first
PROMPT_PRESETS = (
    "a man in CG style, blond hair, is making gestures",
    "a handsome man in CG style, blonde hair, is making gestures",
    "a beautiful woman in CG style, brown hair, is making gestures",
    "a superman in blue uniform is making gestures",
    "a Chinese man in Chinese ink wash painting is making gestures",
)


@dataclass(frozen=True)
class Control:
    """One setting as the page shows it: where it lives in the config, a short label, the
    config's help text, default and choices."""

    name: str
    path: tuple[str, ...]
    label: str
    help: str
    default: Any
    choices: tuple | None = None


#: page name -> (label, candidate paths in the config: the first that exists is used)
AVATAR_CONTROLS = {
    "palette": ("Avatar colours", (("palette",),)),
    "face_shape": ("Avatar face shape", (("face_shape",),)),
    "background": ("Background colour", (("background",),)),
}
DIFFUSION_CONTROLS = {
    "prompt": ("Prompt: the person to draw", (("prompt",),)),
    "negative_prompt": ("Negative prompt: what to avoid", (("negative_prompt",),)),
    "steps": ("Steps", (("sampling", "steps"), ("steps",))),
    "keyframe_interval": ("Key-frame interval", (("keyframe_interval",), ("keyframes", "interval"))),
    "seed": ("Seed", (("sampling", "seed"), ("seed",))),
    "face_enhance": (
        "Face enhancement",
        (("face_enhance",), ("face", "enhance"), ("face", "enabled"), ("face", "enable")),
    ),
}


def _value_at(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name)
    return obj


def controls(method: str) -> dict[str, Control]:
    """The page's controls of a method, labelled and defaulted from the method's config."""
    cls = config_class(method)
    table = AVATAR_CONTROLS if method == "avatar" else DIFFUSION_CONTROLS
    declared = {s.path: s for s in settings_of(cls)}
    default = cls()
    found = {}
    for name, (label, candidates) in table.items():
        for path in candidates:
            if path in declared:
                s = declared[path]
                found[name] = Control(name, path, label, s.info.help, s.default, s.info.choices)
                break
            try:
                value = _value_at(default, path)
            except AttributeError:
                continue
            found[name] = Control(name, path, label, "", value)
            break
        else:
            raise LookupError(f"{cls.__name__} has no setting for the page's {name!r} (looked at {candidates})")
    return found


def _coerce(control: Control, value: Any) -> Any:
    """A page value in the type of the setting's default (Gradio numbers arrive as floats)."""
    if isinstance(value, str):
        value = value.strip()
        if value == "" and control.default is None:
            return None
    if value is None:
        return control.default
    if isinstance(control.default, bool):
        return bool(value)
    if isinstance(control.default, int):
        if float(value) != int(float(value)):
            raise InputError(f"{control.label.lower()} must be a whole number, got {value}")
        return int(float(value))
    if isinstance(control.default, float):
        return float(value)
    return value


def build_config(method: str, values: dict[str, Any]) -> Any:
    """The config of ``method`` with the page's values applied (unknown names are ignored)."""
    table = controls(method)
    changes = {table[name].path: _coerce(table[name], v) for name, v in values.items() if name in table}
    try:
        return with_settings(config_class(method)(), changes)
    except (TypeError, ValueError) as err:
        raise InputError(f"{method} settings: {err}") from None


def diffusion_readiness() -> tuple[bool, str]:
    """Whether the diffusion method can run here, and a short Markdown saying what is missing and
    how to get it (what ``signanon doctor`` reports)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("diffusers") is None:
        from ..diffusion import INSTALL_HINT

        return False, f"Not available here: {INSTALL_HINT}."
    try:
        from ..diffusion.weights import doctor_report

        rows = doctor_report()
    except Exception as err:  # a broken cache or hub install: say so, keep the page
        return False, f"Not available here: the weights could not be checked ({type(err).__name__}: {err})."
    missing = [(name, where) for name, found, where in rows if not found and "optional" not in name and "Canny" not in name]
    if not missing:
        return True, "Ready: the weights are installed. A GPU makes it practical."
    lines = ["Not ready: these weights are missing. On a computer with internet access run:", ""]
    lines += [f"- {name}: `{where}`" for name, where in missing]
    lines += ["", "then copy `~/.cache/huggingface/hub` to this computer and restart the server."]
    return False, "\n".join(lines)


def progress_text(p: Progress) -> str:
    """``anonymize: 12 of 58 frames, about 9 s left``."""
    of = f" of {p.total}" if p.total else ""
    text = f"{p.stage}: {p.done}{of} {p.unit}s"
    if p.eta is not None and p.done:
        text += f", about {_duration(p.eta)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _scrub(err: SignanonError, folder: Path) -> str:
    """The error's message without the server's paths."""
    message = str(err)
    for path in sorted(folder.iterdir(), key=lambda p: -len(str(p))) if folder.is_dir() else []:
        message = message.replace(str(path), "the result" if path.name == RESULT_NAME else "the upload")
    return message.replace(str(folder), "the session folder")


class WebJobs:
    """The page's work for one server: anonymize an upload, check the result, drop a session."""

    def __init__(self, workspace: Workspace, limits: WebLimits):
        self.workspace, self.limits = workspace, limits
        self._anonymizer: Any = None  # the last pipeline object: a diffusion one keeps its models loaded

    def _pipeline(self, config: Any) -> Any:
        """The pipeline for ``config``; jobs run one at a time, so the last one is kept and a
        diffusion model loads once, not per upload."""
        self._anonymizer = make_anonymizer(config, previous=self._anonymizer)
        return self._anonymizer

    def anonymize(
        self, session_hash: str | None, upload: str | Path | None, config: Any,
        progress: ProgressCallback | None = None, region: str | None = None,
    ) -> Path:
        """Run the job on the upload; returns the result's path in the session folder.

        ``region``: the signer's box ``"X,Y,W,H"`` (as ``anonymize --region`` takes it), or
        None/blank for the whole frame; the check then compares the same box.
        Errors are :class:`SignanonError` with one line naming "the upload", never a server path
        (:class:`~signanon.errors.ReidentifiedError` keeps its type and summary)."""  # fmt: skip
        box = Region.parse(region) if region and region.strip() else None
        self.workspace.own(session_hash, upload)  # Gradio's copy of the original goes with the session

        def watched(p: Progress) -> None:
            # a closed tab stops its job at the next progress step: the single job slot is
            # freed for the next visitor, and the session's files go as the job ends
            if self.workspace.closed(session_hash):
                raise SignanonError("the page was closed: the run stopped")
            if progress is not None:
                progress(p)

        with self.workspace.busy(session_hash) as folder:
            for name in (REGION_NAME, OUTCOME_NAME):
                (folder / name).unlink(missing_ok=True)
            try:
                source = stage_upload(upload, folder, self.limits)
                check_video(source, self.limits)
                output = folder / RESULT_NAME
                summary = run_job(AnonymizeJob(source, output, config, region=box), watched, anonymizer=self._pipeline(config))
                if box is not None:
                    (folder / REGION_NAME).write_text(str(box))
                (folder / OUTCOME_NAME).write_text("\n".join(outcome_lines(summary)))
            except SignanonError as err:
                clean = _scrub(err, folder)
                if clean != str(err):
                    err.args = (clean,) + err.args[1:]
                raise
            return output

    def outcome(self, session_hash: str | None) -> list[str]:
        """What the session's last run did to keep the signer unrecognisable and what that cost
        (:func:`signanon.outcome.outcome_lines`: faces the identity guard drew calmer or blank,
        other people not drawn, the privacy check); empty before a run finished."""
        path = self.workspace.folder(session_hash) / OUTCOME_NAME
        return path.read_text().splitlines() if path.is_file() else []

    def evaluate(self, session_hash: str | None) -> tuple[str, list[Path]]:
        """Compare the session's result with its input: a short Markdown verdict and plot images."""
        from ..evaluation.evaluate import EvaluationConfig, Evaluator

        with self.workspace.busy(session_hash) as folder:
            source, result = find_input(folder), folder / RESULT_NAME
            if source is None or not result.is_file():
                raise InputError("anonymize a video first: the check compares the result with the original")
            out = folder / "evaluation"
            shutil.rmtree(out, ignore_errors=True)
            kept = folder / REGION_NAME
            region = Region.parse(kept.read_text()) if kept.is_file() else None
            evaluator = Evaluator(EvaluationConfig(side_by_side=False))
            try:
                report = evaluator.evaluate(source, result, [], out, progress=False, region=region)
            except SignanonError as err:
                raise InputError(_scrub(err, folder)) from None
            return verdict(report), extract_plots(out)

    def own(self, session_hash: str | None, path: str | Path | None) -> None:
        """A file Gradio cached for the session (the result it serves) is deleted with it."""
        self.workspace.own(session_hash, path)

    def drop(self, session_hash: str | None) -> None:
        self.workspace.drop(session_hash)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _handshape_line(sig: dict) -> str:
    error, chance = sig.get("handshape_angle_error_deg"), sig.get("handshape_angle_error_chance_deg")
    if error is None:
        return "**Handshape error:** not measured (no hand found in both videos)."
    against = "" if chance is None else f" (unrelated handshapes: {chance:.1f}°)"
    return f"**Handshape error:** {error:.1f}° per finger joint{against}."


def verdict(report: dict) -> str:
    """A few short lines: re-identified frames, hands kept, handshape error, facial grammar."""
    ident, sig = report.get("identity", {}), report.get("signing", {})
    judged = ident.get("frames_judged") or 0
    rate = ident.get("reid_rate")
    matched = round(rate * judged) if rate is not None else None
    if matched is None:
        privacy = "**Privacy:** not measured (no face of the signer was found)."
    elif matched == 0:
        privacy = f"**Privacy: passed.** No frame of {judged} matched the original signer."
    else:
        privacy = f"**Privacy: failed.** {matched} of {judged} frames matched the original signer. Do not share this result."
    lines = [
        privacy,
        f"**Hands kept:** {_pct(sig.get('hand_recall'))} of the frames with a hand in the original.",
        _handshape_line(sig),
    ]
    grammar = report.get("face_grammar", {})
    parts = [f"{name.replace('_', ' ')} {_num(v.get('r'), 2)}" for name, v in grammar.items() if isinstance(v, dict)]
    if parts:
        lines.append(f"**Facial grammar** (correlation with the original, 1 = same): {', '.join(parts)}.")
    for warning in report.get("warnings", [])[:3]:
        lines.append(f"Note: {warning}")
    return "\n\n".join(lines)


_DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def extract_plots(out_dir: Path) -> list[Path]:
    """The evaluation's plots as PNG files: PNGs it wrote, and those embedded in its HTML page."""
    plots = sorted(p for p in out_dir.rglob("*.png") if p.is_file())
    pages = sorted(out_dir.rglob("*.html"))
    for page in pages:
        for i, data in enumerate(_DATA_PNG.findall(page.read_text(errors="replace"))):
            target = out_dir / f"{page.stem}_plot{i + 1}.png"
            target.write_bytes(base64.b64decode(data))
            plots.append(target)
    return plots

