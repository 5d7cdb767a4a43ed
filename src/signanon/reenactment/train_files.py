"""The files of a face-training run, checked without importing PyTorch: the face-clip folders
(:class:`FaceClipFolder`), the run folder (:func:`check_run_dir`) and its checkpoints
(:func:`latest_checkpoint`). ``signanon train-face`` runs these checks first, so a wrong path is
refused in one line before the training stack loads; :mod:`.training` re-exports them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
CHECKPOINT_SUFFIX = "-checkpoint.pth.tar"
VGG19_HINT = (
    "on a connected machine run: python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\" "
    "then copy ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth here and pass --vgg19-weights PATH"
)


class FaceClipFolder:
    """One data source: a folder of face clips (frame folders or video files).

    Args:
        root: the folder; clips are its sub-folders holding at least 2 images, and its video files.
        name: the source's name in logs (``talking_heads``, ``sign_faces`` ...).
        video_cache: decoded video clips kept in memory (frames folders need no cache).
    """

    def __init__(self, root: str | Path, name: str = "", video_cache: int = 4):
        self.root = Path(root).expanduser()
        self.name = name or self.root.name
        if self.root.is_file():
            raise InputError(f"face clip folder {self.root} is a file, not a folder of face clips")
        if not self.root.is_dir():
            raise InputError(f"face clip folder {self.root} not found (make one with: signanon extract-faces VIDEO_DIR -o DIR)")
        self.clips: list[Path] = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and len(self._frame_files(entry)) >= 2:
                self.clips.append(entry)
            elif entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
                self.clips.append(entry)
        if not self.clips:
            raise InputError(f"face clip folder {self.root} holds no clips (sub-folders of frames or video files)")
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._cache_size = video_cache

    def __len__(self) -> int:
        return len(self.clips)

    @staticmethod
    def _frame_files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def _video(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            from ..video import iter_frames, probe_video

            self._cache[path] = np.stack(list(iter_frames(probe_video(path))))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(path)
        return self._cache[path]

    def frame_count(self, clip: int) -> int:
        path = self.clips[clip]
        return len(self._frame_files(path)) if path.is_dir() else len(self._video(path))

    def frame(self, clip: int, index: int) -> np.ndarray:
        """Frame ``index`` of clip ``clip`` as RGB uint8 ``(H, W, 3)``."""
        path = self.clips[clip]
        if path.is_file():
            return self._video(path)[index]
        import cv2

        file = self._frame_files(path)[index]
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"face clip frame {file} cannot be read as an image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint of the highest epoch in ``run_dir``, or None."""
    run_dir = Path(run_dir)
    found = []
    for path in run_dir.glob(f"*{CHECKPOINT_SUFFIX}"):
        stem = path.name[: -len(CHECKPOINT_SUFFIX)]
        if stem.isdigit():
            found.append((int(stem), path))
    return max(found)[1] if found else None


def check_run_dir(run_dir: str | Path, resume: bool, data_folders: Sequence[str | Path] = ()) -> Path:
    """Validate the run folder up front: creatable, not one of the ``data_folders``, and not
    holding checkpoints unless resuming."""
    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"run folder {run_dir} is a file")
    for folder in data_folders:
        if run_dir.absolute().resolve() == Path(folder).expanduser().absolute().resolve():
            raise OutputError(f"run folder {run_dir} is a --data folder; choose another folder for checkpoints")
    if not resume and run_dir.is_dir() and latest_checkpoint(run_dir) is not None:
        raise OutputError(f"run folder {run_dir} already holds checkpoints; pass --resume or choose another folder")
    if not run_dir.parent.is_dir():
        raise OutputError(f"cannot create run folder {run_dir}: {run_dir.parent} does not exist")
    return run_dir
