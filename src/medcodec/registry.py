"""The one table of codec backends and DICOM transfer syntaxes.

Everything that chooses, negotiates or calls a codec reads this module: the DICOM writer
(:mod:`medcodec.dicom`), :func:`medcodec.dicom.compress`, the evaluation peers
(:mod:`medcodec.evaluate.peers`), the benchmarks and the delivery server. A fact about a codec
(its knob and range, the bit depths and sign it takes, whether it can code losslessly, how to
tell it is installed) is written here once.

Backends (:data:`BACKENDS`, imagecodecs-style names)
=====================================================

===============  ===============  ================================================  ======  ======  ========
name             library          knob (``None``: lossless only)                    bits    signed  lossless
===============  ===============  ================================================  ======  ======  ========
medcodec-mdc     medcodec         ``quality`` 1-100                                 8-16    yes     no
medcodec-jpeg    medcodec         ``quality`` 1-100 (T.81 SOF0 / SOF1)              8-12    no      no
openjpeg         OpenJPEG         ``psnr_db`` 20-100: fixed-quality target PSNR,    8-16    yes     yes
                                  peak ``2**bits_stored - 1``
openjph          OpenJPH          ``step`` 1e-5-0.5: irreversible quantisation      8-16    yes     yes
                                  step, fraction of the container range (2**8 or
                                  2**16)
charls           CharLS           ``near`` 0-255 (at most ``(2**bits - 1) // 2``):  2-16    no      yes
                                  NEAR, the maximum absolute error
libjxl           libjxl           ``distance`` 0.01-25: butteraugli distance        8-16    no      yes
libjpeg-turbo    libjpeg-turbo    ``quality`` 1-100, optimised Huffman tables       8-12    no      no
ljpeg            libjpeg-turbo    none (JPEG Lossless, process 14, predictor 1;     2-16    no      yes
                                  3.0 or later)
zlib             zlib             none (DEFLATE of raw little-endian samples)      1-16    yes     yes
pydicom-rle      pydicom          none (DICOM RLE, PS3.5 Annex G)                   1-16    yes     yes
libpng           libpng           none (frame previews, encode only)                8-16    no      yes
avif             libavif          ``quality`` 0-100 (libaom, speed 6, yuv400)      8-12    no      yes
===============  ===============  ================================================  ======  ======  ========

"signed: no" means the codestream holds unsigned samples only: signed data go through
:func:`medcodec.external.to_unsigned` (evaluation) or a series mapping (DICOM).
"container" backends (OpenJPH, CharLS) code the depth of the array's container, 8 or 16 bits,
not ``bits_stored`` (:func:`medcodec.external.container_bits`), so a DICOM file must declare that
depth (PS3.5 §8.2).

Transfer syntaxes (:data:`TRANSFER_SYNTAXES`, by UID)
=====================================================

Native (Explicit / Implicit VR Little Endian), Deflated, RLE (.5), JPEG Baseline (.50) and
Extended (.51) from medcodec's own encoder, JPEG Lossless (.57 / .70, both written with
selection value 1, libjpeg-turbo), JPEG-LS
(.80 lossless / .81 near-lossless), JPEG 2000 (.90 lossless / .91), HTJ2K (.201 / .202
lossless, .203 lossless or lossy). ``lossy`` says the syntax *allows* lossy coding;
``method`` is its Lossy Image Compression Method (0028,2114) term (PS3.3 C.7.6.1.1.5.1).

The quality law
===============

``quality`` (1-100) is the medcodec JPEG quality for ``medcodec-*``; for the other lossy
backends it sets a quantisation step ``Δ(q) = 2**((100 - q) / 12.5) * 2**(B - 12)`` stored units
(halved every 12.5 points, like the JPEG tables). ``B`` is the bits the series' content spans
(the series mapping's :meth:`~medcodec.dicom.mapping.SeriesMapping.content_range_bits`, as
medcodec's JPEG takes it), else the source Bits Stored: a CT or MR declaring 16 bits for 12-bit
values got steps 16x coarser than the same values declared 12-bit until 2026-12-03 (an outside
audit: 84:1 and 263 HU max error from OpenJPEG at the default quality, against 4.7:1 and 6 HU).
OpenJPH uses Δ as its step (relative to the coded depth P), CharLS ``NEAR = round((Δ - 1) / 2)``,
OpenJPEG the PSNR of a uniform quantiser of step Δ on its own peak, ``20 log10((2**P - 1) *
sqrt(12) / Δ)`` (:meth:`Backend.knob_for_quality`). Qualities are therefore not comparable
across backends: compare with ``ratio`` or ``psnr``.
"""

