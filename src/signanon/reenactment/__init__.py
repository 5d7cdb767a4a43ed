"""Facial-expression enhancement: re-enact a face with another face's motion.

Sub-packages and modules:

* :mod:`signanon.reenactment.animator` -- the one face-animator interface (:class:`FaceAnimator`:
  prepare a source face, then animate it per driving frame) and its one loader,
  :func:`load_face_animator` (None: the landmark warp; a checkpoint path: TPSMM).
* :mod:`signanon.reenactment.reenact` -- the ``reenact`` job (a source picture driven by a video).
* :mod:`signanon.reenactment.tpsmm` -- the Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022):
  the networks, loading of the published ``vox.pth.tar`` and :class:`TPSMMAnimator` (needs the
  ``diffusion`` extra: ``pip install -e ".[diffusion]"``).
* :mod:`signanon.reenactment.training` -- fine-tuning TPSMM on mixed face-crop clips.
* :mod:`signanon.reenactment.train_cli` -- the ``extract-faces`` and ``train-face`` commands.

Nothing heavy is imported here, so the command line can import this package cheaply.
"""
