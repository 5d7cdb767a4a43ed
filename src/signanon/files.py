"""Atomic file writes: a reader never sees half a file, and a failed write leaves nothing behind.

Everything signanon writes (videos, JSON records, reports, cache entries, checkpoints) goes to a
hidden temporary file in the target's folder (so the final rename stays on one file system) and is
renamed onto the target with :func:`os.replace` only when complete::

    write_json_atomic(path, {"frames": 12})
    with atomic_path(path) as tmp:     # any writer that wants a path (torch.save, PyAV, cv2)
        torch.save(state, tmp)

An existing file at the target is replaced only on success. Files get the usual permissions
(``0666`` minus the umask), not the ``0600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence


def temp_sibling(path: str | Path, suffix: str = ".tmp") -> Path:
    """A hidden, not yet existing path beside ``path``: ``.NAME.<random><suffix>`` in the same folder."""
    path = Path(path)
    return path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"


class AtomicTarget:
    """A target path and its temporary sibling, for writers with an open/close lifecycle (e.g. a
    video encoder): write to :attr:`temp`, then :meth:`commit` (rename onto :attr:`path`) or
    :meth:`discard` (remove the temporary file)."""

    def __init__(self, path: str | Path, suffix: str = ".tmp"):
        self.path = Path(path)
        self.temp = temp_sibling(self.path, suffix)

    def commit(self) -> None:
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


class Removal(AtomicTarget):
    """A path that :func:`commit_together` removes with the others' renames (an output of an
    earlier run that this one does not write, and that would otherwise be read beside the new
    files as theirs); it has no temporary file."""


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on any
    exception it is removed (and ``path`` is left as it was). The caller creates the file."""
    target = AtomicTarget(path, suffix)
    try:
        yield target.temp
        target.commit()
    except BaseException:
        target.discard()
        raise


_HELD_SIGNALS = ("SIGINT", "SIGTERM")


@contextmanager
def _signals_held() -> Iterator[Callable[[], bool]]:
    """Record SIGINT and SIGTERM instead of acting on them while the block runs (main thread only:
    elsewhere nothing is held); yields a function telling whether one came. The previous handlers
    are put back as the block ends and a signal that came is raised again for them (Ctrl-C then
    raises KeyboardInterrupt there). Handlers, not a signal mask: a process-wide signal goes to
    any thread that does not block it (MediaPipe's, the encoder's), and Python acts on it anyway."""
    import signal
    import threading

    came: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in _HELD_SIGNALS:
            sig = getattr(signal, name)
            if signal.getsignal(sig) is not None:  # None: a handler set outside Python, left alone
                previous[sig] = signal.signal(sig, lambda signum, frame: came.append(signum))
    try:
        yield lambda: bool(came)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(came):
            signal.raise_signal(sig)


def _put_back(moved: list[tuple[AtomicTarget, Path | None]]) -> None:
    """Undo :func:`commit_together`'s renames: each new file back to its temporary name, each
    old file (its backup) back onto its path."""
    for target, backup in reversed(moved):
        if target.path.exists() and not target.temp.exists():
            os.replace(target.path, target.temp)
        if backup is not None:
            os.replace(backup, target.path)


def commit_together(targets: Sequence[AtomicTarget]) -> None:
    """Rename every target's temporary file onto its path: all of them, or none (files that only
    make sense together, such as a report, its page and its video).

    An existing file at a path is moved aside first and deleted only once every rename is done.
    SIGINT and SIGTERM are held back meanwhile: one that arrived puts every old file back (a path
    that had none is left without) and is then delivered; the interrupt, like an error while
    renaming, discards the temporary files, so an interrupted command leaves the folders as they were.
    """
    try:
        while True:
            with _signals_held() as interrupted:
                moved: list[tuple[AtomicTarget, Path | None]] = []
                try:
                    for target in targets:
                        backup = temp_sibling(target.path, ".old") if target.path.exists() else None
                        if backup is not None:
                            os.replace(target.path, backup)
                        moved.append((target, backup))
                        if not isinstance(target, Removal):
                            os.replace(target.temp, target.path)
                except BaseException:
                    _put_back(moved)
                    raise
                if not interrupted():
                    for _, backup in moved:
                        if backup is not None:
                            backup.unlink(missing_ok=True)
                    return
                _put_back(moved)  # the held signal is delivered as the block ends ...
            # ... and here only when its handler let the command go on: commit after all
    except BaseException:
        for target in targets:
            target.discard()
        raise


