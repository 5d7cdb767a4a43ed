"""The centred cosine of `evaluate` (the paper's Table 1 units) and the population it is centred on.

The population file must be what its SOURCES.md says it is (people, counts, 128 numbers, each
person weighted equally), and centring must separate people on real photos: same person high,
different people near 0, where dlib's raw cosine puts strangers at 0.7-0.9.
"""

from __future__ import annotations

import itertools
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from signanon.evaluation.identity import (
    POPULATION_FILE, DlibEmbedder, centred_cosine, cosine_similarity, load_population,
)  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
FACES = REPO / "tests" / "data" / "faces"
SOURCES = POPULATION_FILE.parent / "SOURCES.md"
BUILDER = REPO / "tools" / "build_face_population.py"


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder()


@pytest.fixture(scope="module")
def builder() -> dict:
    """The build script's functions (it is a tool, not a package module)."""
    return runpy.run_path(str(BUILDER))


@pytest.fixture(scope="module")
def photo_vectors(embedder, builder) -> dict[str, np.ndarray]:
    """person -> (N, 128) dlib embeddings of the repository's test photos (5 people, 2 each)."""
    return {p.name: p.embeddings for p in builder["photo_people"](FACES, embedder)}


def _pairs(vectors: dict[str, np.ndarray], similarity) -> tuple[list[float], list[float]]:
    """(same-person, different-person) similarities over every pair of photos."""
    flat = [(name, v) for name, vs in vectors.items() for v in vs]
    same, different = [], []
    for (na, a), (nb, b) in itertools.combinations(flat, 2):
        (same if na == nb else different).append(similarity(a, b))
    return same, different


def test_population_file_matches_its_provenance():
    pop = load_population()
    text = SOURCES.read_text()
    with np.load(POPULATION_FILE) as z:
        mean, people, counts = z["mean"], z["people"].tolist(), z["people_embeddings"]
        group_means, group_people = z["group_means"], z["group_people"]
    assert mean.shape == (128,) and np.isfinite(mean).all()
    # the table of SOURCES.md lists exactly the people in the file, with their embedding counts
    table = dict(re.findall(r"^\| (\w+) \| \w+ \| (\d+) \|$", text, re.M))
    assert table == {name: str(n) for name, n in zip(people, counts)}
    assert f"**{len(people)} people**" in text and f"{int(counts.sum())} embeddings in all" in text
    assert pop.people == len(people) == int(group_people.sum()) and pop.embeddings == int(counts.sum())
    # each person weighs the same: the mean is the people-weighted mean of the group means
    assert np.allclose(mean, (group_people[:, None] * group_means).sum(0) / group_people.sum(), atol=1e-9)
    # a dlib face embedding has norm about 1-1.5 and components of a few tenths; not a stray array
    assert 0.8 < np.linalg.norm(mean) < 2.0 and np.abs(mean).max() < 0.5
    assert "tools/build_face_population.py" in text


def test_population_photo_group_is_these_five_people(photo_vectors):
    """The photos group of the file is the mean of the five people of tests/data/faces (other
    photos of them in ../shared, so close, not equal), and far from the other groups."""
    with np.load(POPULATION_FILE) as z:
        groups = dict(zip(z["groups"].tolist(), z["group_means"]))
    assert sorted(photo_vectors) == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    ours = np.mean([v.mean(0) for v in photo_vectors.values()], axis=0)
    gaps = {g: float(np.linalg.norm(ours - m)) for g, m in groups.items()}
    assert min(gaps, key=gaps.get) == "photos"
    assert gaps["photos"] < 0.1 < min(v for g, v in gaps.items() if g != "photos")


def test_centred_cosine_separates_people_on_the_paper_scale(photo_vectors):
    mean = load_population().mean
    same_c, diff_c = _pairs(photo_vectors, lambda a, b: centred_cosine(a, b, mean))
    same_r, diff_r = _pairs(photo_vectors, cosine_similarity)
    assert min(diff_r) > 0.7  # raw: strangers look alike to the cosine
    assert np.mean(same_c) > 0.65 and min(same_c) > 0.5  # the paper's same signer: 0.77-0.89
    assert abs(np.mean(diff_c)) < 0.2  # unrelated faces near 0
    assert np.mean(same_c) - np.mean(diff_c) > 0.5
    assert np.mean(same_c) - np.mean(diff_c) > 3 * (np.mean(same_r) - np.mean(diff_r))
