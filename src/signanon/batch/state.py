"""What a batch run keeps in ``OUT_DIR`` between runs: resume state, the corpus secret, a lock.

Everything lives in one hidden control folder, ``OUT_DIR/.signanon_batch/`` (never publish it: the
secret maps signers to their new identities):

* ``state.json``: per clip (relative input path) the key it was done with (hash of the input's
  content and of every setting that changes its outputs) and its report entry; and every file the
  batch has put in the tree (``published``, written before the files are moved in), so a re-run
  tells its own outputs from files it must not touch. Rewritten atomically after every clip, so
  a kill at any moment leaves the previous or the next version.
* ``secret``: 32 random bytes (hex), made on the first run; per-signer prompts and seeds derive
  from it (:func:`identity_for`), so the mapping cannot be rebuilt from the signer names.
* ``lock``: held (``flock``) while a run writes to ``OUT_DIR``; a second run is refused.
* ``work/``: each clip's outputs are written here first and moved into the tree when complete
  (a failed diffusion clip keeps its finished key frames here for the retry).

A killed run may leave files in ``work/`` and hidden temporary files (``.NAME.<hex>.partial`` of the video
writer, ``.NAME.<hex>.tmp`` of atomic writes); :func:`clean_leftovers` removes them under the lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..files import write_json_atomic, write_text_atomic

CONTROL = ".signanon_batch"
STATE_VERSION = 1
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8,}\.(partial|tmp|probe)$")
_CHUNK = 1 << 20
RESUME_CACHE_SUFFIX = ".signanon-cache"  # the diffusion method's key-frame cache beside its output

# New identities for diffusion signers: a prompt is built from one choice of each list.
_PEOPLE = ("a woman", "a man", "an older woman", "an older man", "a young woman", "a young man")
_HAIR = ("short black hair", "long red hair", "curly brown hair", "short blond hair", "grey hair",
         "a shaved head", "long black hair", "short brown hair", "wavy auburn hair")
_CLOTHES = ("a blue shirt", "a green sweater", "a white t-shirt", "a black jacket", "a yellow top",
            "a striped shirt", "a red hoodie")


def control_dir(out_dir: Path) -> Path:
    """The hidden control folder of ``out_dir``."""
    return out_dir / CONTROL


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (hex): what "the same input" means, not its name or time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def settings_digest(settings: dict[str, Any]) -> str:
    """SHA-256 (hex) of a JSON-able settings dict, independent of key order."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def clip_key(content: str, settings: dict[str, Any]) -> str:
    """The resume key of one clip: its content digest and its settings digest."""
    return hashlib.sha256(f"{content}:{settings_digest(settings)}".encode()).hexdigest()


@dataclass
class BatchState:
    """The resume record: ``clips`` {relative input path: {"key": str, "content": input digest,
    "entry": report entry dict}}
    and ``published``: the files (relative to ``OUT_DIR``, POSIX) this batch put in the tree."""

    path: Path
    clips: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, out_dir: Path) -> "BatchState":
        """The state of ``out_dir`` (empty when missing or unreadable: everything is redone)."""
        path = control_dir(out_dir) / "state.json"
        try:
            data = json.loads(path.read_text())
            clips = data["clips"] if data.get("version") == STATE_VERSION else {}
            published = set(data.get("published", [])) if data.get("version") == STATE_VERSION else set()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            clips, published = {}, set()
        return cls(path, dict(clips), published)

    def wrote(self, relative: str) -> bool:
        """Whether this batch published ``relative`` (a path under ``OUT_DIR``); a state written
        before ``published`` existed still knows the files of its finished clips."""
        if relative in self.published:
            return True
        return any(relative in (record.get("entry") or {}).get("files", []) for record in self.clips.values())

    def claim(self, relatives: list[str]) -> None:
        """Record files as the batch's own before they are moved into the tree (a kill in between
        leaves them known)."""
        if not set(relatives) <= self.published:
            self.published.update(relatives)
            self.save()

    def disown(self, relatives: list[str]) -> None:
        """Forget files the batch removed from the tree."""
        if self.published & set(relatives):
            self.published.difference_update(relatives)
            self.save()

    def done_entry(self, relative: str, key: str) -> dict[str, Any] | None:
        """The stored entry when ``relative`` was finished (done or quarantined) with ``key``."""
        record = self.clips.get(relative)
        if record is None or record.get("key") != key:
            return None
        entry = record.get("entry") or {}
        return entry if entry.get("status") in ("done", "quarantined") else None

    def record(self, relative: str, key: str, entry: dict[str, Any], content: str | None = None) -> None:
        """Remember a clip's outcome (and the digest of the input's ``content`` it came from) and
        write the state file atomically."""
        self.clips[relative] = {"key": key, "content": content, "entry": entry}
        self.save()

    def content_of(self, relative: str) -> str | None:
        """The input content digest a clip's last recorded outcome came from (None: unknown)."""
        return (self.clips.get(relative) or {}).get("content")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": STATE_VERSION, "clips": self.clips, "published": sorted(self.published)}
        write_json_atomic(self.path, data, indent=None)