from __future__ import annotations

import functools
import math
import zlib as _zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import external
from .errors import CodecError, InvalidInputError, UnsupportedFeatureError
from .ratecontrol import Knob

__all__ = [
    "Backend",
    "BACKENDS",
    "backend",
    "TransferSyntax",
    "TRANSFER_SYNTAXES",
    "transfer_syntax",
    "can_encode",
    "can_decode",
    "encodable_syntaxes",
    "LOSSY_ONLY_SYNTAXES",
    "pixel_data_is_lossy",
    "pixel_data_compressed",
    "NATIVE_SYNTAXES",
    "UnknownTransferSyntaxError",
    "quality_step",
    "SeriesHints",
]


class UnknownTransferSyntaxError(UnsupportedFeatureError, InvalidInputError):
    """A transfer syntax UID or name this table does not know (also a ``ValueError`` and a
    ``NotImplementedError``: it may be a bad value or a syntax medcodec does not handle)."""


def quality_step(quality: float, bits: int) -> float:
    """Quantisation step Δ of the quality law, in stored units of ``bits``-bit data.

    >>> quality_step(100, 12), quality_step(75, 12), quality_step(75, 16)
    (1.0, 4.0, 64.0)
    """
    return 2.0 ** ((100.0 - quality) / 12.5) * 2.0 ** (bits - 12)


# --------------------------------------------------------------------------- backends


def _imagecodecs_missing(flag: str, probe: Callable[[Any], str | None] | None = None) -> Callable[[], str | None]:
    def missing() -> str | None:
        try:
            import imagecodecs
        except ImportError:
            return "imagecodecs is not installed (pip install imagecodecs)"
        if not getattr(getattr(imagecodecs, flag, None), "available", False):
            return f"imagecodecs {imagecodecs.__version__} was built without {flag}"
        return probe(imagecodecs) if probe else None

    return missing


def _imagecodecs_version(func: str) -> Callable[[], str]:
    def version() -> str:
        import imagecodecs

        return str(getattr(imagecodecs, func)())

    return version


def _medcodec_missing(fmt: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        from .codec import decode, encode

        probe = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 7) % 4096
        try:
            out = decode(encode(probe, bits_stored=12, quality=90, format=fmt, jobs=1), jobs=1)
        except Exception as exc:  # our own coder: a bug or a dependency too old, never "not installed"
            import numba

            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            return (
                f"medcodec's own format={fmt!r} coder failed its self-test ({type(exc).__name__}: {first}) "
                f"under numba {numba.__version__} / numpy {np.__version__}: a bug or a dependency older than "
                "pyproject.toml allows; please report it"
            )
        if np.asarray(out).shape[-2:] != probe.shape:
            return f"medcodec format={fmt!r} probe round trip returned shape {np.asarray(out).shape}"
        return None

    return missing


def _medcodec_version() -> str:
    from ._version import __version__

    return f"medcodec {__version__}"


def _pydicom_rle_missing() -> str | None:
    from pydicom.pixels import get_encoder
    from pydicom.uid import RLELossless

    encoder = get_encoder(RLELossless)
    return None if encoder.is_available else "no pydicom RLE encoder is available"


def _pydicom_version() -> str:
    import pydicom

    return f"pydicom {pydicom.__version__}"


# Encoders of one mapped 2-D frame at a knob value (``None``: lossless), as DICOM fragments hold them.
def _mdc_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    from .codec import encode

    return bytes(encode(frame, bits_stored=bits, signed=signed, format="mdc", quality=float(knob or 100), jobs=1))


def _jpeg_encode(
    frame: NDArray[Any], bits: int, signed: bool, knob: float | None, hints: SeriesHints | None = None
) -> bytes:
    from .codec import encode
    from .spec import PixelSpec

    hints = hints or SeriesHints()
    spec = PixelSpec(bits, False, extra={"modality": hints.modality}) if hints.modality else None
    return bytes(encode(frame, bits_stored=bits, signed=False, format="jpeg", quality=float(knob or 100), jobs=1,
                        spec=spec, range_bits=hints.range_bits))  # fmt: skip


