"""What reading one DICOM object may cost in memory, decided in one place.

A DICOM header declares how large its pixels are once decoded, and a deflated or compressed file
can be tiny on disk: an outside audit (2026-12-03) sent a 190 kB JPEG-LS file declaring 500 frames
of 2048 x 2048 (4 GB decoded) and a 3 MB Deflated Explicit VR file inflating to 3 GiB, each once
by STOW-RS and C-STORE, and the server went past 4 GB and was killed. Every whole decode or inflate
of an input now checks first:

* :func:`check_decoded_size`: Rows x Columns x frames x samples x bytes per sample at most
  :data:`MAX_DECODED_BYTES` (ingest then stores the object as it is, a passthrough with the reason;
  a request that needs it decoded gets a clear refusal).
* :func:`inflate_dataset`: a Deflated Explicit VR Little Endian dataset inflates to at most
  :data:`MAX_DECODED_BYTES` + :data:`HEADER_ALLOWANCE`, and past :data:`DEFLATE_FREE` to at most
  :data:`DEFLATE_RATIO_MAX` times its deflated size, refused in the chunk that passes the limit. It
  is the one place a deflated dataset is inflated (pydicom's reader inflates it whole, even for the
  header, and ingest used to call it eight times). The ratio bounds what one small upload may cost: a
  1 MB deflated C-STORE inflating to 1 GB (under the first limit) took a server to 4.6 GB until
  2026-12-05 (a re-audit).
* :func:`check_file_size`: a file or ZIP member read whole into memory (ingest reads each whole) is
  at most :data:`MAX_DECODED_BYTES` + :data:`HEADER_ALLOWANCE`; a ZIP member by the size its
  archive declares, before inflating.

``MEDCODEC_MAX_DECODED_MB`` sets the limit (default 1024: a 1000-frame 512 x 512 enhanced CT is
500 MB; mammography and whole-slide images, larger, are not coded lossy anyway).
"""

from __future__ import annotations

import os
import zlib
from typing import Any

from ..errors import DicomError, ImageTooLargeError

__all__ = [
    "MAX_DECODED_BYTES",
    "HEADER_ALLOWANCE",
    "check_decoded_size",
    "check_dataset_decoded_size",
    "check_file_size",
    "decoded_size",
    "deflated_dataset_offset",
    "inflate_dataset",
]

_MB = 1 << 20


def _from_env() -> int:
    try:
        mb = int(os.environ.get("MEDCODEC_MAX_DECODED_MB", "1024"))
    except ValueError:
        mb = 1024
    return max(1, mb) * _MB


#: Most bytes of decoded pixels one object may declare.
MAX_DECODED_BYTES = _from_env()
#: What a header may add to its pixels (elements, overlays, private data) in a deflated dataset
#: or a file read whole.
HEADER_ALLOWANCE = 256 * _MB

DEFLATED = "1.2.840.10008.1.2.1.99"
#: A deflated dataset may inflate to this much whatever its ratio (a blank 512 x 512 x 100 series deflates
#: 1000:1 and is real)...
DEFLATE_FREE = 64 * _MB
#: ... and past it to at most this many times its deflated size: the pixel data of 25 images of
#: ../shared/data (CT, MR, CR, DX, NM, US) deflates 1.5-7.8:1 (a palette ultrasound 17.5:1; zlib's
#: default level, 2026-12-05), a run of zeros 1000:1 (what a deflate bomb is).
DEFLATE_RATIO_MAX = 200


def _mb(n: int) -> str:
    return f"{n / _MB:,.0f} MB"


