"""Named groups of landmark indices, defined once for every stage.

Index spaces
------------
* **Face mesh** (MediaPipe FaceMesh with irises): indices 0..477 *within the face part*, i.e. row
  ``layout.FACE.start + i`` of the shared ``(586, 3)`` frame array. 0..467 are the mesh, 468..477
  the irises (present only when the estimator refined the face).
* **Hand** (MediaPipe Hands): indices 0..20 within one hand part (``layout.LEFT_HAND`` or
  ``layout.RIGHT_HAND``); the named points (``WRIST``, ``THUMB`` ...) live in :mod:`.layout`.
* **Body** (MediaPipe Pose): indices 0..32 within ``layout.BODY`` (= rows 0..32); the named points
  (``LEFT_SHOULDER`` ...) live in :mod:`.layout`.

Left and right
--------------
Everywhere in signanon, ``LEFT``/``_L`` and ``RIGHT``/``_R`` mean the **signer's own** left and
right, as in MediaPipe's and pose-format's component and point names (``LEFT_HAND_LANDMARKS`` is the
signer's left hand, Pose ``LEFT_SHOULDER`` their left shoulder). On a frontal, unmirrored camera the
signer's right side appears on the **image left**: ``EYE_OUTER_R`` (33) has the smaller x.

Ordered groups say their order in a comment; every group is a tuple of ints (immutable).
Bones are ``(parent, child)`` pairs. ``HAND_BONES`` and ``BODY_BONES`` are pose-format's limbs
(``pose_format.utils.holistic``), in a fixed order; ``tests/test_landmarks.py`` checks that.
"""

from __future__ import annotations

from . import layout

# --- face mesh: points ----------------------------------------------------------------------------
NOSE_BRIDGE = 168  # between the eyes: the face's origin in the avatar and the retargeter's anchor
FOREHEAD, CHIN = 10, 152  # top and bottom of the face's midline
EYE_OUTER_R, EYE_INNER_R = 33, 133  # the signer's right eye (image left on a frontal face)
EYE_OUTER_L, EYE_INNER_L = 263, 362  # the signer's left eye
EYE_OUTER = (EYE_OUTER_R, EYE_OUTER_L)  # 1 face unit apart on the canonical face
INNER_LIP_CENTRE = (13, 14)  # (upper, lower) inner-lip points on the midline
MOUTH_CORNERS = (61, 291)  # (right, left) outer mouth corners

# --- face mesh: eyes ------------------------------------------------------------------------------
IRIS_R = (468, 469, 470, 471, 472)  # centre first, then the rim
IRIS_L = (473, 474, 475, 476, 477)
IRIS_CENTRES = (IRIS_R[0], IRIS_L[0])  # (right, left)
# eyelid contours: upper and lower lids as point pairs, from the outer to the inner corner
LID_UPPER_R = (246, 161, 160, 159, 158, 157, 173)
LID_LOWER_R = (7, 163, 144, 145, 153, 154, 155)
LID_UPPER_L = (466, 388, 387, 386, 385, 384, 398)
LID_LOWER_L = (249, 390, 373, 374, 380, 381, 382)
LID_CENTRE_R = (LID_UPPER_R[3], LID_LOWER_R[3])  # (upper, lower) mid-lid points: 159, 145
LID_CENTRE_L = (LID_UPPER_L[3], LID_LOWER_L[3])  # 386, 374

# --- face mesh: brows (upper and lower edge, from the outer end to the inner end) ----------------
BROW_UPPER_R = (70, 63, 105, 66, 107)
BROW_LOWER_R = (46, 53, 52, 65, 55)
BROW_UPPER_L = (300, 293, 334, 296, 336)
BROW_UPPER = BROW_UPPER_R + BROW_UPPER_L  # both upper brows
BROW_LOWER_L = (276, 283, 282, 295, 285)

# --- face mesh: mouth (from the right mouth corner, 61 / 78, to the left one, 291 / 308) ---------
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# --- face mesh: nose ------------------------------------------------------------------------------
NOSE_BASE = (64, 98, 97, 2, 326, 327, 294)  # right wing to left wing along the base
NOSE_LINE = (168, 6, 197, 195, 5, 4, 1, 19, 94)  # bridge to tip to the point above the lip
NOSTRILS = ((79, 20), (309, 250))  # (right, left); each (nostril point, point below it)

# --- face mesh: outline, cheeks, stable points ----------------------------------------------------
# face outline (the mesh's silhouette on a frontal face), clockwise in the image from the forehead
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# cheeks, nasolabial folds and chin (right/left pairs, then the chin midline)
CHEEKS = (50, 280, 101, 330, 205, 425, 207, 427, 187, 411, 192, 416, 212, 432, 202, 422, 18, 200, 199)
# points that move little with expression: forehead, temples, nose bridge, cheekbones, eye corners
STABLE = (
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4,
    109, 338, 67, 297, 103, 332, 54, 284, 108, 337, 69, 299, 104, 333,
    21, 251, 162, 389, 127, 356, 234, 454, 93, 323,
    33, 133, 362, 263, 243, 463, 226, 446,
    116, 345, 117, 346, 118, 347, 123, 352, 50, 280, 101, 330, 36, 266,
    122, 351, 188, 412, 114, 343, 196, 419, 174, 399,
)  # fmt: skip
# the upper face outline (image left to right) and the forehead row below it (the avatar's fringe)
FOREHEAD_TOP = (162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389)
FOREHEAD_ROW = (139, 71, 68, 104, 69, 108, 151, 337, 299, 333, 298, 301, 368)

# --- hands ----------------------------------------------------------------------------------------
FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
FINGER_CHAINS = layout.FINGERS  # per finger, its 4 points from the base to the tip (no wrist)
FINGERTIPS = tuple(chain[-1] for chain in FINGER_CHAINS)  # (4, 8, 12, 16, 20)
# (parent, child): wrist to each finger base, along each finger, and across the knuckles
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip
# (parent, joint, child): the angle at `joint` between the bone in from `parent` and the bone out
# to `child`; per finger from the base joint to the last (thumb CMC, MCP, IP; others MCP, PIP, DIP)
FLEXION_JOINTS = tuple(
    (chain_with_wrist[k], chain_with_wrist[k + 1], chain_with_wrist[k + 2])
    for chain_with_wrist in ((layout.WRIST, *chain) for chain in FINGER_CHAINS)
    for k in range(3)
)

# --- body (MediaPipe Pose) ------------------------------------------------------------------------
# (parent, child): face, torso, arms, hands, legs; pose-format's POSE_LANDMARKS limbs
BODY_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 23), (12, 24), (23, 24),
    (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 17), (15, 19), (15, 21), (17, 19), (16, 18), (16, 20), (16, 22), (18, 20),
    (23, 25), (25, 27), (27, 29), (27, 31), (29, 31), (24, 26), (26, 28), (28, 30), (28, 32), (30, 32),
)  # fmt: skip
# the upper-body skeleton that signing uses: shoulders, arms, hips (a subset of BODY_BONES)
TORSO_ARM_BONES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24))
BODY_FACE_POINTS = tuple(range(0, 11))  # Pose points on the head: nose, eyes, ears, mouth
# Pose points of each hand (pinky, index, thumb), (left, right), and the Hands points they match
BODY_HAND_POINTS = ((17, 19, 21), (18, 20, 22))
HAND_POINTS_IN_BODY = (17, 5, 2)
