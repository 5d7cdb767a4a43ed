"""Cross-frame attention: the UNet decoder's self-attention looks at the reference frames.

Zero-shot video translation (Text2Video-Zero, Rerender-A-Video) keeps the generated person the same
from frame to frame by letting each frame's self-attention take its keys and values from reference
frames instead of from itself. Here the references are the **first frame** (it anchors the
identity) and the **previous key frame** (it follows the motion), on the self-attention layers
(``attn1``) of the UNet's decoder (``up_blocks.*``); every other layer keeps its processor.

No extra UNet passes: while a reference frame is generated, each processor records the hidden
states entering its layer, per denoising step (the batch holds both CFG halves, so each half later
attends to its own half). When a later frame is generated at the same step, the recorded states of
the references become that layer's keys and values (projected by the layer's own ``to_k``/``to_v``).

    state = CrossFrameState()
    install_cross_frame_attention(unet, state)
    state.begin_frame()            # first frame: "write" (plain self-attention, recorded)
    for step, t in ...: state.step = step; unet(...)
    state.end_frame()              # becomes the first and previous reference
    state.begin_frame()            # later frames: "read" (attend to first + previous; recorded too)

Memory: per reference frame, one ``(B, N, C)`` tensor per decoder layer per step; for SD-1.5 at
512x512 with CFG in fp16 that is about 27 MB per step (about 0.55 GB for 20 steps), held on the
UNet's device for the first frame, the previous key frame and the frame being generated.
"""

from __future__ import annotations

from typing import Any

_MODES = ("off", "write", "read")


class CrossFrameState:
    """Reference hidden states shared by all :class:`CrossFrameAttnProcessor` of one UNet.

    ``mode``: ``"off"`` (plain self-attention, nothing recorded), ``"write"`` (plain self-attention,
    hidden states recorded: a frame with no reference yet) or ``"read"`` (keys/values from the
    references, hidden states recorded too). ``step``: the denoising step being run (set by the
    pipeline before each UNet call).
    """

    def __init__(self) -> None:
        self.mode = "off"
        self.step = 0
        self._first: dict[tuple[str, int], Any] = {}
        self._previous: dict[tuple[str, int], Any] = {}
        self._pending: dict[tuple[str, int], Any] = {}

    @property
    def has_reference(self) -> bool:
        return bool(self._first)

    def begin_frame(self) -> None:
        """Start a frame: "write" while no reference exists, else "read"."""
        self.mode = "read" if self._first else "write"
        self.step = 0
        self._pending = {}

    def end_frame(self) -> None:
        """The frame just generated becomes the previous reference (and the first, if none)."""
        if self.mode == "off":
            return
        if not self._first:
            self._first = self._pending
        self._previous = self._pending
        self._pending = {}
        self.mode = "off"

    def forget_previous(self) -> None:
        """Use the first frame as the only reference (e.g. after resuming: the previous key
        frame's hidden states were not kept on disk)."""
        self._previous = self._first

    def reset(self) -> None:
        """Forget every reference (a new video)."""
        self.__init__()

    def record(self, name: str, hidden_states) -> None:
        self._pending[(name, self.step)] = hidden_states.detach()

    def references(self, name: str) -> list:
        """The recorded hidden states of the first and the previous frame for this layer and step
        (one of them when they are the same frame). Raises KeyError when a step has none."""
        key = (name, self.step)
        refs = [self._first[key]]
        if self._previous is not self._first:
            refs.append(self._previous[key])
        return refs


class CrossFrameAttnProcessor:
    """Attention processor for a self-attention layer: keys/values from the reference frames.

    Wraps the layer's default processor (``AttnProcessor2_0``: PyTorch SDPA; or the one given), so
    with mode ``"off"`` or ``"write"`` it computes exactly the default self-attention. In ``"read"``
    mode the layer's ``encoder_hidden_states`` become the references' recorded hidden states
    concatenated along the token axis: ``(B, N_ref * k, C)`` for ``hidden_states`` ``(B, N, C)``.
    """

    def __init__(self, state: CrossFrameState, name: str, base: Any = None) -> None:
        if base is None:
            from diffusers.models.attention_processor import AttnProcessor2_0

            base = AttnProcessor2_0()
        self.state = state
        self.name = name
        self.base = base

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        state = self.state
        if state.mode == "off" or encoder_hidden_states is not None:
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        context = None
        if state.mode == "read":
            import torch

            refs = state.references(self.name)
            context = refs[0] if len(refs) == 1 else torch.cat(refs, dim=1)
        state.record(self.name, hidden_states)
        return self.base(attn, hidden_states, context, attention_mask, temb, *args, **kwargs)


def cross_frame_layer_names(unet) -> list[str]:
    """Processor names of the decoder self-attention layers (``up_blocks.*.attn1.processor``)."""
    return [n for n in unet.attn_processors if n.startswith("up_blocks.") and ".attn1." in n]


def install_cross_frame_attention(unet, state: CrossFrameState) -> list[str]:
    """Install :class:`CrossFrameAttnProcessor` on the decoder self-attention layers of ``unet``
    with ``unet.set_attn_processor``; other layers keep their processors. Returns the layer names."""
    current = dict(unet.attn_processors)
    names = cross_frame_layer_names(unet)
    for name in names:
        base = current[name]
        if isinstance(base, CrossFrameAttnProcessor):
            base = base.base
        current[name] = CrossFrameAttnProcessor(state, name, base)
    unet.set_attn_processor(current)
    return names


def remove_cross_frame_attention(unet) -> None:
    """Put back the processors that :func:`install_cross_frame_attention` wrapped."""
    current = {
        name: (proc.base if isinstance(proc, CrossFrameAttnProcessor) else proc)
        for name, proc in unet.attn_processors.items()
    }
    unet.set_attn_processor(current)
