"""What a batch run works on: the clips of a folder or of a CSV manifest, and where each output goes.

``INPUT`` is either a folder, searched recursively for video files (:data:`VIDEO_SUFFIXES`; other
files are counted as ignored), or a CSV manifest with a ``path`` column and optional ``signer``,
``prompt``, ``seed`` and ``region`` columns (relative paths are read from the manifest's folder;
``region`` is the signer's box ``X,Y,W,H`` as ``anonymize --region`` takes it, quoted in the CSV).

Each clip has a ``relative`` path (POSIX style) that the output tree mirrors:
``a/b/clip.mov`` -> ``OUT_DIR/a/b/clip.mp4`` (:meth:`Clip.output_in`). Two inputs that would write
the same output (``a/x.mov`` and ``a/x.mp4``) are kept with a ``problem``: the later one fails.
Manifest rows naming one file (``x.mp4``, ``./x.mp4``) are one clip when their settings agree,
and the manifest is refused when they differ.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..video.region import Region
from .state import CONTROL

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")
MANIFEST_COLUMNS = ("path", "signer", "prompt", "seed", "region")


@dataclass(frozen=True)
class Clip:
    """One input of the corpus.

    ``path``: the input file (absolute). ``relative``: its place in the mirrored tree (POSIX).
    ``signer`` / ``prompt`` / ``seed``: manifest columns (None when absent or empty).
    ``region``: the manifest's signer box (anonymize and evaluate that box only), or None.
    ``problem``: why the clip cannot be run at all (it is reported as failed), else None.
    """

    path: Path
    relative: str
    signer: str | None = None
    prompt: str | None = None
    seed: int | None = None
    problem: str | None = None
    region: Region | None = None

    @property
    def stem(self) -> str:
        """The relative path without its suffix (``a/b/clip``): every output of the clip starts so."""
        return str(PurePosixPath(self.relative).with_suffix(""))

    def output_in(self, folder: Path, suffix: str = ".mp4") -> Path:
        """The clip's output with ``suffix`` (e.g. ``.mp4``, ``.summary.json``) under ``folder``."""
        return folder / (self.stem + suffix)


@dataclass(frozen=True)
class Corpus:
    """The clips of one batch input (in path order) and what was left out.

    ``source``: the folder or manifest given. ``ignored``: files of the folder that are not videos
    (relative paths). ``has_signers``: the manifest has a non-empty ``signer`` column. ``notes``:
    one line each on what was done about the input (manifest rows merged, outside clips renamed).
    """

    source: Path
    clips: tuple[Clip, ...]
    ignored: tuple[str, ...] = ()
    has_signers: bool = False
    notes: tuple[str, ...] = ()


def discover(source: str | Path, out_dir: str | Path | None = None) -> Corpus:
    """The corpus of a folder or a CSV manifest; ``out_dir`` (if inside a folder input) and other
    batches' output trees (subfolders holding a ``.signanon_batch`` folder) are skipped.

    Raises :class:`~signanon.errors.InputError` (one line) when ``source`` is missing, is a file
    that is not a CSV manifest, or holds no clip at all.
    """
    path = Path(source).expanduser().absolute()
    if path.is_dir():
        corpus = _discover_folder(path, None if out_dir is None else Path(out_dir).expanduser().absolute())
    elif path.is_file() and path.suffix.lower() == ".csv":
        corpus = _read_manifest(path)
    elif path.exists():
        raise InputError(f"batch input must be a folder or a .csv manifest, got the file {path}")
    else:
        raise InputError(f"batch input not found: {path}")
    if not corpus.clips:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {path}")
    return corpus


def _inside(path: Path, folder: Path | None) -> bool:
    """Whether ``path`` is ``folder`` or in it, compared resolved (``..``, symlinks)."""
    if folder is None:
        return False
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _batch_trees(root: Path) -> set[tuple[str, ...]]:
    """The subfolders of ``root`` (as relative parts) that hold a batch's control folder: the
    output trees of earlier batches, not corpus material."""
    return {p.parent.relative_to(root).parts for p in root.rglob(CONTROL) if p.is_dir() and p.parent != root}


def _discover_folder(root: Path, out_dir: Path | None) -> Corpus:
    videos, ignored = [], []
    trees = _batch_trees(root)
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        parts = PurePosixPath(relative).parts
        if any(part.startswith(".") for part in parts):
            continue  # hidden files and folders (editor swap files, temporaries)
        if any(parts[:n] in trees for n in range(1, len(parts))) or _inside(path, out_dir):
            continue
        if path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(Clip(path, relative))
        else:
            ignored.append(relative)
    return Corpus(root, _mark_collisions(videos), tuple(ignored))


