"""The corpus gallery attack: can a face recogniser pick each output's signer out of the corpus?

Every anonymized output's faces (the probe) are matched against the faces of every original clip
of the corpus (the gallery), with the recogniser of the evaluation (dlib by default, see
:mod:`signanon.evaluation.identity`). A probe's distance to a clip is the mean, over its faces, of
the distance to that clip's nearest face; to an identity (a signer, or a clip when the corpus names
no signers) the smallest over the identity's clips. The true identity's rank among all identities
(1 = the attacker's first guess) is reported per clip; ``top1_rate`` and ``mean_rank`` are set
beside chance (``1/n`` and ``(n+1)/2`` for ``n`` identities). The true clip's own original is in
the gallery: the strongest position an attacker can have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FaceSet:
    """One clip's faces: ``original`` float ``(N, D)`` and ``anonymized`` ``(M, D)`` embeddings of
    the frames where a face was found; ``metric``: the recogniser's distance ("euclidean"/"cosine")."""

    relative: str
    identity: str
    original: np.ndarray
    anonymized: np.ndarray
    metric: str = "euclidean"


def load_faces(path: Path, relative: str, identity: str) -> FaceSet:
    """A clip's faces as written by the batch worker (``faces.npz``)."""
    with np.load(path) as data:
        return FaceSet(relative, identity, data["original"], data["anonymized"], str(data["metric"]))


def distances(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` distances between two sets of embeddings, in the recogniser's metric
    (the same values as :func:`signanon.evaluation.identity.native_distance`, all pairs at once)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if metric == "euclidean":
        return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    if metric == "cosine":
        na = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
        nb = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
        return 1.0 - na @ nb.T
    raise ValueError(f"unknown metric {metric!r}")


def identity_distances(probe: FaceSet, gallery: list[FaceSet]) -> dict[str, float]:
    """The probe's distance to every identity of the gallery (see the module doc)."""
    out: dict[str, float] = {}
    for clip in gallery:
        if len(clip.original) == 0:
            continue
        d = float(distances(probe.metric, probe.anonymized, clip.original).min(axis=1).mean())
        out[clip.identity] = min(d, out.get(clip.identity, np.inf))
    return out


def rank_of(truth: str, scores: dict[str, float]) -> int:
    """1 + the number of identities strictly nearer than the true one."""
    return 1 + sum(1 for name, d in scores.items() if name != truth and d < scores[truth])


def attack(clips: list[FaceSet], *, by_signer: bool) -> dict:
    """The gallery attack over a corpus; ``by_signer``: identities are signers (else clips)."""
    identities = sorted({c.identity for c in clips if len(c.original)})
    n = len(identities)
    per_clip, unjudged = [], []
    for probe in clips:
        if len(probe.anonymized) == 0 or probe.identity not in identities:
            unjudged.append(probe.relative)
            continue
        scores = identity_distances(probe, clips)
        rank = rank_of(probe.identity, scores)
        per_clip.append({"input": probe.relative, "rank": rank, "top1": rank == 1,
                         "distance_true": scores[probe.identity]})  # fmt: skip
    ranks = np.array([p["rank"] for p in per_clip], np.float64)
    return {
        "identities": n,
        "identity_unit": "signer" if by_signer else "clip",
        "probes": len(per_clip),
        "probes_without_face": unjudged,
        "top1": int(sum(p["top1"] for p in per_clip)),
        "top1_rate": float(np.mean([p["top1"] for p in per_clip])) if per_clip else None,
        "chance_top1_rate": 1.0 / n if n else None,
        "mean_rank": float(ranks.mean()) if len(ranks) else None,
        "chance_mean_rank": (n + 1) / 2 if n else None,
        "per_clip": per_clip,
    }