def _medcodec_decode(data: bytes) -> NDArray[Any]:
    from .codec import decode

    out = np.asarray(decode(data, jobs=1))
    return out[0] if out.ndim == 3 and out.shape[0] == 1 else out


def _openjpeg_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.jpeg2k_encode(frame, bits_stored=bits, psnr_db=knob)


def _openjph_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.htj2k_encode(frame, step=knob)


def _charls_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.jpegls_encode(frame, near=0 if knob is None else round(knob), spiff=False)


def _libjxl_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.jpegxl_encode(frame, distance=knob)


def _avif_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.avif_encode(frame, quality=None if knob is None else round(knob))


def _libjpeg_turbo_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.jpeg8_encode(frame, bits_stored=bits, quality=int(knob or 100))


def _ljpeg_encode(frame: NDArray[Any], bits: int, signed: bool, knob: float | None) -> bytes:
    return external.ljpeg_encode(frame, bits_stored=bits)


@dataclass(frozen=True)
class SeriesHints:
    """What a series writer knows about the whole series, for backends that use it
    (``Backend.series_aware``; the others code each frame on its own).

    Parameters
    ----------
    modality
        DICOM Modality (``"CT"``, ``"MR"``, ``"CR"``...): medcodec's JPEG picks its trained table by it.
    range_bits
        Bits the series' content spans in coded units: medcodec's JPEG scales its steps by it, so
        one quality gives the same steps on every slice (``None``: each frame's own range).
    """

    modality: str | None = None
    range_bits: int | None = None


