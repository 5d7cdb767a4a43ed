"""CLIP tokenizers built offline: Stable Diffusion 1.5's from open_clip's bundled BPE vocabulary,
and a tiny one for tests.

SD-1.5 uses OpenAI CLIP ViT-L/14's byte-level BPE tokenizer (49408 tokens, 77 positions). Its
vocabulary is fully determined by the merge list that ships inside the ``open_clip_torch`` wheel
(``bpe_simple_vocab_16e6.txt.gz``): 256 byte symbols, the same 256 with the end-of-word marker
``</w>``, one token per merge (48894 merges) and the two special tokens. So a single-file checkpoint
can be used without ever reaching the Hub for its tokenizer.
"""

from __future__ import annotations

import gzip
from pathlib import Path

CLIP_BOS = "<|startoftext|>"
CLIP_EOS = "<|endoftext|>"
CLIP_MAX_LENGTH = 77
_CLIP_MERGES = 49152 - 256 - 2  # merges used by OpenAI CLIP (the file holds more)


def byte_symbols() -> list[str]:
    """The 256 base symbols of byte-level BPE, in CLIP's vocabulary order.

    Printable latin-1 bytes stand for themselves and come first (in byte order); the other bytes
    are stood for by code points 256, 257, ... and follow.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    others = [b for b in range(256) if b not in set(printable)]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def _vocab_from_merges(merges: list[str]) -> dict[str, int]:
    bytes_ = byte_symbols()
    tokens = bytes_ + [b + "</w>" for b in bytes_] + ["".join(m.split()) for m in merges] + [CLIP_BOS, CLIP_EOS]
    return {token: i for i, token in enumerate(tokens)}


def open_clip_bpe_path() -> Path:
    """Path of the BPE merge list bundled with open_clip_torch (raises ImportError without it)."""
    import open_clip

    return Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"


def sd15_tokenizer(bpe_path: str | Path | None = None):
    """The SD-1.5 (CLIP ViT-L/14) ``CLIPTokenizer``: 49408 tokens, max length 77, pad = eos."""
    from transformers import CLIPTokenizer

    path = Path(bpe_path) if bpe_path is not None else open_clip_bpe_path()
    lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : _CLIP_MERGES + 1]
    return CLIPTokenizer(
        vocab=_vocab_from_merges(merges),
        merges=[tuple(m.split()) for m in merges],
        model_max_length=CLIP_MAX_LENGTH,
    )


def tiny_tokenizer(max_length: int = CLIP_MAX_LENGTH):
    """A CLIP tokenizer with a toy vocabulary (bytes + a few merges, 525 tokens) for tests."""
    from transformers import CLIPTokenizer

    merges = ["t h", "a n", "i n", "e r", "o n", "th e</w>", "a n</w>", "m an</w>", "i s</w>", "in g</w>", "o r"]
    return CLIPTokenizer(
        vocab=_vocab_from_merges(merges), merges=[tuple(m.split()) for m in merges], model_max_length=max_length
    )
