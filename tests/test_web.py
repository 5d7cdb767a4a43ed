"""``signanon serve`` end to end: the server runs in a subprocess on a free port, driven by headless
Chromium (Debian's ``chromium`` through Playwright) and by ``gradio_client``.

The browser tests skip when /usr/bin/chromium is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SAMPLE, first_frames_clip
from signanon.video import probe_video

pytest.importorskip("gradio", reason='the web app needs Gradio: pip install -e ".[web]"')

CHROMIUM = Path("/usr/bin/chromium")
START_TIMEOUT_S = 90
JOB_TIMEOUT_MS = 180_000


@dataclass
class Server:
    url: str
    tmp: Path  # the server's TMPDIR: its private workspace lives here
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"signanon serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"signanon serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``signanon serve`` on a free port; on the way out, SIGTERM must delete its workspace."""
    tmp = tmp_path_factory.mktemp("server-tmp")
    log = tmp.parent / "serve.log"
    port = _free_port()
    env = dict(os.environ, TMPDIR=str(tmp), GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signanon.cli.main", "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        assert [p.name for p in tmp.glob("signanon-web-*")], "no private workspace under TMPDIR"
        yield Server(url, tmp, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert not list(tmp.glob("signanon-web-*")), "the workspace outlived the server"


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    return first_frames_clip(SAMPLE, 12, tmp_path_factory.mktemp("clips") / "short.mp4")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no browser: install Debian's chromium (apt-get install -y chromium) for the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.url)
    page.get_by_role("button", name="Anonymize", exact=True).wait_for()
    yield page
    context.close()


def _upload(page, path: Path) -> None:
    page.locator("#original input[type=file]").set_input_files(str(path))


def _anonymize_and_wait(page) -> str:
    """Press Anonymize from the keyboard, wait for the result; returns the result video's URL."""
    page.get_by_role("button", name="Anonymize", exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Download the anonymized video").wait_for(state="visible", timeout=JOB_TIMEOUT_MS)
    return page.locator("#result video").get_attribute("src")


def _download(url: str, path: Path) -> Path:
    with urllib.request.urlopen(url, timeout=30) as response:
        path.write_bytes(response.read())
    return path


def test_page_anonymizes_the_sample_beside_the_original(page, tmp_path):
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=file]), textarea, select, button')]
            .filter(e => e.offsetParent !== null)
            .filter(e => !(e.getAttribute('aria-label') || e.getAttribute('title') || e.innerText.trim()
                           || (e.labels && e.labels.length && e.labels[0].innerText.trim())
                           || e.closest('label')))
            .map(e => e.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == [], f"controls without a label: {unlabelled}"
    _upload(page, SAMPLE)
    page.locator("#original video").wait_for()
    result_url = _anonymize_and_wait(page)
    assert page.get_by_text("Done.").is_visible()
    # what the identity guard did is on the page, as the command line prints it
    assert page.get_by_text("identity guard: ").is_visible()
    assert page.get_by_text("drawn faces checked against the signer").is_visible()
    assert page.locator("#original video").is_visible() and page.locator("#result video").is_visible()
    result = probe_video(_download(result_url, tmp_path / "result.mp4"))
    assert result.frame_count == probe_video(SAMPLE).frame_count == 58
    page.screenshot(path=str(tmp_path / "web_result.png"), full_page=True)


def test_bad_upload_shows_one_line_error_and_the_server_keeps_serving(page, tmp_path, short_clip):
    text = tmp_path / "clip.mp4"
    text.write_text("this is a text file, not a video\n")
    _upload(page, text)
    page.get_by_role("button", name="Anonymize", exact=True).click()
    error = page.get_by_text(re.compile("not a video FFmpeg can read"))
    error.first.wait_for(state="visible")
    assert "/tmp" not in error.first.inner_text() and str(tmp_path) not in page.content()
    page.screenshot(path=str(tmp_path / "web_error.png"))

    # dismiss the error drawn over the unplayable upload, then remove the upload
    dismiss = page.locator("#original [data-testid=status-tracker] button[aria-label=Clear]")
    try:
        dismiss.wait_for(state="visible", timeout=5_000)
        dismiss.click()
    except Exception:  # no error drawn over the upload in this browser: nothing to dismiss
        pass
    page.locator("#original [data-testid=video] button[aria-label=Clear]").click()
    _upload(page, short_clip)
    page.locator("#original video").wait_for()
    result_url = _anonymize_and_wait(page)
    assert probe_video(_download(result_url, tmp_path / "result.mp4")).frame_count == 12

    page.get_by_role("button", name="Check privacy and signing").click()
    page.get_by_text(re.compile(r"Privacy: (passed|failed)")).wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.get_by_text(re.compile("Hands kept")).is_visible()
    page.screenshot(path=str(tmp_path / "web_check.png"), full_page=True)


def test_diffusion_choice_says_whether_it_is_ready(page):
    page.get_by_label("Diffusion", exact=False).check()
    page.get_by_text(re.compile(r"^(Ready|Not ready|Not available)")).first.wait_for(state="visible")
    prompt = page.get_by_label("Prompt: the person to draw")
    assert "making gestures" in prompt.input_value()
    page.get_by_label("Avatar", exact=False).check()
    prompt.wait_for(state="hidden")


def test_gradio_client_scripts_the_anonymize_endpoint(server, short_clip, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError  # what the client raises for the page's gr.Error

    client = Client(server.url, verbose=False, download_files=str(tmp_path))
    result = client.predict(handle_file(str(short_clip)), api_name="/anonymize")
    path = Path(result["video"] if isinstance(result, dict) else result)
    assert probe_video(path).frame_count == 12
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n")
    with pytest.raises(AppError, match="not a video FFmpeg can read"):
        client.predict(handle_file(str(bad)), api_name="/anonymize")
    with pytest.raises(AppError, match="region '1,2' must be four numbers"):  # the signer's box reaches the job
        client.predict(handle_file(str(short_clip)), region="1,2", api_name="/anonymize")
    from signanon.web.jobs import diffusion_readiness

    if not diffusion_readiness()[0]:
        with pytest.raises(AppError, match="diffusion method is not ready"):
            client.predict(handle_file(str(short_clip)), method="diffusion", api_name="/anonymize")
