"""A hand rendered as a solid, for ``diag_hand_variants.py solid`` (an experiment, not the product).

Spheres along each finger bone (tapered as :class:`signanon.avatar.hands.HandLook`'s widths), a
slab palm (the palm polygon's best-fit plane, its border rounded by spheres), the nearest surface
kept per canvas pixel, Lambert-shaded, with a dark line where one part covers another that is not
its neighbour and round the silhouette. Read back on asl_webcam, asl_house and dgs_zug it read worse
than the 2-D drawing (benchmarks/hands_issue11.txt, session 32), so the product does not use it.
"""

from __future__ import annotations

import cv2
import numpy as np

from signanon.landmarks import layout
from signanon.avatar.hands import LOOK, HandLook, hand_size


def _bone_spheres(a: np.ndarray, b: np.ndarray, ra: float, rb: float, step: float) -> np.ndarray:
    """(N, 4) spheres (x, y, z, r) along a tapered bone from ``a`` to ``b``."""
    n = max(2, int(np.ceil(np.linalg.norm(b - a) / max(step, 1e-6))) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.concatenate([a + (b - a) * t, ra + (rb - ra) * t], axis=1)


def palm_outline(h: np.ndarray, size: float) -> np.ndarray:
    """(8, 3) palm polygon in 3-D: the heel's two sides, the thumb's base, the four knuckles and
    the little-finger edge."""
    wrist = h[0]
    across = h[5] - h[17]
    across = across / (np.linalg.norm(across) + 1e-9)
    up = (h[9] - wrist) * 0.08
    return np.array([
        wrist - across * 0.2 * size + up,
        wrist + across * 0.18 * size + up,
        0.55 * h[1] + 0.45 * h[2],
        h[5], h[9], h[13], h[17],
        0.5 * (h[17] + wrist) - across * 0.05 * size,
    ])


def _border_spheres(poly: np.ndarray, r: float, step: float) -> np.ndarray:
    out = [_bone_spheres(poly[i], poly[(i + 1) % len(poly)], r, r, step) for i in range(len(poly))]
    return np.concatenate(out)


def spheres(hand: np.ndarray, size: float, look: HandLook, palm_k: float = 0.14) -> np.ndarray:
    """(N, 6) spheres (x, y, z, r, part, bone) of a hand (21, 3) in canvas px; part 0 palm, 1..5
    fingers; bone 0 palm, 1 + 4 * finger + i the finger's i-th bone."""
    palm_r = palm_k * size
    out = []
    ps = _border_spheres(palm_outline(hand, size), palm_r, palm_r * 0.25)
    ps = np.concatenate([ps, [np.append(0.55 * hand[0] + 0.45 * hand[2], palm_r * 1.3)]])
    out.append(np.c_[ps, np.zeros(len(ps)), np.zeros(len(ps))])
    for f in range(5):
        chain = list(layout.FINGERS[f])
        w = look.finger_width[f] * size / 2
        for i in range(len(chain) - 1):
            ra = w * look.taper[min(i, 2)]
            rb = w * look.taper[min(i + 1, 2)] if i + 1 < len(chain) - 1 else ra * 0.92
            s = _bone_spheres(hand[chain[i]], hand[chain[i + 1]], ra, rb, min(ra, rb) * 0.2)
            out.append(np.c_[s, np.full(len(s), f + 1), np.full(len(s), 1 + 4 * f + i)])
    return np.concatenate(out)


def _palm_slab(h: np.ndarray, size: float, sph: np.ndarray, x0: int, y0: int, xs: np.ndarray, ys: np.ndarray,
               zbuf: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray, bone: np.ndarray) -> None:
    """The palm's front face between its rounded border: a slab of the border spheres' radius about
    the palm polygon's best-fit plane. Written into the (H, W) buffers (depth, normal, bone id;
    pixel centres ``xs``/``ys`` in canvas px, the box's corner at ``x0``, ``y0``) where nearer."""
    poly = palm_outline(h, size)
    r = float(sph[sph[:, 5] == 0, 3].min())
    c = poly.mean(axis=0)
    _, _, vt = np.linalg.svd(poly - c)
    n = vt[2] / np.linalg.norm(vt[2])
    if n[2] > 0:
        n = -n  # facing the camera (z smaller = nearer)
    if abs(n[2]) < 0.2:
        return  # edge-on: the border is all there is to see
    inside = np.zeros(xs.shape, np.uint8)
    pts = np.round((poly[:, :2] - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(inside, [pts], 1, cv2.LINE_8, 4)
    # plane: n . (p - c) = 0 -> z = c_z - (n_x (x - c_x) + n_y (y - c_y)) / n_z; front face r nearer
    z = c[2] - (n[0] * (xs - c[0]) + n[1] * (ys - c[1])) / n[2] + r / n[2]
    win = (inside > 0) & (z < zbuf)
    zbuf[win] = z[win]
    nx[win], ny[win], nz[win] = n[0], n[1], n[2]
    bone[win] = 0


def draw_solid_hand(img: np.ndarray, hand: np.ndarray, side: int, skin, ss: int, look: HandLook = LOOK,
                    light=(-0.35, -0.5, -0.8), ambient: float = 0.45, diffuse: float = 0.65,
                    edge_dz: float = 0.03, edge_shade: float = 0.6) -> None:
    """Render one hand into ``img`` (RGB uint8 canvas, ``ss`` x output): spheres' front surfaces,
    nearest wins per pixel, Lambert shading, a dark line where depth jumps (one part over another)."""
    h = np.asarray(hand, np.float64) * ss
    size = hand_size(h)
    if size < 1.0:
        return
    sph = spheres(h, size, look)
    x0 = int(max(0, np.floor((sph[:, 0] - sph[:, 3]).min()) - 1))
    y0 = int(max(0, np.floor((sph[:, 1] - sph[:, 3]).min()) - 1))
    x1 = int(min(img.shape[1], np.ceil((sph[:, 0] + sph[:, 3]).max()) + 2))
    y1 = int(min(img.shape[0], np.ceil((sph[:, 1] + sph[:, 3]).max()) + 2))
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xs, ys = xs + 0.5, ys + 0.5
    H, W = xs.shape
    zbuf = np.full((H, W), np.inf, np.float32)
    nx = np.zeros((H, W), np.float32)
    ny = np.zeros((H, W), np.float32)
    nz = np.zeros((H, W), np.float32)
    bone = np.full((H, W), -1, np.int16)  # per pixel: the id of the nearest sphere's bone (0 palm)
    for cx, cy, cz, r, _, p in sph:
        bx0, by0 = max(0, int(cx - r - x0)), max(0, int(cy - r - y0))
        bx1, by1 = min(W, int(cx + r - x0) + 2), min(H, int(cy + r - y0) + 2)
        if bx1 <= bx0 or by1 <= by0:
            continue
        dx = xs[by0:by1, bx0:bx1] - cx
        dy = ys[by0:by1, bx0:bx1] - cy
        d2 = r * r - dx * dx - dy * dy
        inside = d2 > 0
        dz = np.sqrt(np.where(inside, d2, 0.0))
        z = cz - dz
        zb = zbuf[by0:by1, bx0:bx1]
        win = inside & (z < zb)
        zb[win] = z[win]
        nx[by0:by1, bx0:bx1][win] = dx[win] / r
        ny[by0:by1, bx0:bx1][win] = dy[win] / r
        nz[by0:by1, bx0:bx1][win] = -dz[win] / r
        bone[by0:by1, bx0:bx1][win] = p
    _palm_slab(h, size, sph, x0, y0, xs, ys, zbuf, nx, ny, nz, bone)
    mask = np.isfinite(zbuf)
    if not mask.any():
        return
    L = np.asarray(light, np.float32)
    L = L / np.linalg.norm(L)
    lam = np.clip(nx * L[0] + ny * L[1] + nz * L[2], 0.0, 1.0)
    k = ambient + diffuse * lam
    # dark lines where a part covers another, not adjacent one (a finger over the palm or another
    # finger), and round the silhouette
    zf = np.where(mask, zbuf, np.float32(1e6))
    padz = np.pad(zf, 1, constant_values=1e6)
    padp = np.pad(bone, 1, constant_values=-1)
    jump = np.zeros((H, W), bool)
    thr = edge_dz * size
    for sy, sx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nz_ = padz[1 + sy : 1 + sy + H, 1 + sx : 1 + sx + W]
        np_ = padp[1 + sy : 1 + sy + H, 1 + sx : 1 + sx + W]
        same_finger = ((bone - 1) // 4 == (np_ - 1) // 4) & (bone > 0) & (np_ > 0)
        near_palm = ((bone == 0) & (np_ % 4 == 1)) | ((np_ == 0) & (bone % 4 == 1))  # a finger's first bone
        other = (np_ >= 0) & (np_ != bone) & ~(same_finger & (np.abs(bone - np_) == 1)) & ~near_palm
        jump |= other & ((zf - nz_) > thr)
        jump |= np_ < 0  # silhouette
    k = np.where(jump & mask, k * edge_shade, k)
    col = np.clip(np.asarray(skin, np.float32)[None, None, :] * k[:, :, None], 0, 255)
    region = img[y0:y1, x0:x1]
    region[mask] = col[mask].round().astype(np.uint8)