class BatchLock:
    """An exclusive ``flock`` on ``OUT_DIR/.signanon_batch/lock`` for the length of a ``with``
    block; OutputError when another run holds it. Released by the OS if the process dies."""

    def __init__(self, out_dir: Path):
        self.path = control_dir(out_dir) / "lock"
        self._fd: int | None = None

    def __enter__(self) -> "BatchLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputError(f"another signanon batch is writing to {self.path.parent.parent}") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def clean_leftovers(out_dir: Path) -> int:
    """Remove what a killed run left (call it under :class:`BatchLock`): unpublished files in the
    work folders (a diffusion resume cache, ``.NAME.signanon-cache/``, is kept so the clip resumes
    its finished key frames) and hidden temporary files anywhere in ``out_dir``. Returns the
    number of temporary files removed."""
    work = work_dir(out_dir)
    for clip in sorted(work.iterdir()) if work.is_dir() else []:
        clear_work(clip) if clip.is_dir() else clip.unlink(missing_ok=True)
    removed = 0
    for folder, _, files in os.walk(out_dir):
        for name in files:
            if _TEMP_NAME.match(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def clear_work(folder: Path) -> None:
    """Empty one clip's work folder but for a diffusion resume cache; remove it when empty."""
    for item in sorted(folder.iterdir()) if folder.is_dir() else []:
        if item.is_dir() and item.name.endswith(RESUME_CACHE_SUFFIX):
            continue
        shutil.rmtree(item) if item.is_dir() else item.unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def remove_empty_work(out_dir: Path) -> None:
    """Remove the work folder when no clip keeps anything there (after a run)."""
    work = work_dir(out_dir)
    for clip in work.iterdir() if work.is_dir() else []:
        if clip.is_dir() and not any(clip.iterdir()):
            clip.rmdir()
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()


def work_dir(out_dir: Path) -> Path:
    """Where clips are written before they are moved into the tree (inside the control folder)."""
    return control_dir(out_dir) / "work"


def corpus_secret(out_dir: Path) -> bytes:
    """The corpus's random secret, made (atomically) on first use and kept in the control folder."""
    path = control_dir(out_dir) / "secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise OutputError(f"the corpus secret {path} is damaged; restore it from a backup") from None


def _derive(secret: bytes, purpose: str, signer: str) -> int:
    mac = hmac.new(secret, f"{purpose}\0{signer}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big")


def identity_for(secret: bytes, signer: str) -> tuple[str, int]:
    """The new identity of ``signer``: (prompt, seed), the same on every run with the same secret."""
    person = _PEOPLE[_derive(secret, "person", signer) % len(_PEOPLE)]
    hair = _HAIR[_derive(secret, "hair", signer) % len(_HAIR)]
    clothes = _CLOTHES[_derive(secret, "clothes", signer) % len(_CLOTHES)]
    seed = _derive(secret, "seed", signer) % (2**31 - 1)
    return f"{person} in CG style, {hair}, wearing {clothes}, is making gestures", seed
