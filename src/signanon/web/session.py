"""The server's private workspace and the checks of an upload.

Everything the page writes lives under one temporary folder of the server (mode 0700): Gradio's
upload cache and one folder per browser session, named by a hash of Gradio's session id (so
nothing a client sends becomes a path). A session's folder is deleted when the browser session
ends (Gradio's ``unload``) or when it has not been used for ``WebLimits.keep_minutes``
(:class:`Sweeper`); the whole workspace is deleted when the server stops. Uploads are copied to a
fixed name (``input`` + a known video suffix); the upload's own name is never used.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError

#: suffixes kept when an upload is copied (ffmpeg reads by content; the suffix is a hint only)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif", ".ogv")
INPUT_STEM = "input"
RESULT_NAME = "anonymized.mp4"
REGION_NAME = "region.txt"  # the box the result was made from (the check compares the same box)
OUTCOME_NAME = "outcome.txt"  # what the run did to keep the signer unrecognisable (signanon.outcome), a line each
PRIVATE = 0o700


@dataclass(frozen=True)
class WebLimits:
    """What one server accepts: upload size (MB), video length (minutes), and how long an idle
    session's files are kept (minutes)."""

    max_upload_mb: float = 500.0
    max_minutes: float = 10.0
    keep_minutes: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_minutes", "keep_minutes"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise InputError(f"{name.replace('_', '-')} must be a number more than 0, got {value}")


