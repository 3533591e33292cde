"""External codec libraries: the one place medcodec calls them, one frame at a time.

Both users of other people's codecs go through this module: the evaluation peers
(:mod:`medcodec.evaluate.peers`, which add the rate knob's range and the adapter protocol) and
the lossy DICOM transfer syntaxes (:mod:`medcodec.dicom.lossy`, which add UIDs, method terms,
the series mapping and rate targets). What a library needs (argument names, sample layout,
codestream format, what its knob means, how to tell it is usable) is decided here only.

Verbs follow imagecodecs: ``<codec>_encode(frame, /, *, knob...) -> bytes`` and
``<codec>_decode(data, /) -> ndarray`` on one 2-D frame, plus ``probe_<codec>`` checks that an
installed build behaves as assumed. Which backends exist, their knobs and ranges, bit depths,
availability and versions are declared once, in :mod:`medcodec.registry` (``BACKENDS``).

=======  ==================  ============================================  ===================
codec    library             knob (``None``: lossless)                     samples it takes
=======  ==================  ============================================  ===================
jpeg2k   OpenJPEG            ``psnr_db``: fixed-quality target PSNR, peak  signed or unsigned,
                             ``2**bits_stored - 1`` (``tcp_distoratio``)   any depth (Ssiz)
htj2k    OpenJPH             ``step``: irreversible quantisation step, a   signed or unsigned,
                             fraction of the container's range (2**8 or    container depth
                             2**16, see :func:`container_bits`)            (8 or 16 bits)
jpegls   CharLS              ``near``: NEAR, the maximum absolute error    unsigned, container
                                                                           depth (8 or 16 bits)
jpegxl   libjxl              ``distance``: butteraugli distance            unsigned
jpeg8    libjpeg-turbo       ``quality`` 1-100, optimised Huffman tables;  unsigned, 8 or 12
                             lossy only                                    bits (SOF0 / SOF1)
zlib     zlib                ``level`` (DEFLATE effort), always lossless   raw little-endian
png      libpng              none: lossless, encode only (frame previews)  unsigned, 8 or 16
=======  ==================  ============================================  ===================

Codestreams: JPEG 2000 is written as a raw J2K codestream (``codecformat="J2K"``, SOC ... EOC,
no JP2 boxes): what DICOM fragments hold (PS3.5 §A.4.4) and what the evaluation measures. CharLS
starts JPEG-LS streams with a SPIFF header (APP8, ITU-T T.84 Annex F); ``jpegls_encode(...,
spiff=False)`` drops it (:func:`strip_spiff`), as DICOM fragments carry a plain SOI ... EOI stream.

Sign: codecs that take only unsigned samples get them through :func:`to_unsigned` /
:func:`from_unsigned` (add ``2**(bits_stored - 1)`` to signed data, and take it off again):
the one place that mapping lives. Frames are validated by :func:`check_frame`, whose range check
is :func:`medcodec.codec.levelshift.check_range`.
"""

from __future__ import annotations

import math
import zlib as _zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .codec.levelshift import check_range
from .errors import CodecError, InvalidInputError
from .spec import PixelSpec, storage_dtype

__all__ = [
    "COLOUR_PHOTOMETRIC",
    "COLOUR_LOSSLESS",
    "jpeg8_encode_colour",
    "colour_lossless_encode",
    "colour_lossless_decode",
    "j2k_uses_mct",
    "probe_jpeg2k",
    "probe_jpeg8",
    "check_frame",
    "to_storage",
    "unsigned_offset",
    "to_unsigned",
    "from_unsigned",
    "container_bits",
    "jpeg2k_encode",
    "jpeg2k_decode",
    "htj2k_encode",
    "htj2k_decode",
    "jpegls_encode",
    "jpegls_decode",
    "strip_spiff",
    "jpegxl_encode",
    "jpegxl_decode",
    "jpeg8_encode",
    "jpeg8_decode",
    "ljpeg_encode",
    "strip_jfif",
    "probe_ljpeg",
    "zlib_encode",
    "zlib_decode",
    "png_encode",
    "avif_encode",
    "avif_decode",
]