@dataclass(frozen=True)
class Backend:
    """One codec implementation: what it takes, its one rate knob, whether it is installed.

    Parameters
    ----------
    name
        imagecodecs-style name (``"openjpeg"``).
    label
        For people (``"JPEG 2000 (OpenJPEG)"``).
    library
        The library that does the work.
    knob
        The rate knob and its full range; ``None`` for lossless-only backends.
    bits
        ``(min, max)`` Bits Stored it takes.
    signed
        Its codestream holds signed samples (else unsigned only).
    lossless
        It can code exactly (``knob=None`` at encode).
    container
        It codes the container's depth (8 or 16 bits), not ``bits_stored``.
    encoder, decoder
        ``(frame, bits, signed, knob) -> bytes`` and ``bytes -> frame``; ``None`` when not wired.
    missing
        ``() -> None`` when usable, else why not (probed once per process).
    version_of
        ``() -> str``, the library version.
    series_aware
        The encoder takes a fifth argument, :class:`SeriesHints`.
    """

    name: str
    label: str
    library: str
    knob: Knob | None
    bits: tuple[int, int]
    signed: bool
    lossless: bool
    container: bool = False
    encoder: Callable[..., bytes] | None = field(default=None, repr=False)
    decoder: Callable[[bytes], NDArray[Any]] | None = field(default=None, repr=False)
    missing: Callable[[], str | None] = field(default=lambda: None, repr=False)
    version_of: Callable[[], str] = field(default=lambda: "unknown", repr=False)
    series_aware: bool = False

    @property
    def lossy(self) -> bool:
        """It has a rate knob (can code lossily)."""
        return self.knob is not None

    def knob_for(self, bits: int) -> Knob | None:
        """The knob narrowed to what the codec accepts on ``bits``-bit (coded) samples.

        >>> backend("charls").knob_for(8).high, backend("charls").knob_for(16).high
        (127.0, 255.0)
        """
        k = self.knob
        if k is not None and k.name == "near":  # JPEG-LS: NEAR <= min(255, MAXVAL // 2), T.87 §C.2.4.1.1
            return Knob(k.name, k.description, k.low, float(min(k.high, (2**bits - 1) // 2)),
                        k.size_increases, k.log_scale, k.integer)  # fmt: skip
        return k

    def coded_depth(self, bits_stored: int, signed: bool) -> tuple[int, bool]:
        """Bits and sign of the samples the codestream holds for a ``bits_stored`` / ``signed`` source
        (what a DICOM file must declare, PS3.5 §8.2)."""
        if self.name == "medcodec-jpeg" or self.name == "libjpeg-turbo":
            return (8 if bits_stored <= 8 else 12), False
        bits = external.container_bits(bits_stored) if self.container else max(bits_stored, 2)
        return bits, signed and self.signed

    def knob_for_quality(
        self, quality: float, source_bits: int, coded_bits: int, range_bits: int | None = None
    ) -> float:
        """The knob value of the quality law (module docstring) for this backend.

        ``range_bits``: the bits the content spans in coded units (the series mapping's
        ``content_range_bits()``); without it the step follows ``source_bits`` in source units.

        >>> b = backend("openjpeg")  # 12-bit values declared 16-bit: the step of 12 bits, on a 16x larger peak
        >>> round(b.knob_for_quality(75, 16, 16, range_bits=12) - b.knob_for_quality(75, 12, 12), 2)
        24.08

        Raises
        ------
        UnsupportedFeatureError
            Lossless-only backend.
        """
        knob = self.knob_for(coded_bits)
        if knob is None:
            raise UnsupportedFeatureError(f"{self.name} has no rate knob (lossless only)")
        if knob.name == "quality":
            return knob.clamp(quality)
        delta = quality_step(quality, source_bits if range_bits is None else range_bits)
        if knob.name == "psnr_db":  # on the peak of the domain delta is in
            peak = 2.0 ** (source_bits if range_bits is None else coded_bits) - 1.0
            return knob.clamp(20.0 * math.log10(peak * math.sqrt(12.0) / delta))
        if knob.name == "step":
            return knob.clamp(delta / 2.0**coded_bits)
        if knob.name == "near":
            return knob.clamp(round((delta - 1.0) / 2.0))
        raise UnsupportedFeatureError(f"{self.name}: no quality law for knob {knob.name!r}")

    def why_unavailable(self) -> str | None:
        """``None`` when the backend can be used, else why not (checked once per process)."""
        return _why_unavailable(self.name)

    def is_available(self) -> bool:
        """The backend can be used (see :meth:`why_unavailable`)."""
        return self.why_unavailable() is None

    def check_available(self) -> None:
        """Raise :class:`~medcodec.errors.UnsupportedFeatureError` naming what is missing."""
        why = self.why_unavailable()
        if why:
            raise UnsupportedFeatureError(f"{self.label} is not available: {why}")

    def version(self) -> str:
        """The library version (``"unknown"`` when it cannot be told)."""
        try:
            return self.version_of()
        except Exception:
            return "unknown"

    def encode(
        self, frame: NDArray[Any], bits: int, signed: bool, knob: float | None, hints: SeriesHints | None = None
    ) -> bytes:
        """One 2-D frame of ``bits``-bit samples to a codestream at ``knob`` (``None``: lossless);
        ``hints`` reach :attr:`series_aware` backends only.

        Library errors become :class:`~medcodec.errors.CodecError`.
        """
        if self.encoder is None:
            raise UnsupportedFeatureError(f"{self.label}: no encoder is wired")
        if knob is None and not self.lossless:
            raise UnsupportedFeatureError(f"{self.label} cannot code losslessly")
        try:
            if self.series_aware and hints is not None:
                return self.encoder(frame, bits, signed, knob, hints)
            return self.encoder(frame, bits, signed, knob)
        except CodecError:
            raise
        except Exception as exc:  # a library's own error (OpenJPEG, OpenJPH, CharLS) becomes ours
            raise CodecError(f"{self.label}: encoding a {np.shape(frame)} frame failed: "
                             f"{type(exc).__name__}: {exc}") from exc  # fmt: skip

    def decode(self, data: bytes) -> NDArray[Any]:
        """A codestream back to its samples (library errors become :class:`~medcodec.errors.CodecError`)."""
        if self.decoder is None:
            raise UnsupportedFeatureError(f"{self.label}: no decoder is wired")
        try:
            return self.decoder(data)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"{self.label}: decoding failed: {type(exc).__name__}: {exc}") from exc


#: medcodec's quality is continuous (the steps follow it: ``quantize.quant_table``), so a series' rate
#: search lands between integers; until 2026-12-03 it was searched in whole qualities and a given 95.6
#: was rounded to 96 unsaid: above quality 95 one step is ~20 % of the bytes (an outside audit)
_QUALITY = Knob("quality", "medcodec quality 1-100 (higher = larger, better)", 1, 100, True, False, False)

#: Every codec backend, by name.
BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "medcodec-mdc",
            "medcodec (.mdc)",
            "medcodec",
            _QUALITY,
            (8, 16),
            True,
            False,
            encoder=_mdc_encode,
            decoder=_medcodec_decode,
            missing=_medcodec_missing("mdc"),
            version_of=_medcodec_version,
        ),
        Backend(
            "medcodec-jpeg",
            "JPEG baseline 8-bit / extended 12-bit (ISO 10918-1, medcodec)",
            "medcodec",
            _QUALITY,
            (8, 12),
            False,
            False,
            encoder=_jpeg_encode,
            decoder=_medcodec_decode,
            missing=_medcodec_missing("jpeg"),
            version_of=_medcodec_version,
            series_aware=True,
        ),
        Backend(
            "openjpeg",
            "JPEG 2000 (ISO 15444-1, OpenJPEG)",
            "OpenJPEG",
            Knob("psnr_db", "OpenJPEG fixed-quality target PSNR in dB, peak 2**bits_stored-1", 20.0, 100.0),
            (8, 16),
            True,
            True,
            encoder=_openjpeg_encode,
            decoder=external.jpeg2k_decode,
            missing=_imagecodecs_missing("JPEG2K", external.probe_jpeg2k),
            version_of=_imagecodecs_version("jpeg2k_version"),
        ),
        Backend(
            "openjph",
            "HTJ2K (ISO 15444-15, OpenJPH)",
            "OpenJPH",
            Knob(
                "step",
                "OpenJPH irreversible quantisation step, fraction of the container range",
                1e-5,
                0.5,
                size_increases=False,
                log_scale=True,
            ),
            (8, 16),
            True,
            True,
            container=True,
            encoder=_openjph_encode,
            decoder=external.htj2k_decode,
            missing=_imagecodecs_missing("HTJ2K"),
            version_of=_imagecodecs_version("htj2k_version"),
        ),
        Backend(
            "charls",
            "JPEG-LS (ISO 14495-1, CharLS)",
            "CharLS",
            Knob("near", "JPEG-LS NEAR: guaranteed maximum absolute error", 0, 255, size_increases=False, integer=True),
            (2, 16),
            False,
            True,
            container=True,
            encoder=_charls_encode,
            decoder=external.jpegls_decode,
            missing=_imagecodecs_missing("JPEGLS"),
            version_of=_imagecodecs_version("jpegls_version"),
        ),
        Backend(
            "libjxl",
            "JPEG XL (libjxl)",
            "libjxl",
            Knob("distance", "libjxl butteraugli distance (smaller = better)", 0.01, 25.0, False, True),
            (8, 16),
            False,
            True,
            encoder=_libjxl_encode,
            decoder=external.jpegxl_decode,
            missing=_imagecodecs_missing("JPEGXL"),
            version_of=_imagecodecs_version("jpegxl_version"),
        ),
        Backend(
            "libjpeg-turbo",
            "JPEG 12-bit (libjpeg-turbo)",
            "libjpeg-turbo (12-bit capable)",
            Knob("quality", "libjpeg-turbo quality 1-100, optimised Huffman tables", 1, 100, True, False, True),
            (8, 12),
            False,
            False,
            encoder=_libjpeg_turbo_encode,
            decoder=external.jpeg8_decode,
            missing=_imagecodecs_missing("JPEG8", external.probe_jpeg8),
            version_of=_imagecodecs_version("jpeg8_version"),
        ),
        Backend(
            "ljpeg",
            "JPEG Lossless SV1 (ISO 10918-1 process 14, libjpeg-turbo)",
            "libjpeg-turbo (3.0 or later)",
            None,
            (2, 16),
            False,
            True,
            encoder=_ljpeg_encode,
            decoder=external.jpeg8_decode,
            missing=_imagecodecs_missing("JPEG8", external.probe_ljpeg),
            version_of=_imagecodecs_version("jpeg8_version"),
        ),
        Backend(
            "zlib",
            "zlib of raw pixels (ZIP)",
            "zlib",
            None,
            (1, 16),
            True,
            True,
            version_of=lambda: f"zlib {_zlib.ZLIB_RUNTIME_VERSION}",
        ),
        Backend(
            "pydicom-rle",
            "RLE Lossless (DICOM PS3.5 Annex G)",
            "pydicom",
            None,
            (1, 16),
            True,
            True,
            missing=_pydicom_rle_missing,
            version_of=_pydicom_version,
        ),
        Backend(
            "libpng",
            "PNG (libpng)",
            "libpng",
            None,
            (8, 16),
            False,
            True,
            missing=_imagecodecs_missing("PNG"),
            version_of=_imagecodecs_version("png_version"),
        ),
        Backend(
            "avif",
            "AVIF (AV1 intra, libavif)",
            "libavif",
            Knob("quality", "libavif quality 0-100", 0, 100, True, False, True),
            (8, 12),
            False,
            True,
            encoder=_avif_encode,
            decoder=external.avif_decode,
            missing=_imagecodecs_missing("AVIF"),
            version_of=_imagecodecs_version("avif_version"),
        ),
    )
}