class Workspace:
    """A private temporary folder (mode 0700) holding Gradio's cache and one folder per session."""

    def __init__(self, parent: str | Path | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="signanon-web-", dir=parent))
        os.chmod(self.root, PRIVATE)
        self.sessions = self._private_dir(self.root / "sessions")
        self.gradio_cache = self._private_dir(self.root / "gradio")
        self._busy: dict[str, int] = {}
        self._dropped: set[str] = set()  # sessions whose tab closed while a job ran in them
        self._cached: dict[str, set[Path]] = {}  # session -> its entries in Gradio's cache
        self._lock = threading.Lock()

    @staticmethod
    def _private_dir(path: Path) -> Path:
        path.mkdir(mode=PRIVATE, exist_ok=True)
        os.chmod(path, PRIVATE)
        return path

    def _key(self, session_hash: str | None) -> str:
        if not session_hash:
            raise InputError("this request has no session; reload the page")
        return hashlib.sha256(session_hash.encode("utf-8", "replace")).hexdigest()[:32]

    def folder(self, session_hash: str | None) -> Path:
        """The session's private folder (created on first use; its use time is refreshed)."""
        path = self._private_dir(self.sessions / self._key(session_hash))
        os.utime(path)
        return path

    @contextmanager
    def busy(self, session_hash: str | None) -> Iterator[Path]:
        """The session's folder, kept from the time-limit sweep while a job runs in it."""
        key = self._key(session_hash)
        with self._lock:
            self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield self.folder(session_hash)
        finally:
            with self._lock:
                self._busy[key] -= 1
                if not self._busy[key]:
                    del self._busy[key]
                closed = key in self._dropped and key not in self._busy
            if closed:  # the tab closed during the job: its files go now that the job is over
                self._delete(key)
            else:
                self.folder(session_hash)

    def own(self, session_hash: str | None, path: str | Path | None) -> None:
        """Note that ``path`` (a file Gradio copied into its cache for this session: the upload, the
        result it serves) belongs to the session, so that :meth:`drop` deletes it too."""
        if not session_hash or not path:
            return
        try:
            entry = Path(path).resolve().relative_to(self.gradio_cache.resolve()).parts[0]
        except (ValueError, IndexError, OSError):
            return  # not in the cache
        with self._lock:
            self._cached.setdefault(self._key(session_hash), set()).add(self.gradio_cache / entry)

    def drop(self, session_hash: str | None) -> None:
        """Delete a session's folder and its files in Gradio's cache (the browser tab closed); with
        a job running, once the job ends."""
        if not session_hash:
            return
        key = self._key(session_hash)
        with self._lock:
            if key in self._busy:
                self._dropped.add(key)
                return
        self._delete(key)

    def closed(self, session_hash: str | None) -> bool:
        """Whether the session's tab closed while a job ran in it (the job should stop)."""
        if not session_hash:
            return False
        key = self._key(session_hash)
        with self._lock:
            return key in self._dropped

    def _delete(self, key: str) -> None:
        with self._lock:
            self._dropped.discard(key)
            cached = self._cached.pop(key, set())
        shutil.rmtree(self.sessions / key, ignore_errors=True)
        for entry in cached:
            _remove(entry)

    def sweep(self, max_age_s: float) -> list[Path]:
        """Delete session folders and cached uploads unused for ``max_age_s`` seconds."""
        now = time.time()
        removed = []
        with self._lock:
            busy = set(self._busy)
        for parent in (self.sessions, self.gradio_cache):
            for entry in parent.iterdir():
                if entry.name in busy:
                    continue
                try:
                    age = now - entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > max_age_s:
                    _remove(entry)
                    removed.append(entry)
        with self._lock:  # a session whose tab never sent its unload (a script) forgets them too
            for key, entries in list(self._cached.items()):
                entries.difference_update(removed)
                if not entries:
                    del self._cached[key]
        return removed

    def close(self) -> None:
        """Delete everything (the server stops)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Sweeper(threading.Thread):
    """Runs :meth:`Workspace.sweep` every ``every_s`` seconds until :meth:`stop`."""

    def __init__(self, workspace: Workspace, max_age_s: float, every_s: float = 60.0):
        super().__init__(name="signanon-web-sweeper", daemon=True)
        self.workspace, self.max_age_s, self.every_s = workspace, max_age_s, every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every_s):
            self.workspace.sweep(self.max_age_s)

    def stop(self) -> None:
        self._stop_event.set()


def _over(value: float, limit: float) -> str:
    """``value`` (over ``limit``) with as many digits as it takes not to print as the limit or
    under it (a 1.4 MB file against 1 MB said "1 MB; up to 1 MB")."""
    for digits in range(0 if value >= 10 else 1, 6):
        text = f"{value:.{digits}f}"
        if float(text) > limit:
            return text
    return f"{value:g}"


def stage_upload(upload: str | Path | None, folder: Path, limits: WebLimits) -> Path:
    """Copy an upload into the session folder under a fixed name, after the size check; the
    previous input and results of the session are removed first."""
    if not upload:
        raise InputError("choose a video first: upload a file or record one with the webcam")
    source = Path(upload)
    if not source.is_file():
        raise InputError("the upload is gone from the server; upload the video again")
    size_mb = source.stat().st_size / 1e6
    if size_mb > limits.max_upload_mb:
        raise InputError(f"the video is {_over(size_mb, limits.max_upload_mb)} MB; this server takes up to {limits.max_upload_mb:g} MB")
    for old in folder.iterdir():
        _remove(old)
    suffix = source.suffix.lower() if source.suffix.lower() in VIDEO_SUFFIXES else ".video"
    target = folder / f"{INPUT_STEM}{suffix}"
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    return target


def check_video(path: Path, limits: WebLimits):
    """Probe a staged upload (readable, a video, not too long); returns its ``VideoInfo``.

    Errors name "the upload" rather than the server's path."""
    from ..video import probe_video

    try:
        info = probe_video(path)
    except InputError as err:
        raise InputError(str(err).replace(str(path.absolute()), "the upload").replace(str(path), "the upload")) from None
    if info.duration_s > limits.max_minutes * 60:
        raise InputError(
            f"the video is {_over(info.duration_s / 60, limits.max_minutes)} minutes long; this server takes up to "
            f"{limits.max_minutes:g} minutes"
        )
    return info


def find_input(folder: Path) -> Path | None:
    """The session's staged input, if any."""
    found = sorted(folder.glob(f"{INPUT_STEM}.*"))
    return found[0] if found else None
