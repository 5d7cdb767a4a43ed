"""The shared dlib recogniser (signanon.recognition): its models are loaded once per process, and the
finders built from them still read faces independently, on any thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from signanon.recognition import DlibConfig, DlibEmbedder, face_detector, viewer_config
from signanon.video import iter_frames, probe_video

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "asl_webcam.mp4"


def test_embedders_built_from_the_shared_models_read_the_same_faces_on_two_threads_at_once():
    """Every embedder shares the process's shape predictor and copies its detector; two of them
    reading the sample's frames at the same time, on two threads, find the same faces and the same
    embeddings as one embedder built alone reading them in turn (a detector shared between threads
    would mix the images it scans)."""
    frames = list(iter_frames(probe_video(SAMPLE)))[::5]
    alone = DlibEmbedder(viewer_config())
    expected = [[(f.box, f.embedding) for f in alone.faces(rgb)] for rgb in frames]
    assert sum(len(faces) > 0 for faces in expected) >= 3  # the blurred webcam face is found on some

    first = DlibEmbedder(viewer_config())
    pair = [first, first.twin()]
    assert pair[0]._finder._detector is not pair[1]._finder._detector
    assert pair[0]._finder._shape is pair[1]._finder._shape is alone._finder._shape

    def read(k: int) -> list:
        return [[(f.box, f.embedding) for f in pair[k].faces(rgb)] for rgb in frames]

    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(read, [0, 1]))
    for got in both:
        assert [[box for box, _ in faces] for faces in got] == [[box for box, _ in faces] for faces in expected]
        for faces, want in zip(got, expected):
            for (_, a), (_, b) in zip(faces, want):
                np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_copied_detector_finds_what_a_freshly_built_one_does():
    import dlib

    frames = list(iter_frames(probe_video(SAMPLE)))[::7]
    fresh, copied = dlib.get_frontal_face_detector(), face_detector()
    boxes = [[[(r.left(), r.top(), r.right(), r.bottom()) for r in d(rgb, 1)] for rgb in frames] for d in (fresh, copied)]
    assert boxes[0] == boxes[1] and sum(map(len, boxes[0])) >= 3
    assert DlibEmbedder(DlibConfig(alignment=5))._finder._shape is not DlibEmbedder(viewer_config())._finder._shape
