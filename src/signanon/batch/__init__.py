"""Corpus anonymization (``signanon batch``): a folder or CSV manifest of clips into a mirrored
output tree, resumable, in parallel processes or on Ray, with a per-clip report, a privacy gate
and a corpus gallery attack. :func:`~.runner.run_corpus` is the library entry point; nothing
heavy (Ray, MediaPipe, dlib) is imported until it runs.
"""