def backend(name: str | Backend) -> Backend:
    """A :class:`Backend` by name.

    Raises
    ------
    InvalidInputError
        Unknown name (the message lists the known ones).
    """
    if isinstance(name, Backend):
        return name
    try:
        return BACKENDS[name]
    except KeyError:
        raise InvalidInputError(f"unknown codec backend {name!r}, expected one of {', '.join(BACKENDS)}") from None


@functools.cache
def _why_unavailable(name: str) -> str | None:
    # once per process (as documented): the medcodec backends' probe is an encode and a decode, which
    # compress() paid on every call (~11 % of a live CT instance's CPU before this cache)
    try:
        return BACKENDS[name].missing()
    except Exception as exc:  # a broken optional library must not break its callers
        return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- transfer syntaxes


@dataclass(frozen=True)
class TransferSyntax:
    """One DICOM transfer syntax as medcodec handles it.

    Parameters
    ----------
    uid
        Transfer Syntax UID.
    name, keyword
        pydicom's UID name and keyword (``"JPEG Extended (Process 2 and 4)"``, ``"JPEGExtended12Bit"``).
    lossy
        The syntax allows lossy coding.
    method
        Lossy Image Compression Method (0028,2114) term when coded lossily, else ``None``.
    backend
        Name in :data:`BACKENDS` of the encoder medcodec uses; ``None``: not encoded (native
        syntaxes are written by pydicom, decode-only syntaxes not at all).
    bits
        ``(min, max)`` Bits Stored the codestream can hold.
    signed
        The codestream can hold signed samples.
    encapsulated
        Pixel data are encapsulated (PS3.5 §A.4).
    encodable
        :func:`medcodec.dicom.compress` can write it.
    short
        The CLI's name of the lossy family (``"jpeg"`` for ``--to dicom-jpeg``), or ``None``.
    frame_decoder
        Name in :data:`BACKENDS` whose decoder reads one grayscale frame of this syntax with the
        values every conforming decoder gives (lossless JPEG, JPEG-LS: exact by the standard), and
        faster than pydicom's plugin (libjpeg-turbo decodes a 512x512 .70 frame in ~1.4 ms against
        pylibjpeg-libjpeg's ~7 ms); ``None``: pydicom's plugins. Lossy JPEG is left to pydicom:
        IDCTs may differ by 1 (T.81 allows it), and the values medcodec measures against should
        not depend on which library happened to decode.
    """

    uid: str
    name: str
    keyword: str
    lossy: bool
    method: str | None
    backend: str | None
    bits: tuple[int, int]
    signed: bool
    encapsulated: bool
    encodable: bool
    short: str | None = None
    frame_decoder: str | None = None

    @property
    def codec(self) -> Backend | None:
        """The encoder :class:`Backend` (``None`` when not encoded by a backend)."""
        return None if self.backend is None else BACKENDS[self.backend]

    @property
    def knob(self) -> Knob | None:
        """The rate knob (``None`` for lossless syntaxes)."""
        codec = self.codec
        return codec.knob if (self.lossy and codec is not None) else None

    def is_available(self) -> bool:
        """Its encoder is usable here (always ``False`` when not :attr:`encodable`)."""
        if not self.encodable:
            return False
        codec = self.codec
        return codec is None or codec.is_available()

    def coded_depth(self, bits_stored: int, signed: bool) -> tuple[int, bool]:
        """Bits and sign of the samples the codestream holds for a ``bits_stored`` / ``signed`` source.

        >>> transfer_syntax("JPEGExtended12Bit").coded_depth(16, True)
        (12, False)
        >>> transfer_syntax("1.2.840.10008.1.2.4.203").coded_depth(12, True)
        (16, True)
        """
        codec = self.codec
        if codec is None:
            return bits_stored, signed
        if self.uid == _JPEG_BASELINE:
            return 8, False
        return codec.coded_depth(bits_stored, signed)