def _imagecodecs() -> Any:
    import imagecodecs

    return imagecodecs


# --------------------------------------------------------------------------- frames and samples


def check_frame(frame: NDArray[Any], spec: PixelSpec) -> NDArray[Any]:
    """Validate one 2-D integer frame against ``spec`` (values inside the bits_stored range).

    Raises
    ------
    InvalidInputError
        Not 2-D, not integer, or values outside ``spec``'s range
        (:func:`~medcodec.codec.levelshift.check_range`).
    """
    a = np.asarray(frame)
    if a.ndim != 2:
        raise InvalidInputError(f"expected one 2-D frame, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"expected integer pixels, got dtype {a.dtype}")
    if a.size:
        check_range(a, spec.bits_stored, spec.signed)
    return a


def to_storage(frame: NDArray[Any], spec: PixelSpec) -> NDArray[Any]:
    """The validated frame in the spec's storage dtype, C-contiguous (codecs that take the sign)."""
    return np.ascontiguousarray(check_frame(frame, spec).astype(storage_dtype(spec.bits_stored, spec.signed)))


def unsigned_offset(spec: PixelSpec) -> int:
    """What :func:`to_unsigned` adds: ``2**(bits_stored - 1)`` for signed data, else 0."""
    return (1 << (spec.bits_stored - 1)) if spec.signed else 0


def to_unsigned(frame: NDArray[Any], spec: PixelSpec) -> tuple[NDArray[Any], int]:
    """The frame as unsigned samples for codecs that take no signed input, and the offset added.

    Signed data get ``2**(bits_stored - 1)`` added (so -2048..2047 becomes 0..4095); unsigned data
    are returned unchanged (offset 0). The dtype is ``uint8`` for ``bits_stored <= 8``, else
    ``uint16``. Undo with :func:`from_unsigned`.

    >>> spec = PixelSpec(bits_stored=12, signed=True)
    >>> u, off = to_unsigned(np.array([[-2048, 2047]], dtype=np.int16), spec)
    >>> u.tolist(), u.dtype.name, off
    ([[0, 4095]], 'uint16', 2048)
    """
    a = check_frame(frame, spec)
    offset = unsigned_offset(spec)
    dtype = storage_dtype(spec.bits_stored, False)
    out = (a.astype(np.int32) + offset).astype(dtype)
    return np.ascontiguousarray(out), offset


def from_unsigned(decoded: NDArray[Any], spec: PixelSpec, offset: int) -> NDArray[Any]:
    """Inverse of :func:`to_unsigned`: subtract ``offset``, clip to the spec's range, and return
    the spec's storage dtype (decoders of wider containers can overshoot the ``bits_stored``
    range; a viewer would clip the same way)."""
    a = np.asarray(decoded).astype(np.int32) - int(offset)
    np.clip(a, spec.min_value, spec.max_value, out=a)
    return a.astype(storage_dtype(spec.bits_stored, spec.signed))


def container_bits(bits_stored: int) -> int:
    """Depth OpenJPH (HTJ2K) and CharLS (JPEG-LS) code a frame at: its container's, 8 or 16.

    Both take the depth from the array's dtype, so 12-bit samples in ``uint16`` are coded, and
    must be declared (PS3.5 §8.2), as 16-bit ones; HTJ2K's ``step`` is relative to ``2**16``.
    """
    return 8 if bits_stored <= 8 else 16


# --------------------------------------------------------------------------- JPEG 2000 (OpenJPEG)

#: imagecodecs ``codecformat``: a raw J2K codestream, not a JP2 file (DICOM PS3.5 §A.4.4).
J2K_CODESTREAM = "J2K"


def jpeg2k_encode(
    frame: NDArray[np.integer], /, *, bits_stored: int, psnr_db: float | None = None, numthreads: int = 1
) -> bytes:
    """JPEG 2000 Part 1 by OpenJPEG, as a raw J2K codestream.

    imagecodecs passes ``level`` to OpenJPEG's ``tcp_distoratio`` (fixed quality): the encoder
    truncates the code-blocks so the image reaches ``psnr_db``, computed with peak
    ``2**prec - 1``; ``prec`` is ``bits_stored`` (``bitspersample=``). ``psnr_db=None`` codes
    losslessly (reversible 5/3), else irreversible 9/7. Signed samples are coded as signed.
    """
    ic = _imagecodecs()
    a = np.ascontiguousarray(frame)
    if psnr_db is None:
        return bytes(ic.jpeg2k_encode(a, level=0, codecformat=J2K_CODESTREAM, bitspersample=bits_stored,
                                      reversible=True, numthreads=numthreads))  # fmt: skip
    return bytes(ic.jpeg2k_encode(a, level=float(psnr_db), codecformat=J2K_CODESTREAM, bitspersample=bits_stored,
                                  reversible=False, numthreads=numthreads))  # fmt: skip


def jpeg2k_decode(data: bytes, /, *, numthreads: int = 1) -> NDArray[np.integer]:
    """A J2K codestream (or JP2 file) back to its samples."""
    return np.asarray(_imagecodecs().jpeg2k_decode(data, numthreads=numthreads))


def probe_jpeg2k(ic: Any) -> str | None:
    """``level`` must mean "target PSNR" (it meant a rate in old imagecodecs): check on a ramp."""
    yy, xx = np.mgrid[:64, :64]
    ramp = ((xx * 61 + yy * 3 + (xx * yy) % 97) % 4096).astype(np.uint16)
    out = jpeg2k_decode(jpeg2k_encode(ramp, bits_stored=12, psnr_db=45.0))
    mse = float(np.mean((out.astype(np.float64) - ramp) ** 2))
    got = 10 * math.log10(4095.0**2 / mse) if mse else math.inf
    if not 42.0 <= got <= 60.0:
        return (
            f"imagecodecs {ic.__version__}: jpeg2k_encode(level=45) gave {got:.1f} dB; this version's "
            "level is not OpenJPEG's PSNR target (upgrade imagecodecs)"
        )
    return None


# --------------------------------------------------------------------------- HTJ2K (OpenJPH)


def htj2k_encode(frame: NDArray[np.integer], /, *, step: float | None = None) -> bytes:
    """High-throughput JPEG 2000 (Part 15) by OpenJPH.

    imagecodecs exposes no rate control for HTJ2K: ``step`` is OpenJPH's irreversible
    quantisation step (``set_irrev_quant``) as a fraction of the range of the array's container
    (``2**container_bits``: a step of ``s`` stored units is ``s / 2**16`` for ``uint16``/``int16``).
    ``step=None`` codes losslessly (reversible 5/3). Signed samples are coded as signed.
    """
    a = np.ascontiguousarray(frame)
    if step is None:
        return bytes(_imagecodecs().htj2k_encode(a, reversible=True))
    return bytes(_imagecodecs().htj2k_encode(a, level=float(step), reversible=False))


def htj2k_decode(data: bytes, /) -> NDArray[np.integer]:
    """An HTJ2K codestream back to its samples (in the container's dtype)."""
    return np.asarray(_imagecodecs().htj2k_decode(data))


# --------------------------------------------------------------------------- JPEG-LS (CharLS)


def jpegls_encode(frame: NDArray[np.integer], /, *, near: int = 0, spiff: bool = True) -> bytes:
    """JPEG-LS (ISO 14495-1) by CharLS: lossless (``near=0``) or near-lossless, ``|error| <= near``.

    Unsigned samples only (JPEG-LS has no sign: see :func:`to_unsigned`). ``spiff=False`` drops
    the SPIFF header CharLS writes (:func:`strip_spiff`), for DICOM fragments.
    """
    stream = bytes(_imagecodecs().jpegls_encode(np.ascontiguousarray(frame), level=int(near)))
    return stream if spiff else strip_spiff(stream)


def jpegls_encode_exact(frame: NDArray[np.integer], /, *, bits_stored: int) -> bytes | None:
    """Lossless JPEG-LS (NEAR=0) with precision P = ``bits_stored`` (pyjpegls, CharLS), so a DICOM
    file under .80 keeps its Bits Stored (PS3.5 §8.2.3); ``None`` when pyjpegls is not installed.

    Signed samples are coded as their ``bits_stored``-bit two's-complement patterns (as DICOM
    JPEG-LS encoders do; decoders sign-extend by Pixel Representation).
    """
    try:
        import jpeg_ls
    except ImportError:
        return None
    arr = np.asarray(frame)
    dtype = np.dtype("<u1") if bits_stored <= 8 else np.dtype("<u2")
    patterns = (arr.astype(np.int64) & ((1 << bits_stored) - 1)).astype(dtype)
    rows, cols = patterns.shape
    return bytes(jpeg_ls.encode_buffer(patterns.tobytes(), rows, cols, 1, int(bits_stored), lossy_error=0))


def jpegls_decode(data: bytes, /) -> NDArray[np.integer]:
    """A JPEG-LS stream (with or without SPIFF header) back to its samples."""
    return np.asarray(_imagecodecs().jpegls_decode(data))


def strip_spiff(stream: bytes) -> bytes:
    """Drop the SPIFF header and its end-of-directory entry (APP8 segments, ITU-T T.84 Annex F)
    CharLS writes after SOI: DICOM JPEG-LS fragments are a plain SOI ... EOI stream."""
    if stream[:2] != b"\xff\xd8":
        return stream
    pos = 2
    while stream[pos : pos + 2] == b"\xff\xe8" and pos + 4 <= len(stream):
        length = int.from_bytes(stream[pos + 2 : pos + 4], "big")
        payload = stream[pos + 4 : pos + 2 + length]
        if not (payload.startswith(b"SPIFF\x00") or payload[:4] == b"\x00\x00\x00\x01"):
            break
        pos += 2 + length
    return stream[:2] + stream[pos:]


# --------------------------------------------------------------------------- JPEG XL (libjxl)


def jpegxl_encode(
    frame: NDArray[np.integer], /, *, distance: float | None = None, effort: int | None = None, numthreads: int = 1
) -> bytes:
    """JPEG XL by libjxl: VarDCT at butteraugli ``distance`` (smaller = better), or lossless
    (modular) for ``distance=None``. Unsigned samples (see :func:`to_unsigned`), given without
    ``bitspersample``: on 12-bit CT that gave 1.8 dB more PSNR at 1 bpp than declaring 12 bits."""
    ic = _imagecodecs()
    if distance is None:
        return bytes(ic.jpegxl_encode(frame, lossless=True, effort=effort, numthreads=numthreads))
    return bytes(ic.jpegxl_encode(frame, distance=distance, effort=effort, numthreads=numthreads))


def avif_encode(
    frame: NDArray[np.integer], /, *, quality: int | None = None, speed: int = 6, numthreads: int = 1
) -> bytes:
    """AVIF (AV1 intra) by libavif with libaom: monochrome (yuv400) at 8 or 12 bits.

    ``quality`` 0-100 (libavif's scale), or ``None`` for lossless. Unsigned samples of up to 12
    bits (see :func:`to_unsigned`; libavif takes no 13-16-bit data). A 2-D array is coded
    losslessly whatever ``quality`` says, so a lossy frame is passed as three equal channels
    with ``pixelformat="yuv400"`` (only the luma plane is coded).
    """
    ic = _imagecodecs()
    u = np.ascontiguousarray(frame)
    bps = 8 if u.dtype.itemsize == 1 and int(u.max(initial=0)) < 256 else 12
    if quality is None:
        return bytes(ic.avif_encode(u, level=100, speed=speed, bitspersample=bps, numthreads=numthreads))
    rgb = np.ascontiguousarray(np.repeat(u[..., None], 3, axis=2))
    return bytes(ic.avif_encode(rgb, level=int(quality), speed=speed, bitspersample=bps, pixelformat="yuv400",
                                codec="aom", numthreads=numthreads))  # fmt: skip


def avif_decode(data: bytes, /, *, numthreads: int = 1) -> NDArray[np.integer]:
    """An AVIF file back to its (luma) samples, 2-D."""
    out = np.asarray(_imagecodecs().avif_decode(data, numthreads=numthreads))
    return out[..., 0] if out.ndim == 3 else out


def jpegxl_decode(data: bytes, /, *, numthreads: int = 1) -> NDArray[np.integer]:
    """A JPEG XL codestream back to its samples."""
    return np.asarray(_imagecodecs().jpegxl_decode(data, numthreads=numthreads))


# --------------------------------------------------------------------------- JPEG (libjpeg-turbo)


def jpeg8_encode(frame: NDArray[np.integer], /, *, bits_stored: int, quality: int) -> bytes:
    """Baseline (8-bit, SOF0) or extended (12-bit, SOF1) JPEG by libjpeg-turbo.

    ``quality`` is libjpeg's 1-100 scaling of the T.81 Annex K tables, with optimised Huffman
    tables. Unsigned samples of ``bits_stored <= 12`` (see :func:`to_unsigned`), coded at 8 bits
    for ``bits_stored <= 8``, else 12.
    """
    if bits_stored > 12:
        raise InvalidInputError(f"libjpeg-turbo codes 8 or 12 bits, not bits_stored={bits_stored} (T.81 §B.2.2)")
    bps = 8 if bits_stored <= 8 else 12
    return bytes(_imagecodecs().jpeg8_encode(frame, level=quality, optimize=True, bitspersample=bps))


#: ``subsampling`` of :func:`jpeg8_encode_colour` -> the Photometric Interpretation of the stream
#: in DICOM (PS3.5 §8.2.1: YCbCr, full range; 4:2:2 is chroma halved horizontally only).
COLOUR_PHOTOMETRIC = {"444": "YBR_FULL", "422": "YBR_FULL_422"}


def jpeg8_encode_colour(rgb: NDArray[np.uint8], /, *, quality: int, subsampling: str = "444") -> bytes:
    """Baseline JPEG (SOF0) of one 8-bit RGB frame ``(rows, columns, 3)`` by libjpeg-turbo: converted
    to YCbCr (T.871's full-range transform), chroma ``subsampling`` ``"444"`` or ``"422"``
    (:data:`COLOUR_PHOTOMETRIC`), ``quality`` libjpeg's 1-100, optimised Huffman tables."""
    if subsampling not in COLOUR_PHOTOMETRIC:
        raise InvalidInputError(f"subsampling={subsampling!r}: expected one of {sorted(COLOUR_PHOTOMETRIC)}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidInputError(f"expected one 8-bit RGB frame (rows, columns, 3), got {rgb.dtype} {rgb.shape}")
    return bytes(
        _imagecodecs().jpeg8_encode(
            np.ascontiguousarray(rgb), level=int(quality), colorspace="RGB", outcolorspace="YCBCR",
            subsampling=subsampling, optimize=True,
        )
    )  # fmt: skip


_J2K_LOSSLESS, _JLS_LOSSLESS, _HTJ2K_LOSSLESS = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80",
                                                 "1.2.840.10008.1.2.4.201")  # fmt: skip
_LJPEG = ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57")
#: Lossless syntaxes an 8-bit RGB frame is coded in by :func:`colour_lossless_encode`: JPEG 2000
#: (.90), JPEG-LS (.80), HTJ2K (.201), JPEG Lossless (.70, .57).
COLOUR_LOSSLESS = (_J2K_LOSSLESS, _JLS_LOSSLESS, _HTJ2K_LOSSLESS, *_LJPEG)


def j2k_uses_mct(stream: bytes) -> bool:
    """Whether a JPEG 2000 / HTJ2K codestream's COD segment (T.800 §A.6.1) applies the multiple
    component transform (for a reversible stream the RCT, so its DICOM Photometric Interpretation
    is ``YBR_RCT``, else ``RGB``: PS3.5 §8.2.4). Main-header segments are walked from SOC to the
    first SOT; a stream without COD is a :class:`~medcodec.errors.CodecError`."""
    if stream[:2] != b"\xff\x4f":
        raise CodecError("not a JPEG 2000 codestream: no SOC marker")
    pos = 2
    while pos + 4 <= len(stream):
        marker, length = stream[pos : pos + 2], int.from_bytes(stream[pos + 2 : pos + 4], "big")
        if marker == b"\xff\x52":  # COD: Lcod, Scod, SGcod (progression, 2 bytes layers, MCT), ...
            if length < 7 or pos + 9 > len(stream):
                break
            return stream[pos + 8] != 0
        if marker in (b"\xff\x90", b"\xff\x93") or marker[0] != 0xFF or length < 2:
            break
        pos += 2 + length
    raise CodecError("JPEG 2000 codestream without a COD segment in its main header")


def colour_lossless_encode(rgb: NDArray[np.uint8], uid: str, /) -> tuple[bytes, str]:
    """One 8-bit RGB frame ``(rows, columns, 3)`` coded losslessly for transfer syntax ``uid`` (one
    of :data:`COLOUR_LOSSLESS`): ``(codestream, Photometric Interpretation)``. JPEG 2000 by OpenJPEG
    and HTJ2K by OpenJPH, reversible 5/3 with the reversible colour transform (``YBR_RCT``, read off
    the codestream, else ``RGB``); JPEG-LS by CharLS, sample-interleaved, ``RGB`` (no SPIFF
    header); JPEG Lossless by libjpeg-turbo, predictor 1, no colour transform, ``RGB`` (its Adobe
    APP14 segment says so to libjpeg-based readers; PS3.5 §8.2.1, §8.2.3, §8.2.4)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidInputError(f"expected one 8-bit RGB frame (rows, columns, 3), got {rgb.dtype} {rgb.shape}")
    ic, a = _imagecodecs(), np.ascontiguousarray(rgb)
    if uid == _J2K_LOSSLESS:
        stream = bytes(ic.jpeg2k_encode(a, level=0, codecformat=J2K_CODESTREAM, reversible=True, mct=True))
    elif uid == _HTJ2K_LOSSLESS:
        stream = bytes(ic.htj2k_encode(a, reversible=True))
    elif uid == _JLS_LOSSLESS:
        return strip_spiff(bytes(ic.jpegls_encode(a, level=0))), "RGB"
    elif uid in _LJPEG:
        return bytes(ic.jpeg8_encode(a, lossless=True, predictor=1, colorspace="RGB", outcolorspace="RGB")), "RGB"
    else:
        raise InvalidInputError(f"{uid}: colour is coded losslessly in {', '.join(COLOUR_LOSSLESS)} only")
    return stream, ("YBR_RCT" if j2k_uses_mct(stream) else "RGB")


def colour_lossless_decode(stream: bytes, uid: str, /) -> NDArray[np.integer]:
    """A stream of :func:`colour_lossless_encode` back to its RGB samples (the decoders invert the
    colour transform themselves)."""
    ic = _imagecodecs()
    if uid == _J2K_LOSSLESS:
        return np.asarray(ic.jpeg2k_decode(stream))
    if uid == _HTJ2K_LOSSLESS:
        return np.asarray(ic.htj2k_decode(stream))
    if uid == _JLS_LOSSLESS:
        return np.asarray(ic.jpegls_decode(stream))
    if uid in _LJPEG:
        return np.asarray(ic.jpeg8_decode(stream, colorspace="RGB", outcolorspace="RGB"))
    raise InvalidInputError(f"{uid}: colour is coded losslessly in {', '.join(COLOUR_LOSSLESS)} only")


def ljpeg_encode(frame: NDArray[np.integer], /, *, bits_stored: int) -> bytes:
    """JPEG Lossless, non-hierarchical, first-order prediction (ISO 10918-1 process 14, selection
    value 1: the DICOM JPEG Lossless .70 / .57 codestream) by libjpeg-turbo (3.0 or later),
    sample precision P = ``bits_stored`` (2-16), point transform 0, optimised Huffman tables.

    Unsigned samples below ``2**bits_stored`` only (see :func:`to_unsigned`; a series mapping for
    DICOM). libjpeg-turbo's JFIF APP0 segment is dropped (:func:`strip_jfif`): it describes 8-bit
    YCbCr or grey images and DICOM's attributes say what the samples are.
    """
    if not 2 <= bits_stored <= 16:
        raise InvalidInputError(f"JPEG Lossless codes 2-16-bit samples, not bits_stored={bits_stored} (T.81 §H.4.1.2)")
    arr = np.asarray(frame)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 1 << bits_stored):
        raise InvalidInputError(f"JPEG Lossless at P={bits_stored}: samples span {int(arr.min())}..{int(arr.max())}, "
                                f"outside 0..{(1 << bits_stored) - 1}")  # fmt: skip
    arr = np.ascontiguousarray(arr, dtype=np.uint8 if bits_stored <= 8 else np.uint16)
    stream = _imagecodecs().jpeg8_encode(arr, lossless=True, predictor=1, bitspersample=bits_stored)
    return strip_jfif(bytes(stream))


def strip_jfif(stream: bytes) -> bytes:
    """Drop JFIF APP0 segments right after SOI (a DICOM JPEG fragment is SOI ... EOI; PS3.5 §8.2.1
    neither needs nor describes JFIF, which is defined for 8-bit images)."""
    if stream[:2] != b"\xff\xd8":
        return stream
    pos = 2
    while stream[pos : pos + 2] == b"\xff\xe0" and pos + 4 <= len(stream):
        length = int.from_bytes(stream[pos + 2 : pos + 4], "big")
        if not stream[pos + 4 : pos + 9].startswith(b"JFIF"):
            break
        pos += 2 + length
    return stream[:2] + stream[pos:]


def probe_ljpeg(ic: Any) -> str | None:
    probe = np.array([[0, 65535], [4095, 1]], dtype=np.uint16)
    try:
        ok = np.array_equal(jpeg8_decode(ljpeg_encode(probe, bits_stored=16)), probe)
    except Exception as exc:  # libjpeg-turbo before 3.0 has no lossless mode
        return f"this libjpeg-turbo has no JPEG Lossless encoder ({type(exc).__name__}: {exc})"
    return None if ok else "this libjpeg-turbo cannot round-trip 16-bit lossless samples"


def jpeg8_decode(data: bytes, /) -> NDArray[np.integer]:
    """A JPEG stream back to its samples, by libjpeg-turbo."""
    return np.asarray(_imagecodecs().jpeg8_decode(data))


def probe_jpeg8(ic: Any) -> str | None:
    probe = np.full((8, 8), 4095, dtype=np.uint16)
    if not np.array_equal(jpeg8_decode(jpeg8_encode(probe, bits_stored=12, quality=100)), probe):
        return "this libjpeg-turbo cannot round-trip 12-bit samples"
    return None


# --------------------------------------------------------------------------- zlib


def zlib_encode(frame: NDArray[np.integer], /, *, level: int = 6) -> bytes:
    """zlib (DEFLATE; level 6 as in ZIP tools) of the raw little-endian samples: what a ZIP gives
    (an RFC 1950 stream: the DEFLATE data a ZIP entry holds plus 6 bytes of header and checksum).

    The stream holds the samples only: :func:`zlib_decode` needs the shape and dtype.
    """
    a = np.asarray(frame)
    a = a.astype(a.dtype.newbyteorder("<"))
    return _zlib.compress(np.ascontiguousarray(a).tobytes(), level)


def zlib_decode(data: bytes, /, *, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[np.integer]:
    """Inverse of :func:`zlib_encode`, in native byte order.

    Raises
    ------
    InvalidInputError
        The inflated bytes do not hold ``shape`` samples of ``dtype``.
    """
    le = np.dtype(dtype).newbyteorder("<")
    raw = _zlib.decompress(data)
    if len(raw) != math.prod(shape) * le.itemsize:
        raise InvalidInputError(f"zlib: {len(raw)} bytes do not hold a {shape} frame of {le}")
    return np.frombuffer(raw, dtype=le).reshape(shape).astype(le.newbyteorder("="))


# --------------------------------------------------------------------------- PNG (libpng)


def png_encode(frame: NDArray[np.integer], /) -> bytes:
    """A grayscale PNG (8- or 16-bit, from the dtype) of unsigned samples (see :func:`to_unsigned`):
    for looking at frames, not for measuring."""
    return bytes(_imagecodecs().png_encode(np.ascontiguousarray(frame)))