class StagedFiles:
    """Files that appear together or not at all: each is written to a hidden temporary name beside
    its target (:meth:`path`, :meth:`write_text`), and :meth:`commit` renames them all at once
    (:func:`commit_together`); :meth:`discard` removes what was staged. A path whose temporary file
    was never created is left out of the commit. :meth:`remove` stages a removal: an earlier file
    that goes with the commit (and stays on an interrupt)."""

    def __init__(self) -> None:
        self.targets: list[AtomicTarget] = []

    def path(self, path: str | Path, suffix: str = ".tmp") -> Path:
        """A temporary path beside ``path`` to write its content to (the caller creates the file)."""
        target = AtomicTarget(path, suffix)
        self.targets.append(target)
        return target.temp

    def write_bytes(self, path: str | Path, data: bytes) -> None:
        fd = os.open(self.path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def write_text(self, path: str | Path, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(path, text.encode(encoding))

    def remove(self, path: str | Path) -> None:
        """Remove ``path`` in the commit, with the others' renames (nothing where it is absent)."""
        self.targets.append(Removal(path))

    def adopt(self, other: "StagedFiles") -> None:
        """Take over ``other``'s staged files (to commit them with these)."""
        self.targets.extend(other.targets)
        other.targets = []

    def commit(self) -> None:
        try:
            commit_together([t for t in self.targets if t.temp.exists() or (isinstance(t, Removal) and t.path.exists())])
        finally:
            self.discard()  # nothing left after a commit; the new files after an interrupt

    def discard(self) -> None:
        for target in self.targets:
            target.discard()
        self.targets = []


def make_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed (its parent must exist) and return it absolute; a one-line
    OutputError naming ``what`` when it is a file or cannot be created."""
    from .errors import OutputError

    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} is a file, not a folder: {folder}")
    if not folder.parent.is_dir():
        raise OutputError(f"parent folder of the {what} does not exist: {folder.parent}")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as err:
        raise OutputError(f"{what} cannot be created ({err.strerror}): {folder}") from None
    return folder


def remove_empty_folders(folder: str | Path) -> None:
    """Remove ``folder`` and its sub-folders bottom-up, each only when it holds nothing (files
    are never deleted; a folder with a file in it stays with its parents)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        try:
            sub.rmdir()
        except OSError:  # not empty
            pass
    try:
        folder.rmdir()
    except OSError:
        pass


@contextmanager
def output_folder(folder: str | Path, what: str = "output folder", *, remove_partial: bool = False) -> Iterator[Path]:
    """:func:`make_folder`, undone on failure: when the block raises (a bad input, Ctrl-C, a full
    disk) a folder this call created is removed again, so a failed command leaves no empty folder
    behind. ``remove_partial``: remove it with whatever the block wrote into it (for outputs that
    are only meaningful complete, such as a report); otherwise only empty folders are removed
    (a resumable run keeps its finished parts). A folder that existed before is left as it is."""
    path = Path(folder).expanduser().absolute()
    existed = path.exists()
    path = make_folder(path, what)
    try:
        yield path
    except BaseException:
        if not existed:
            if remove_partial:
                shutil.rmtree(path, ignore_errors=True)
            else:
                remove_empty_folders(path)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module doc)."""
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | Path, value: Any, *, indent: int | None = 2, allow_nan: bool = True) -> None:
    """Write ``value`` as JSON (plus a final newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=indent, allow_nan=allow_nan) + "\n")