_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _ts(uid: str, lossy: bool, method: str | None, backend_name: str | None, bits: tuple[int, int], signed: bool,
        encapsulated: bool, encodable: bool, short: str | None = None,
        frame_decoder: str | None = None) -> TransferSyntax:  # fmt: skip
    from pydicom.uid import UID

    u = UID(uid)
    return TransferSyntax(uid, u.name, u.keyword, lossy, method, backend_name, bits, signed, encapsulated, encodable,
                          short, frame_decoder)  # fmt: skip


#: Every transfer syntax medcodec knows, by UID.
TRANSFER_SYNTAXES: dict[str, TransferSyntax] = {
    ts.uid: ts
    for ts in (
        _ts("1.2.840.10008.1.2", False, None, None, (1, 16), True, False, True),
        _ts("1.2.840.10008.1.2.1", False, None, None, (1, 16), True, False, True),
        _ts("1.2.840.10008.1.2.1.99", False, None, None, (1, 16), True, False, True),
        _ts("1.2.840.10008.1.2.5", False, None, "pydicom-rle", (1, 16), True, True, True),
        _ts(_JPEG_BASELINE, True, "ISO_10918_1", "medcodec-jpeg", (8, 8), False, True, True, "jpeg"),
        _ts("1.2.840.10008.1.2.4.51", True, "ISO_10918_1", "medcodec-jpeg", (8, 12), False, True, True, "jpeg"),
        _ts("1.2.840.10008.1.2.4.57", False, None, "ljpeg", (2, 16), False, True, True, None, "libjpeg-turbo"),
        _ts("1.2.840.10008.1.2.4.70", False, None, "ljpeg", (2, 16), False, True, True, None, "libjpeg-turbo"),
        _ts("1.2.840.10008.1.2.4.80", False, None, "charls", (2, 16), False, True, True, None, "charls"),
        _ts("1.2.840.10008.1.2.4.81", True, "ISO_14495_1", "charls", (2, 16), False, True, True, "jpegls", "charls"),
        _ts("1.2.840.10008.1.2.4.90", False, None, "openjpeg", (1, 16), True, True, True),
        _ts("1.2.840.10008.1.2.4.91", True, "ISO_15444_1", "openjpeg", (1, 16), True, True, True, "j2k"),
        _ts("1.2.840.10008.1.2.4.201", False, None, "openjph", (1, 16), True, True, True),
        _ts("1.2.840.10008.1.2.4.202", False, None, "openjph", (1, 16), True, True, True),
        _ts("1.2.840.10008.1.2.4.203", True, "ISO_15444_15", "openjph", (1, 16), True, True, True, "htj2k"),
    )
}


