"""The diffusion anonymizer (DiffSLVA): Stable Diffusion 1.5 + ControlNet (HED or Canny), zero-shot,
with Rerender-A-Video-style temporal consistency.

Nothing heavy is imported here: :mod:`signanon.diffusion.cli` is imported by the command line, and
torch/diffusers load only when a run starts. The pieces:

* :mod:`.weights` - :class:`DiffusionComponents` and :func:`load_components` (offline loading)
* :mod:`.attention` - :class:`CrossFrameAttnProcessor` and its shared :class:`CrossFrameState`
* :mod:`.pipeline` - :class:`VideoTranslationPipeline` (one frame through SDEdit + ControlNet + DDIM)
* :mod:`.runner` - :class:`DiffusionAnonymizer` / :class:`DiffusionConfig` (a whole video, with resume)
* :mod:`.face_enhance` - the face stage (:class:`FaceEnhanceConfig`, :class:`FaceEnhancer`,
  :class:`FaceStage`): DiffSLVA's facial-expression enhancement; :mod:`.ablation` - its
  original | without | with side-by-side video
* :mod:`.control`, :mod:`.fusion`, :mod:`.propagation` - control maps, temporal fusion and
  key-frame propagation (optical flow: :mod:`signanon.video.flow`)
"""

INSTALL_HINT = 'the diffusion method needs PyTorch and diffusers: pip install -e ".[diffusion]"'