def _read_manifest(manifest: Path) -> Corpus:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = [(reader.line_num, row) for row in reader]  # the file's line: blank rows are skipped
            columns = [str(c).strip().lower() for c in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the manifest {manifest}: {err}") from None
    if "path" not in columns:
        raise InputError(f"manifest {manifest} has no 'path' column (columns: {', '.join(columns) or 'none'})")
    for number, row in rows:
        if "\x00" in "".join(str(v) for v in row.values() if v):
            raise InputError(f"manifest {manifest} line {number} holds a NUL byte: not a file name")
    numbered = [(number, _manifest_clip(manifest, number, _clean(row))) for number, row in rows]
    merged, notes = _merge_duplicates(manifest, [(n, c) for n, c in numbered if c is not None])
    clips, renamed = _name_outside_clips(manifest, merged)
    return Corpus(manifest, _mark_collisions(clips), (), any(c.signer for c in clips), notes + renamed)


def _merge_duplicates(manifest: Path, rows: list[tuple[int, Clip]]) -> tuple[list[tuple[int, Clip]], tuple[str, ...]]:
    """One clip per file: rows naming the same file (``x.mp4``, ``./x.mp4``) with the same settings
    are one clip, numbered by its first row (and a note saying so); with different settings, a
    one-line InputError."""
    by_file: dict[Path, list[tuple[int, Clip]]] = {}
    for number, clip in rows:
        by_file.setdefault(clip.path.resolve(), []).append((number, clip))
    clips, notes = [], []
    for same in by_file.values():
        lines = _lines([n for n, _ in same])
        first = same[0][1]
        if any(_settings(c) != _settings(first) for _, c in same[1:]):
            raise InputError(f"manifest {manifest} lines {lines} name the same file {first.relative} with different "
                             "settings (signer, prompt, seed or region); keep one row")  # fmt: skip
        if len(same) > 1:
            notes.append(f"manifest lines {lines} name the same file {first.relative}: it is done once")
        clips.append(same[0])
    return clips, tuple(notes)


def _name_outside_clips(manifest: Path, rows: list[tuple[int, Clip]]) -> tuple[list[Clip], tuple[str, ...]]:
    """The clips, those outside the manifest's folder (mirrored by file name alone) renamed where
    another clip has their output stem: ``/data/anna/a.mp4`` and ``/data/bob/a.mp4`` land as
    ``a.mp4`` and ``a-2.mp4`` (in manifest order; a clip inside the folder keeps its own path),
    each with a note naming the manifest lines, never the folders (which can name people)."""
    base = manifest.parent
    owner = {}  # output stem -> the manifest line of the clip that has it
    for number, clip in rows:
        if _inside(clip.path, base):
            owner.setdefault(clip.stem, number)
    out, notes = [], []
    for number, clip in rows:
        if not _inside(clip.path, base):
            name, stem, k = PurePosixPath(clip.relative), clip.stem, 1
            while stem in owner:
                k += 1
                stem = f"{name.stem}-{k}"
            if k > 1:
                notes.append(f"manifest line {number}: line {owner[clip.stem]}'s clip has the name {name.stem}, "
                             f"so this {name.name} is published as {stem}{name.suffix}")  # fmt: skip
                clip = replace(clip, relative=stem + name.suffix)
            owner[stem] = number
        out.append(clip)
    return out, tuple(notes)


def _settings(clip: Clip) -> tuple:
    """What a manifest row sets for its clip (a bad seed or region: that it has a problem)."""
    return clip.signer, clip.prompt, clip.seed, None if clip.region is None else str(clip.region), clip.problem is None


def _lines(numbers: list[int]) -> str:
    """``2 and 3``, ``2, 3 and 4``."""
    text = [str(n) for n in numbers]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]


def _clean(row: dict) -> dict[str, str]:
    return {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}


def _manifest_clip(manifest: Path, line: int, row: dict[str, str]) -> Clip | None:
    """One manifest row as a clip (None for a blank row); a bad seed or region becomes the clip's
    problem (a region reaching past the frame is found when the clip runs)."""
    if not row.get("path"):
        return None
    given = Path(row["path"]).expanduser()
    path = given if given.is_absolute() else manifest.parent / given
    path = Path(*path.parts).absolute()
    relative = _mirror_path(path, manifest.parent)
    seed, problem = None, None
    if row.get("seed"):
        try:
            seed = int(row["seed"])
        except ValueError:
            problem = f"manifest line {line}: seed {row['seed']!r} is not a whole number"
    region = None
    if row.get("region"):
        try:
            region = Region.parse(row["region"])
        except InputError as err:
            problem = problem or f"manifest line {line}: {err}"
    return Clip(path, relative, row.get("signer") or None, row.get("prompt") or None, seed, problem, region)


def _mirror_path(path: Path, base: Path) -> str:
    """Where a manifest clip lands in the output tree: relative to the manifest's folder when inside
    it, else by its file name alone (``/data/anna/a.mp4`` -> ``a.mp4``: folder names outside the
    corpus are not published; :func:`_name_outside_clips` renames one that another's name takes)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().name


def _mark_collisions(clips: list[Clip]) -> tuple[Clip, ...]:
    """Clips in relative-path order; a clip whose output stem another clip already has gets a
    ``problem`` naming the first one."""
    first: dict[str, str] = {}
    out = []
    for clip in sorted(clips, key=lambda c: c.relative):
        key = clip.stem
        if key in first and clip.problem is None:
            clip = replace(clip, problem=f"its output would overwrite the output of {first[key]}")
        first.setdefault(key, clip.relative)
        out.append(clip)
    return tuple(out)
