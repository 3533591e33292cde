"""The pure codec: stages from pixels to bytes and back. No file or network I/O here."""

from __future__ import annotations

from .container import MdcHeader
from .pipeline import decode, encode, encode_to, is_codestream, read_header

__all__ = ["encode", "encode_to", "decode", "read_header", "is_codestream", "MdcHeader"]