def transfer_syntax(uid_or_name: str | TransferSyntax) -> TransferSyntax:
    """A :class:`TransferSyntax` by UID, pydicom keyword or name (case-insensitive for names).

    >>> transfer_syntax("1.2.840.10008.1.2.4.51").keyword
    'JPEGExtended12Bit'
    >>> transfer_syntax("jpeglsnearlossless").uid
    '1.2.840.10008.1.2.4.81'

    Raises
    ------
    UnknownTransferSyntaxError
        Not in :data:`TRANSFER_SYNTAXES` (a subclass of both
        :class:`~medcodec.errors.InvalidInputError` and :class:`~medcodec.errors.UnsupportedFeatureError`).
    """
    if isinstance(uid_or_name, TransferSyntax):
        return uid_or_name
    key = str(uid_or_name).strip()
    found = TRANSFER_SYNTAXES.get(key)
    if found is None:
        low = key.lower()
        found = next((ts for ts in TRANSFER_SYNTAXES.values() if low in (ts.keyword.lower(), ts.name.lower())), None)
    if found is None:
        raise UnknownTransferSyntaxError(
            f"transfer syntax {key!r} is not supported, expected one of: "
            + ", ".join(f"{ts.uid} ({ts.keyword})" for ts in TRANSFER_SYNTAXES.values())
        )
    return found


