"""Build the population mean that centres dlib's face embeddings (``evaluate``'s Table 1 scale).

dlib's ResNet embeddings all lie in one cone of the 128-d space, so their raw cosine is 0.7-0.9
even between strangers. Subtracting the mean embedding of a population of faces before the cosine
("centred cosine") puts unrelated faces near 0, the scale of the DiffSLVA paper's Table 1.

The population is every person in the shared public face material:

* photos: ``DATA/faces/<person>/*`` (one folder per person; folders starting with ``_`` skipped);
* clips: ``DATA/talking_face/*.mp4`` and ``DATA/video/*.mp4|*.gif``, one person per clip, up to
  ``--frames`` evenly spaced frames embedded;
* ``skimage.data.astronaut()`` when scikit-image imports (a public-domain NASA portrait).

Each person's embeddings are averaged first, and the population mean is the plain mean over people:
every person weighs the same, however many photos or frames they have. Each photo folder and each
clip is one person (they come from different sources); pairs that dlib would call one person
(distance <= 0.6) are printed, not merged. The embedder is signanon's
own :class:`~signanon.evaluation.identity.DlibEmbedder` with the alignment ``evaluate`` uses
(68 points, the read-back's).

Writes ``OUT`` (npz: ``mean`` float64 (128,), the source groups' means and person counts, the
people and their embedding counts) and prints one JSON line describing it. Rebuild the shipped file:

    python tools/build_face_population.py --data ../shared/data \\
        -o src/signanon/evaluation/assets/dlib_population_mean.npz
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
CLIP_PATTERNS = (("talking_face", "*.mp4"), ("video", "*.mp4"), ("video", "*.gif"))
SAME_PERSON = 0.6  # dlib's own threshold (Euclidean distance)


@dataclass(frozen=True)
class Person:
    """One person of the population: ``group`` (source), ``name``, embeddings float64 (N, 128)."""

    group: str
    name: str
    embeddings: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.embeddings.mean(axis=0)


def _largest_face(embedder, rgb: np.ndarray) -> np.ndarray | None:
    """The embedding (128,) of the largest face of an RGB uint8 image, None when none is found."""
    faces = embedder.faces(np.ascontiguousarray(rgb))
    return faces[0].embedding if faces else None


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def photo_people(folder: Path, embedder) -> list[Person]:
    """One Person per sub-folder of ``folder`` holding photos in which a face is found."""
    people = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")):
        photos = sorted(p for p in sub.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        vecs = [v for v in (_largest_face(embedder, _read_rgb(p)) for p in photos) if v is not None]
        if vecs:
            people.append(Person("photos", sub.name, np.stack(vecs)))
    return people


def clip_person(path: Path, group: str, embedder, frames: int) -> Person | None:
    """The person of one clip: up to ``frames`` evenly spaced frames with a face, embedded."""
    from signanon.video import iter_frames, probe_video

    info = probe_video(path)
    wanted = set(np.linspace(0, max(0, info.frame_count - 1), frames).round().astype(int).tolist())
    vecs = []
    for index, rgb in enumerate(itertools.islice(iter_frames(info), info.frame_count)):
        if index in wanted:
            vec = _largest_face(embedder, rgb)
            if vec is not None:
                vecs.append(vec)
    return Person(group, path.stem, np.stack(vecs)) if vecs else None


def astronaut_person(embedder) -> Person | None:
    """``skimage.data.astronaut()`` embedded, or None when scikit-image is not importable."""
    try:
        from skimage import data
    except ImportError:
        return None
    vec = _largest_face(embedder, data.astronaut())
    return None if vec is None else Person("skimage", "astronaut", vec[None])


def close_pairs(people: list[Person]) -> list[tuple[str, str, float]]:
    """Pairs of people whose mean embeddings dlib would call one person (distance <= SAME_PERSON).

    Reported, not merged: every clip and photo folder is a different person by its source, and
    dlib's threshold also matches some strangers (low-resolution, side-lit frames).
    """
    return [
        (a.name, b.name, round(float(np.linalg.norm(a.mean - b.mean)), 3))
        for a, b in itertools.combinations(people, 2)
        if np.linalg.norm(a.mean - b.mean) <= SAME_PERSON
    ]


def collect_people(data: Path, embedder, frames: int, small_embedder) -> list[Person]:
    """Every person of the shared material (see the module docstring), before merging."""
    people = photo_people(data / "faces", embedder) if (data / "faces").is_dir() else []
    for group, pattern in CLIP_PATTERNS:
        for path in sorted((data / group).glob(pattern)):
            person = clip_person(path, group, embedder, frames) or clip_person(path, group, small_embedder, frames)
            if person is not None:
                people.append(person)
    astronaut = astronaut_person(embedder)
    if astronaut is not None:
        people.append(astronaut)
    return people


def population_arrays(people: list[Person]) -> dict[str, np.ndarray]:
    """The npz content: the mean over people, per-group means and counts, people and counts."""
    from signanon.evaluation.identity import EVALUATE_ALIGNMENT

    means = np.stack([p.mean for p in people])
    groups = sorted({p.group for p in people})
    return {
        "mean": means.mean(axis=0),
        "people": np.array([p.name for p in people]),
        "people_groups": np.array([p.group for p in people]),
        "people_embeddings": np.array([len(p.embeddings) for p in people], np.int64),
        "groups": np.array(groups),
        "group_means": np.stack([means[[p.group == g for p in people]].mean(axis=0) for g in groups]),
        "group_people": np.array([sum(p.group == g for p in people) for g in groups], np.int64),
        "embedder": np.array(f"dlib-resnet (signanon DlibEmbedder: HOG, {EVALUATE_ALIGNMENT}-point alignment, jitter 0)"),
    }


def main(argv: list[str] | None = None) -> dict:
    from signanon.evaluation.identity import EVALUATE_ALIGNMENT, DlibConfig, DlibEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--frames", type=int, default=8, help="frames embedded per clip (evenly spaced)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the npz to write")
    args = parser.parse_args(argv)
    embedder = DlibEmbedder(DlibConfig(alignment=EVALUATE_ALIGNMENT))
    small = DlibEmbedder(DlibConfig(upsample=2, alignment=EVALUATE_ALIGNMENT))  # very small faces (192x144 clips)
    people = collect_people(args.data, embedder, args.frames, small)
    arrays = population_arrays(people)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, **arrays)
    summary = {
        "output": str(args.output),
        "people": len(people),
        "by_group": dict(zip(arrays["groups"].tolist(), arrays["group_people"].tolist())),
        "embeddings_per_person": dict(zip(arrays["people"].tolist(), arrays["people_embeddings"].tolist())),
        "close_pairs": close_pairs(people),
        "mean_norm": float(np.linalg.norm(arrays["mean"])),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
