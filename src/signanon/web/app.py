"""The page: :func:`build_app` returns the ``gr.Blocks`` of ``signanon serve``.

Upload or record a video, choose the method and its settings, anonymize (progress: frames done
of total and the time left), watch the result beside the original, download it, and check privacy
and signing. The anonymize button's handler is also the API endpoint ``/anonymize``: every input
but the video has a default, and it returns the anonymized video::

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("clip.mp4"), api_name="/anonymize")

One job runs at a time (anonymize and check share one queue; the page shows the position).
Errors the user can fix show their one line in the page; the server keeps serving.
"""

# No ``from __future__ import annotations``: Gradio finds the ``gr.Request`` parameter of a
# handler from its evaluated annotation.

import logging
from typing import Any

from ..errors import ReidentifiedError, SignanonError
from . import import_gradio
from .jobs import PROMPT_PRESETS, WebJobs, build_config, controls, diffusion_readiness, progress_text
from ..video.region import HELP as REGION_HELP
from .session import WebLimits

LOG = logging.getLogger(__name__)

INTRO = (
    "# Anonymize a signing video\n"
    "Upload a video or record one. The result shows a new signer with the same signing: "
    "handshapes, movement and facial grammar. Nothing leaves this computer."
)
PLAY_BOTH_JS = """() => {
  const videos = [...document.querySelectorAll('#original video, #result video')];
  videos.forEach(v => { v.pause(); v.currentTime = 0; });
  videos.forEach(v => v.play());
}"""
DIFFUSION_STEPS_MAX = 100
VIDEO_HEIGHT = 420
#: the page's settings in the order the anonymize handler (and the API) takes them
SETTING_ORDER = ("palette", "face_shape", "background", "prompt", "negative_prompt", "steps", "keyframe_interval", "seed", "face_enhance")


def _help(control) -> str | None:
    """The config's help text as the control's info line (none when it only repeats the label)."""
    if not control.help or control.help.lower() == control.label.lower():
        return None
    return control.help[:1].upper() + control.help[1:] + "."


def _method_choices(ready: bool) -> list[tuple[str, str]]:
    diffusion = "Diffusion: a person from a text prompt (GPU)"
    if not ready:
        diffusion += " - not ready, see below"
    return [("Avatar: a synthetic signer (runs here, no downloads)", "avatar"), (diffusion, "diffusion")]


def _avatar_inputs(gr) -> dict[str, Any]:
    c = controls("avatar")
    return {
        "palette": gr.Dropdown(
            choices=list(c["palette"].choices), value=c["palette"].default, label=c["palette"].label,
            info=_help(c["palette"]),
        ),
        "face_shape": gr.Dropdown(
            choices=list(c["face_shape"].choices), value=c["face_shape"].default, label=c["face_shape"].label,
            info=_help(c["face_shape"]),
        ),
        "background": gr.Textbox(
            value=c["background"].default or "", label=c["background"].label, info=_help(c["background"]),
            placeholder="empty: the palette's own, e.g. #f0f0f0", max_lines=1,
        ),
    }  # fmt: skip


def _diffusion_inputs(gr) -> dict[str, Any]:
    c = controls("diffusion")
    return {
        "prompt": gr.Textbox(value=c["prompt"].default, label=c["prompt"].label, info=_help(c["prompt"]), lines=2),
        "negative_prompt": gr.Textbox(
            value=c["negative_prompt"].default, label=c["negative_prompt"].label, info=_help(c["negative_prompt"]), lines=2
        ),
        "steps": gr.Slider(
            1, DIFFUSION_STEPS_MAX, value=c["steps"].default, step=1, label=c["steps"].label,
            info=_help(c["steps"]) or "More steps: finer detail, slower.",
        ),
        "keyframe_interval": gr.Number(
            value=c["keyframe_interval"].default, minimum=1, precision=0, label=c["keyframe_interval"].label,
            info=_help(c["keyframe_interval"]) or "1: every frame is drawn. More: faster, fast hands may blur.",
        ),
        "seed": gr.Number(
            value=c["seed"].default, minimum=0, precision=0, label=c["seed"].label,
            info=_help(c["seed"]) or "Same seed, same person.",
        ),
        "face_enhance": gr.Checkbox(
            value=c["face_enhance"].default, label=c["face_enhance"].label,
            info=_help(c["face_enhance"]) or "Move the new face with the signer's facial expressions.",
        ),
    }  # fmt: skip


def _user_error(gr, err: Exception):
    """The ``gr.Error`` shown for an exception of a job (one line; details only in the log)."""
    if isinstance(err, ReidentifiedError):
        return gr.Error(f"Not released: {err}", title="Privacy check refused the result", duration=None, print_exception=False)
    if isinstance(err, SignanonError):
        return gr.Error(str(err), title="Cannot do that", duration=None, print_exception=False)
    LOG.exception("job failed")
    return gr.Error(f"internal error: {type(err).__name__}: {err}", title="Something went wrong", duration=None)


