"""signanon: anonymize sign-language videos while keeping the signing.

Stages (each a subpackage): ``video`` (streaming I/O), ``landmarks`` (MediaPipe Holistic as
pose-format ``Pose``), ``avatar`` (the CPU-only synthetic signer), ``cli``.
"""

__version__ = "0.1.0"
