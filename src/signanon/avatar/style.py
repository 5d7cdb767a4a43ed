"""How the synthetic signer looks: one frozen dataclass shared by every drawing function.

Colours are RGB tuples of ints in [0, 255]. The defaults follow sign-language filming practice:
plain dark clothing and a plain background, so that hands and face stand out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .canonical import FACE_SHAPES, CanonicalFace, load_canonical_face
from .hands import LOOK, HandLook

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class AvatarStyle:
    background: RGB = (196, 208, 218)
    skin: RGB = (224, 172, 138)
    # near-black: MediaPipe finds more of the drawn hands against it than against the dark blue
    # (38, 44, 58) it was: on the three test clips 129 of 135 source hands, was 121 (with the look
    # auto chose on each); on four benchmark clips high-contrast, which had it, found the most. On
    # 9 whole benchmark clips with hands: 534 of 559, 535 before (no net change; the worst clip,
    # a zoomed webcam signer, 16 -> 18 of 21)
    shirt: RGB = (20, 20, 24)
    hair: RGB = (140, 60, 30)  # auburn: dlib's nearest real faces are further than with dark hair
    lips: RGB = (178, 92, 88)
    iris: RGB = (72, 92, 120)
    brows: RGB = (110, 50, 30)
    mouth_interior: RGB = (92, 30, 34)
    teeth: RGB = (236, 232, 222)
    # From the mouth at rest (the canonical face's inner-lip gap) up, the lips are drawn parted
    # this much more than the mesh (face units, in the middle of the mouth, none at the corners),
    # fading out as the mouth closes further to half of that gap, so pressed lips still close.
    # Without it a drawn gap up to ~0.05 inter-ocular distances read back as closed lips, and small
    # mouthing was lost: the 192x144 NGT clip, 8 copies of it and the DGS clip at a third
    # (diag_face_gain.py, guard off, gain/r of the read-back) missed r >= 0.6 / gain 0.7-1.4 on 7
    # of these 10 in this palette, 1 with it (7 -> 1 in light-skin too); the talking heads' mouths
    # read as before (gain 0.97-1.10, r 0.96-0.97). 0.02 when measured; 0.0175 on the narrower
    # mouth (canonical.MOUTH_WIDTH), whose openings read larger (at 0.54 wide and 0.02,
    # NGT's mouth gain went 1.06 -> 1.34 on the bench). Never negative.
    rest_parting: float = 0.0175
    supersample: int = 2  # draw at this many times the output size, then downscale (anti-aliasing)
    # A hand whose palm (wrist to knuckles, hands.hand_size) would be drawn over this many pixels
    # is drawn smaller, with the frame around it, and enlarged (AvatarRenderer.hand_drawing_scale):
    # MediaPipe finds large drawn hands less often (hand recall, DGS ZUG scaled to 1440x1080 0.82
    # -> 0.93 at 32 px, ASL HOUSE and ASL DIFFERENT at 960x720 0.71 -> 0.98 and 0.92 -> 0.97,
    # three reads). 18 and 24 read curled fingers further off, 40 lost
    # ASL HOUSE at 3x again (benchmarks/hands_issue11.txt, session 28). None: drawn at full size.
    max_palm_px: float | None = 32.0
    # On a frame drawn larger than the input (a small clip, ``min_output_side``), a hand whose palm
    # would be drawn under this many pixels at the input's size is drawn larger, with the frame
    # around it, and enlarged less (AvatarRenderer.hand_drawing_scale): enlarged 4-6x from a 10 px
    # palm the fingers are one soft blob. Three reads of whole runs: ASL HOUSE at 106x80 hand
    # recall 0.85 -> 0.93, ASL DIFFERENT at 106x80 17.7 -> 13.2 deg, DGS ZUG at 212x160 12.2 ->
    # 11.8 deg, NGT at 64x48 0.97 / 9.5 -> 0.99 / 8.2; at 32 ASL HOUSE at 106x80 fell to 0.82 and
    # NGT's and ASL HOUSE's angles rose by 1 deg (benchmarks/hands_issue11.txt, session 44).
    # None: the hands of a small clip are drawn at the input's size.
    min_palm_px: float | None = 24.0
    hands: HandLook = LOOK  # how the hands are drawn (hand_choice may fold curled fingers under)
    # A hand MediaPipe lost (no points: drawn relaxed at the body model's wrist) is drawn behind
    # the seen one, and not at all where its relaxed hand would overlap the seen hand (its box
    # grown by 0.3 palms): the arm ends behind that hand. Drawn, the relaxed flat hand crossed the
    # signer's real one in two-handed signs (ASL HOUSE's roof) and the read-back lost the real
    # one too (hand recall, 3 reads: ASL HOUSE's soft, zoomed and dark copies 0.88 / 0.86 / 0.89
    # -> 0.91 / 0.93 / 0.93; benchmarks/hands_issue11.txt, session 29). What a viewer sees for
    # those frames (a few at a time): the lost arm ends at its cuff, behind or beside the seen hand.
    lost_hand_behind: bool = True

    def __post_init__(self) -> None:
        if not self.rest_parting >= 0.0:
            raise ValueError(f"rest_parting must be >= 0 (face units), got {self.rest_parting!r}")
        if self.max_palm_px is not None and not self.max_palm_px >= 4.0:
            raise ValueError(f"max_palm_px must be at least 4 (pixels) or None, got {self.max_palm_px!r}")
        if self.min_palm_px is not None and not 1.0 <= self.min_palm_px <= (self.max_palm_px or math.inf):
            raise ValueError(f"min_palm_px must be from 1 to max_palm_px (pixels) or None, got {self.min_palm_px!r}")


PALETTES: dict[str, AvatarStyle] = {
    "default": AvatarStyle(),
    # dark-skin: lips darker than the skin by as much as the other palettes' (they were 0.75 of its
    # luminance, and MediaPipe read the mouth's width at half its movement: ASL DIFFERENT 0.60/0.49
    # (r/gain), with these lips 0.75/0.81); the darker lips alone brought this look within dlib's
    # 0.6 of a real face (0.588 from tests/data/faces/_two_people/obama_and_biden.jpg), the dark
    # brown hair and brows took it back out (0.630; 0.611 with the old black hair and lips)
    # Its mouth interior is darker than the others' by as much as its lips are (lips' luminance 2.4
    # times the interior's, as in the default): with the default interior, nearly the lips' colour,
    # the parted mouth at rest read the mouthing on 5 of the 10 clips above, with this one on 8
    # (1 without the parting).
    "dark-skin": AvatarStyle(skin=(141, 94, 66), hair=(70, 40, 28), brows=(40, 26, 20), lips=(100, 46, 44),
                             mouth_interior=(49, 16, 18)),
    "light-skin": AvatarStyle(skin=(240, 200, 172), hair=(150, 112, 62), brows=(120, 88, 52)),
    "high-contrast": AvatarStyle(background=(250, 250, 250)),
    # dark-skin's skin, lips and brows as they were before its lips were darkened and its hair
    # made brown, with blue-black hair: on a DGS clip downscaled to ~20 px between the eyes the
    # brown-haired dark-skin face came within the guard's limit on 71 of 171 frames (55 drawn
    # calmed, 16 blank; every look's 12 probes cost 4.9-5.3), in this look 5 faces (calmed, none
    # blank; its mouth width 0.88/1.27 r/gain, was 0.29/1.32). With dark-skin's old black hair
    # (28, 22, 20) it was 12, but 0.601 from a real face (the blue-black: 0.618). Last in the
    # order: auto draws it where no earlier look costs nothing. Its paler lips read a mouth more
    # weakly (ASL DIFFERENT's width 0.66/0.84, dark-skin 0.63/0.99; the DGS clip's opening r 0.45)
    # Its mouth reads small openings without the parting at rest (the 10 clips above: 8 in the
    # goal without it, 5 with 0.02, 7 with 0.01), so it has none.
    "dark-skin-black-hair": AvatarStyle(skin=(141, 94, 66), hair=(20, 20, 28), brows=(30, 22, 18), lips=(120, 62, 58),
                                        rest_parting=0.0),
}


# looks that palette/face shape "auto" never draws: dlib put them within its same-person distance
# 0.6 of a real face (dark-skin on the short face, in its old colours, black hair: 0.587 from a
# face of the repository's photo tests/data/faces/_two_people/obama_and_biden.jpg; every other
# look >= 0.6; dark-skin-black-hair, nearer to those colours, is not offered on it either).
# Asked for by name, they are drawn.
UNOFFERED_LOOKS: frozenset[tuple[str, str]] = frozenset({("dark-skin", "short"), ("dark-skin-black-hair", "short")})


@dataclass(frozen=True)
class Look:
    """One way the avatar may look: a palette's colours (``style``, named ``palette``) on a face
    shape (a name in :data:`~.canonical.FACE_SHAPES`)."""

    palette: str
    style: AvatarStyle
    shape: str = "average"

    @property
    def name(self) -> str:
        """``palette``, or ``palette/shape`` for a shape other than the average face."""
        return self.palette if self.shape == "average" else f"{self.palette}/{self.shape}"

    def canonical(self) -> CanonicalFace:
        """The canonical face in this look's shape."""
        return FACE_SHAPES[self.shape].apply(load_canonical_face())


def parse_colour(text: str) -> RGB:
    """``"#aabbcc"``, ``"aabbcc"`` or ``"r,g,b"`` -> an RGB tuple; ValueError on anything else."""
    s = text.strip()
    if "," in s:
        parts = [int(p) for p in s.split(",")]
        if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
            raise ValueError(f"colour {text!r}: expected three numbers 0-255 like 200,210,220")
        return (parts[0], parts[1], parts[2])
    s = s.lstrip("#")
    if len(s) != 6:
        raise ValueError(f"colour {text!r}: expected #rrggbb or r,g,b")
    try:
        return (int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))
    except ValueError:
        raise ValueError(f"colour {text!r}: expected #rrggbb or r,g,b") from None


def make_style(palette: str = "default", background: str | None = None) -> AvatarStyle:
    """The named palette, with the background colour replaced when one is given."""
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}; choose one of: {', '.join(PALETTES)}")
    style = PALETTES[palette]
    if background is not None:
        style = replace(style, background=parse_colour(background))
    return style
