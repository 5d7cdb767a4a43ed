"""The landmark layout every stage shares: pose-format's MediaPipe Holistic layout.

One frame of landmarks is a row of a pose-format ``Pose`` body with one person:

=======================  =========  ======  ==============================================
component                rows       points  coordinates
=======================  =========  ======  ==============================================
``POSE_LANDMARKS``       0:33       33      x, y in image pixels; z = MediaPipe's z (scaled
                                            like normalised x: multiply by width for pixels)
``FACE_LANDMARKS``       33:511     478     the 468-point face mesh + 10 iris points
``LEFT_HAND_LANDMARKS``  511:532    21      the signer's own left hand
``RIGHT_HAND_LANDMARKS`` 532:553    21      the signer's own right hand
``POSE_WORLD_LANDMARKS`` 553:586    33      metres, origin between the hips
=======================  =========  ======  ==============================================

This is exactly what ``pose_format.utils.holistic.holistic_components("XYZC", 10)`` describes,
so files we write open in other pose-format tools and theirs open here.

Per frame: ``data`` is float32 ``(586, 3)``; ``confidence`` is float32 ``(586,)`` in [0, 1], and a
point whose confidence is 0 is *missing* (masked in the ``Pose``; never read as a zero coordinate).
"""

from __future__ import annotations

BODY = slice(0, 33)
FACE = slice(33, 511)
LEFT_HAND = slice(511, 532)
RIGHT_HAND = slice(532, 553)
BODY_WORLD = slice(553, 586)
NUM_POINTS = 586

N_BODY = 33
N_FACE = 478
N_HAND = 21

COMPONENTS: tuple[tuple[str, slice], ...] = (
    ("POSE_LANDMARKS", BODY),
    ("FACE_LANDMARKS", FACE),
    ("LEFT_HAND_LANDMARKS", LEFT_HAND),
    ("RIGHT_HAND_LANDMARKS", RIGHT_HAND),
    ("POSE_WORLD_LANDMARKS", BODY_WORLD),
)

# MediaPipe Pose indices used across the stages (image orientation: the signer's left shoulder is
# usually on the image's right).
NOSE = 0
LEFT_EYE_OUTER = 3
RIGHT_EYE_OUTER = 6
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_ELBOW, RIGHT_ELBOW = 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_HIP, RIGHT_HIP = 23, 24

# MediaPipe Hands indices.
WRIST = 0
THUMB = (1, 2, 3, 4)
INDEX = (5, 6, 7, 8)
MIDDLE = (9, 10, 11, 12)
RING = (13, 14, 15, 16)
PINKY = (17, 18, 19, 20)
FINGERS = (THUMB, INDEX, MIDDLE, RING, PINKY)