def decoded_size(rows: Any, columns: Any, frames: Any, samples: Any, bits_allocated: Any) -> int:
    """Bytes of decoded pixels as a header declares them (0 when a value is missing or not positive)."""
    try:
        r, c, f, s, b = (int(v) if v is not None else 0 for v in (rows, columns, frames or 1, samples or 1,
                                                                    bits_allocated))  # fmt: skip
    except (TypeError, ValueError, OverflowError):
        return 0
    if min(r, c, f, s, b) <= 0:
        return 0
    return r * c * f * s * ((b + 7) // 8)


def check_decoded_size(size: int, *, path: object = None) -> None:
    """Raise :class:`ImageTooLargeError` when ``size`` bytes of decoded pixels exceed the limit."""
    limit = MAX_DECODED_BYTES
    if size > limit:
        raise ImageTooLargeError(
            f"its pixels would take {_mb(size)} decoded, over the {_mb(limit)} one object may "
            "(MEDCODEC_MAX_DECODED_MB): not decoded",
            path=path,
        )


def check_dataset_decoded_size(ds: Any, *, path: object = None) -> None:
    """:func:`check_decoded_size` of what a pydicom dataset's Image Pixel attributes declare."""
    size = decoded_size(ds.get("Rows"), ds.get("Columns"), ds.get("NumberOfFrames"), ds.get("SamplesPerPixel"),
                        ds.get("BitsAllocated"))  # fmt: skip
    check_decoded_size(size, path=path)


def check_file_size(size: int, *, path: object = None, what: str = "file") -> None:
    """Raise :class:`ImageTooLargeError` when a ``what`` of ``size`` bytes is over the limit."""
    limit = MAX_DECODED_BYTES + HEADER_ALLOWANCE
    if size > limit:
        raise ImageTooLargeError(
            f"a {what} of {_mb(size)}, over the {_mb(limit)} read into memory at once (MEDCODEC_MAX_DECODED_MB): "
            "not read",
            path=path,
        )


def deflated_dataset_offset(head: bytes) -> int | None:
    """Where the deflated dataset of a PS3.10 file starts when its file meta (in ``head``, the
    file's first bytes: 4 kB are plenty) names Deflated Explicit VR Little Endian; else None."""
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        return None
    end = 144 + int.from_bytes(head[140:144], "little")
    return end if DEFLATED.encode() in head[132:end] else None


def inflate_dataset(data: bytes, *, path: object = None) -> bytes | None:
    """The inflated dataset of a Deflated Explicit VR Little Endian PS3.10 file (by its file meta), or
    None for any other file. Inflated once, in chunks, and refused as soon as it passes the limit.

    Raises
    ------
    ImageTooLargeError
        It would inflate past :data:`MAX_DECODED_BYTES` + :data:`HEADER_ALLOWANCE`, or past
        :data:`DEFLATE_FREE` to more than :data:`DEFLATE_RATIO_MAX` times its deflated size.
    DicomError
        The deflate stream is damaged, or ends before its last block (a truncated copy).
    """
    end = deflated_dataset_offset(data)
    if end is None:
        return None
    size = MAX_DECODED_BYTES + HEADER_ALLOWANCE
    ratio = max(DEFLATE_FREE, DEFLATE_RATIO_MAX * (len(data) - end))
    limit = min(size, ratio)
    why = "MEDCODEC_MAX_DECODED_MB" if limit == size else f"over {DEFLATE_RATIO_MAX}:1, a deflate bomb's ratio"
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    chunks, total, view = [], 0, memoryview(data)
    try:
        # fed 256 kB at a time: an unconsumed tail is a copy, of the whole rest if fed at once
        for at in range(end, len(data), 256 << 10):
            rest: bytes | memoryview = view[at : at + (256 << 10)]
            while rest and not inflater.eof:
                chunk = inflater.decompress(rest, 4 * _MB)
                total += len(chunk)
                if total > limit:
                    raise ImageTooLargeError(
                        f"a deflated dataset of {len(data) - end:,} bytes inflating past {_mb(limit)} ({why}): "
                        "not read",
                        path=path,
                    )
                chunks.append(chunk)
                rest = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error as exc:
        raise DicomError(f"damaged deflated dataset: {exc}", path=path) from exc
    if not inflater.eof:
        raise DicomError("damaged deflated dataset: its deflate stream ends early (a truncated copy)", path=path)
    out = b"".join(chunks)
    del chunks
    return out