def build_app(jobs: WebJobs, limits: WebLimits | None = None):
    """The page of ``signanon serve``, wired to ``jobs`` (Gradio is imported here)."""
    gr = import_gradio()
    limits = limits or jobs.limits
    ready, readiness = diffusion_readiness()

    with gr.Blocks(title="signanon", analytics_enabled=False, delete_cache=_cache_policy(limits)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            original = gr.Video(
                label="Your video", sources=["upload", "webcam"], elem_id="original", height=VIDEO_HEIGHT,
                webcam_options=gr.WebcamOptions(mirror=False),
            )  # fmt: skip
            result = gr.Video(
                label="Anonymized video", interactive=False, elem_id="result", buttons=["download"], height=VIDEO_HEIGHT
            )
        gr.Markdown(
            f"Up to {limits.max_upload_mb:g} MB and {limits.max_minutes:g} minutes. "
            "Your files are deleted when you close this page."
        )
        method = gr.Radio(_method_choices(ready), value="avatar", label="Method")
        region = gr.Textbox(
            value="", label="Signer's box (optional)", info=REGION_HELP[:1].upper() + REGION_HELP[1:] + ".",
            placeholder="empty: the whole frame; X,Y,W,H, e.g. 470,350,320,240 or 0.6,0.55,0.4,0.45", max_lines=1,
        )  # fmt: skip
        with gr.Group(visible=True) as avatar_box:
            settings = _avatar_inputs(gr)
        with gr.Group(visible=False) as diffusion_box:
            gr.Markdown(readiness)
            preset = gr.Dropdown(list(PROMPT_PRESETS), value=None, label="Prompt presets (DiffSLVA)")
            settings.update(_diffusion_inputs(gr))
        with gr.Row():
            run = gr.Button("Anonymize", variant="primary")
            play = gr.Button("Play both from the start")
            check = gr.Button("Check privacy and signing")
        status = gr.Markdown()
        download = gr.DownloadButton("Download the anonymized video", visible=False)
        verdict = gr.Markdown()
        plots = gr.Gallery(
            label="Evaluation plots", visible=False, interactive=False, columns=2, object_fit="contain", height="auto"
        )

        def anonymize(
            video, method, palette, face_shape, background, prompt, negative_prompt, steps, keyframe_interval, seed,
            face_enhance, region, request: gr.Request, progress=gr.Progress(),
        ):  # fmt: skip
            """Anonymize a signing video with the avatar (default) or diffusion; returns the MP4."""
            values = dict(
                palette=palette, face_shape=face_shape, background=background, prompt=prompt, negative_prompt=negative_prompt,
                steps=steps, keyframe_interval=keyframe_interval, seed=seed, face_enhance=face_enhance,
            )  # fmt: skip
            try:
                if method == "diffusion" and not ready:
                    raise SignanonError("the diffusion method is not ready on this server: the list under Method says what is missing")
                config = build_config(method or "avatar", values)

                def forward(p):
                    progress((p.done, p.total) if p.total else None, desc=progress_text(p), unit=f"{p.unit}s")

                progress(0, desc="checking the video")
                return str(jobs.anonymize(request.session_hash, video, config, forward, region=region))
            except Exception as err:
                raise _user_error(gr, err) from None

        def evaluate(request: gr.Request, progress=gr.Progress()):
            progress(None, desc="checking privacy and signing")
            try:
                text, images = jobs.evaluate(request.session_hash)
            except Exception as err:
                raise _user_error(gr, err) from None
            return text, gr.Gallery(value=[str(p) for p in images], visible=bool(images))

        def finished(path, request: gr.Request):
            jobs.own(request.session_hash, path)  # Gradio's served copy of the result
            lines = "".join(f"\n- {line}" for line in jobs.outcome(request.session_hash))
            return gr.DownloadButton(value=path, visible=True), "Done. The result plays beside your video." + lines

        def reset():
            return None, gr.DownloadButton(visible=False), "", "", gr.Gallery(value=None, visible=False)

        def end_session(request: gr.Request):
            jobs.drop(request.session_hash)

        def show_method(choice):
            return gr.Group(visible=choice != "diffusion"), gr.Group(visible=choice == "diffusion")

        inputs = [original, method] + [settings[name] for name in SETTING_ORDER] + [region]
        run.click(
            anonymize, inputs, result, api_name="anonymize", concurrency_limit=1, concurrency_id="job",
        ).success(finished, result, [download, status], api_visibility="private")  # fmt: skip
        check.click(
            evaluate, None, [verdict, plots], api_name="check", concurrency_limit=1, concurrency_id="job"
        )
        play.click(None, js=PLAY_BOTH_JS)
        original.change(reset, None, [result, download, status, verdict, plots], api_visibility="private")
        method.change(show_method, method, [avatar_box, diffusion_box], api_visibility="private")
        preset.change(lambda p: p or gr.skip(), preset, settings["prompt"], api_visibility="private")
        demo.unload(end_session)
    demo.queue(default_concurrency_limit=1)
    return demo


def _cache_policy(limits: WebLimits) -> tuple[int, int]:
    """Gradio's own cache sweep: (every, older than) in seconds, from the session time limit."""
    keep = int(limits.keep_minutes * 60)
    return max(10, min(300, keep // 4)), keep