def can_encode(uid: str | TransferSyntax) -> bool:
    """:func:`medcodec.dicom.compress` can write ``uid`` here (known, encodable, library installed).
    Unknown UIDs give ``False``.

    >>> can_encode("1.2.840.10008.1.2.4.70"), can_encode("1.2.3.4")
    (True, False)
    """
    try:
        return transfer_syntax(uid).is_available()
    except UnknownTransferSyntaxError:
        return False


def can_decode(uid: str | TransferSyntax) -> bool:
    """pydicom (with the plugins medcodec installs) can decode pixel data of ``uid`` here."""
    try:
        ts = transfer_syntax(uid)
    except UnknownTransferSyntaxError:
        return False
    if not ts.encapsulated:
        return True
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(ts.uid).is_available)
    except Exception:
        return False


def encodable_syntaxes() -> list[TransferSyntax]:
    """The transfer syntaxes :func:`can_encode` accepts here, in table order."""
    return [ts for ts in TRANSFER_SYNTAXES.values() if ts.is_available()]


#: Transfer syntaxes whose pixel data are lossy whatever a header says: the lossy JPEG processes
#: (.50, .51 and the retired .52-.56, .59-.64), MPEG-2/-4 and HEVC video (.100-.108), JPEG XL's JPEG
#: recompression (.111, a recoded lossy JPEG). JPEG-LS .81, JPEG 2000 .91, HTJ2K .203 and JPEG XL
#: .112 may hold either: their header's Lossy Image Compression decides (:func:`pixel_data_is_lossy`).
LOSSY_ONLY_SYNTAXES = frozenset(
    ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"]
    + [f"1.2.840.10008.1.2.4.{n}" for n in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)]
    + [f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)]
    + ["1.2.840.10008.1.2.4.111"]
)


def pixel_data_is_lossy(uid: str, lossy_image_compression: object = None) -> bool:
    """Whether pixel data stored under transfer syntax ``uid`` have been through lossy coding.

    ``lossy_image_compression`` is the header's (0028,2110) value: ``"01"`` means yes and ``"00"``
    no (PS3.3 C.7.6.1.1.5: once ``01`` it is never reset, so a decompressed copy of a lossy image
    still says so); without one, the syntax decides (:data:`LOSSY_ONLY_SYNTAXES`).

    >>> pixel_data_is_lossy("1.2.840.10008.1.2.4.91"), pixel_data_is_lossy("1.2.840.10008.1.2.4.91", "01")
    (False, True)
    >>> pixel_data_is_lossy("1.2.840.10008.1.2.4.50"), pixel_data_is_lossy("1.2.840.10008.1.2.1", "01")
    (True, True)
    """
    flag = str(lossy_image_compression or "").strip()
    if flag == "01":
        return True
    if flag == "00" and uid not in LOSSY_ONLY_SYNTAXES:
        return False
    return str(uid) in LOSSY_ONLY_SYNTAXES


#: The native syntaxes: Implicit / Explicit VR Little Endian, Explicit VR Big Endian (retired).
NATIVE_SYNTAXES = frozenset(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"])
_DEFLATED = "1.2.840.10008.1.2.1.99"  # compresses the whole data set, not the pixels


def pixel_data_compressed(uid: str) -> bool:
    """Whether pixel data under transfer syntax ``uid`` are compressed (encapsulated): every syntax
    but the native ones and Deflated, unknown and private ones included (PS3.5 §10).

    >>> pixel_data_compressed("1.2.840.10008.1.2.4.91"), pixel_data_compressed("1.2.840.10008.1.2.1.99")
    (True, False)
    """
    uid = str(uid).strip()
    return uid not in NATIVE_SYNTAXES and uid != _DEFLATED
