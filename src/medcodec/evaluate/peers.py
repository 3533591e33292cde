"""Codecs compared with medcodec, behind one small adapter interface.

Every codec, medcodec included, is a :class:`CodecAdapter`: a ``name``, an ``is_available()``
check with a ``why_unavailable`` message, ``supports(spec)`` (a reason string when the data are
outside what the codec handles), one rate knob described by a :class:`Knob`, and
``encode(frame, spec, *, target) -> bytes`` / ``decode(data, spec, *, shape) -> ndarray`` on one
2-D frame. ``target`` is a value of the codec's own knob; ``None`` asks for lossless coding
(or the only mode a lossless-only codec has).

Peers (all through imagecodecs, each skipped with a message when its library is missing):

============  ==============================  ==========================================  =========
name          library                         knob                                        signed
============  ==============================  ==========================================  =========
jpeg2000      OpenJPEG (``jpeg2k_encode``)    ``psnr_db``: OpenJPEG fixed-quality target  native
                                              PSNR in dB with peak 2**bits_stored - 1
htj2k         OpenJPH (``htj2k_encode``)      ``step``: irreversible quantisation step,   native
                                              relative to the container's range
jpegls        CharLS (``jpegls_encode``)      ``near``: NEAR, the max absolute error      offset
jpegxl        libjxl (``jpegxl_encode``)      ``distance``: butteraugli distance          offset
jpeg12        libjpeg-turbo (``jpeg8_encode``) ``quality`` 1-100; <= 12-bit data only      offset
zlib          zlib (``zlib_encode``)          none: lossless only, raw little-endian      native
============  ==============================  ==========================================  =========

Codecs that only take unsigned samples get them through :func:`to_unsigned` /
:func:`from_unsigned` (add ``2**(bits_stored-1)`` to signed data, and take it off again): the
one place that mapping lives.
"""

from __future__ import annotations

import functools
import math
import zlib as _zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..spec import PixelSpec, storage_dtype

__all__ = [
    "Knob",
    "CodecAdapter",
    "BaseAdapter",
    "MedcodecAdapter",
    "Jpeg2000Peer",
    "Htj2kPeer",
    "JpeglsPeer",
    "JpegxlPeer",
    "Jpeg12Peer",
    "ZlibPeer",
    "ADAPTERS",
    "PEER_NAMES",
    "get_adapter",
    "all_adapters",
    "to_unsigned",
    "from_unsigned",
    "check_frame",
    "library_versions",
]


@dataclass(frozen=True)
class Knob:
    """The one parameter a codec's size is steered with.

    Parameters
    ----------
    name
        Short name (``"quality"``, ``"psnr_db"``, ``"step"``, ``"near"``, ``"distance"``).
    description
        What the value means, in the codec's own terms.
    low, high
        Range searched by the rate control.
    size_increases
        True when a larger value gives a larger stream (quality), False when smaller (distance).
    log_scale
        Search the value on a log scale (steps and distances spanning decades).
    integer
        Only integer values are meaningful.
    """

    name: str
    description: str
    low: float
    high: float
    size_increases: bool = True
    log_scale: bool = False
    integer: bool = False

    def clamp(self, value: float) -> float:
        v = min(max(float(value), self.low), self.high)
        return float(round(v)) if self.integer else v

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "low": self.low,
            "high": self.high,
            "size_increases": self.size_increases,
            "log_scale": self.log_scale,
            "integer": self.integer,
        }


@runtime_checkable
class CodecAdapter(Protocol):
    """What the evaluation needs from a codec (medcodec or a peer)."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def knob(self) -> Knob | None: ...

    @property
    def lossless(self) -> bool: ...

    def is_available(self) -> bool: ...

    @property
    def why_unavailable(self) -> str | None: ...

    @property
    def version(self) -> str: ...

    def supports(self, spec: PixelSpec) -> str | None: ...

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes: ...

    def decode(
        self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None
    ) -> NDArray[Any]: ...


# --------------------------------------------------------------------------- sample mapping


def check_frame(frame: NDArray[Any], spec: PixelSpec) -> NDArray[Any]:
    """Validate one 2-D integer frame against ``spec`` (values inside the bits_stored range)."""
    a = np.asarray(frame)
    if a.ndim != 2:
        raise InvalidInputError(f"expected one 2-D frame, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"expected integer pixels, got dtype {a.dtype}")
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < spec.min_value or hi > spec.max_value:
            raise InvalidInputError(
                f"pixel values {lo}..{hi} are outside the {spec.bits_stored}-bit "
                f"{'signed' if spec.signed else 'unsigned'} range {spec.min_value}..{spec.max_value}"
            )
    return a


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
    offset = (1 << (spec.bits_stored - 1)) if spec.signed else 0
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


# --------------------------------------------------------------------------- base


class BaseAdapter:
    """Shared plumbing: availability probing, version, support checks."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    knob: Knob | None = None
    lossless: bool = False  #: can code losslessly (``target=None``)
    lossless_only: bool = False
    max_bits_stored: ClassVar[int] = 16
    min_bits_stored: ClassVar[int] = 8

    def _probe(self) -> str | None:
        """Return None when usable, else why not."""
        return None

    @functools.cached_property
    def _unavailable(self) -> str | None:
        try:
            return self._probe()
        except Exception as exc:  # a broken optional library must not break the evaluation
            return f"{type(exc).__name__}: {exc}"

    def is_available(self) -> bool:
        return self._unavailable is None

    @property
    def why_unavailable(self) -> str | None:
        return None if self._unavailable is None else f"{self.name} skipped: {self._unavailable}"

    @property
    def version(self) -> str:
        return ""

    def supports(self, spec: PixelSpec) -> str | None:
        if not self.min_bits_stored <= spec.bits_stored <= self.max_bits_stored:
            return (
                f"{self.name} skipped: handles {self.min_bits_stored}-{self.max_bits_stored}-bit data, "
                f"this input has bits_stored={spec.bits_stored}"
            )
        return None

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        """One 2-D frame to bytes at knob value ``target`` (``None``: lossless)."""
        raise NotImplementedError

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        """Bytes back to one 2-D frame in the spec's storage dtype."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "version": self.version if self.is_available() else None,
            "knob": self.knob.as_dict() if self.knob else None,
            "lossless": self.lossless,
            "lossless_only": self.lossless_only,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _imagecodecs() -> Any:
    import imagecodecs

    return imagecodecs


def _ic_available(codec: str) -> str | None:
    try:
        ic = _imagecodecs()
    except ImportError:
        return "imagecodecs is not installed (pip install imagecodecs)"
    if not getattr(getattr(ic, codec, None), "available", False):
        return f"imagecodecs {ic.__version__} was built without {codec}"
    return None


def _ic_version(func: str) -> str:
    try:
        return str(getattr(_imagecodecs(), func)())
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------- medcodec


class MedcodecAdapter(BaseAdapter):
    """medcodec itself, through the public ``medcodec.encode`` / ``medcodec.decode`` only."""

    name: ClassVar[str] = "medcodec"
    label: ClassVar[str] = "medcodec (.mdc)"
    knob = Knob("quality", "medcodec quality 1-100 (higher = larger, better)", 1, 100, True, False, True)
    fmt: ClassVar[str] = "mdc"

    def _api(self) -> tuple[Callable[..., bytes], Callable[..., NDArray[Any]]]:
        import medcodec

        return medcodec.encode, medcodec.decode

    def _probe(self) -> str | None:
        import medcodec

        if not (hasattr(medcodec, "encode") and hasattr(medcodec, "decode")):
            return "medcodec.encode / medcodec.decode are not available in this build yet"
        enc, dec = self._api()
        probe = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 7) % 4096
        try:
            out = dec(enc(probe, bits_stored=12, quality=90, format=self.fmt))
        except NotImplementedError as exc:
            return f"format={self.fmt!r} is not implemented yet ({exc})"
        if np.asarray(out).shape != probe.shape:
            return f"probe round trip returned shape {np.asarray(out).shape}, expected {probe.shape}"
        return None

    @property
    def version(self) -> str:
        import medcodec

        return f"medcodec {medcodec.__version__}"

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        enc, _ = self._api()
        q = 100 if target is None else int(self.knob.clamp(target))
        return bytes(
            enc(check_frame(frame, spec), bits_stored=spec.bits_stored, signed=spec.signed, quality=q, format=self.fmt)
        )

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        _, dec = self._api()
        out = np.asarray(dec(data))
        if out.ndim == 3 and out.shape[0] == 1:
            out = out[0]
        return out


class MedcodecJpegAdapter(MedcodecAdapter):
    """medcodec's standard-JPEG output (SOF0/SOF1), once ``format="jpeg"`` exists."""

    name: ClassVar[str] = "medcodec-jpeg"
    label: ClassVar[str] = "medcodec (standard JPEG)"
    fmt: ClassVar[str] = "jpeg"
    max_bits_stored: ClassVar[int] = 12


# --------------------------------------------------------------------------- peers


class Jpeg2000Peer(BaseAdapter):
    """JPEG 2000 Part 1 by OpenJPEG, irreversible 9/7 with fixed-quality (PSNR) rate control.

    imagecodecs passes ``level`` to OpenJPEG's ``tcp_distoratio`` (fixed quality): the encoder
    truncates the code-blocks so the image reaches that PSNR, computed with peak
    ``2**prec - 1``. ``prec`` is set to ``bits_stored`` (``bitspersample=``), so the knob is the
    same PSNR this module reports. ``target=None`` codes losslessly (reversible 5/3).
    """

    name: ClassVar[str] = "jpeg2000"
    label: ClassVar[str] = "JPEG 2000 (OpenJPEG)"
    knob = Knob("psnr_db", "OpenJPEG fixed-quality target PSNR in dB, peak 2**bits_stored-1", 20.0, 100.0)
    lossless = True

    def __init__(self, numthreads: int = 1):
        self.numthreads = numthreads

    def _probe(self) -> str | None:
        why = _ic_available("JPEG2K")
        if why:
            return why
        # the knob must mean "target PSNR" (it meant a rate in old imagecodecs): check on a ramp
        ic = _imagecodecs()
        yy, xx = np.mgrid[:64, :64]
        ramp = ((xx * 61 + yy * 3 + (xx * yy) % 97) % 4096).astype(np.uint16)
        out = ic.jpeg2k_decode(ic.jpeg2k_encode(ramp, level=45.0, codecformat="J2K", bitspersample=12, reversible=False))
        mse = float(np.mean((out.astype(np.float64) - ramp) ** 2))
        got = 10 * math.log10(4095.0**2 / mse) if mse else math.inf
        if not 42.0 <= got <= 60.0:
            return (
                f"imagecodecs {ic.__version__}: jpeg2k_encode(level=45) gave {got:.1f} dB; this version's "
                "level is not OpenJPEG's PSNR target (upgrade imagecodecs)"
            )
        return None

    @property
    def version(self) -> str:
        return _ic_version("jpeg2k_version")

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        ic = _imagecodecs()
        a = np.ascontiguousarray(check_frame(frame, spec).astype(storage_dtype(spec.bits_stored, spec.signed)))
        if target is None:
            return bytes(
                ic.jpeg2k_encode(
                    a, level=0, codecformat="J2K", bitspersample=spec.bits_stored, reversible=True,
                    numthreads=self.numthreads,
                )
            )
        return bytes(
            ic.jpeg2k_encode(
                a, level=float(self.knob.clamp(target)), codecformat="J2K",
                bitspersample=spec.bits_stored, reversible=False, numthreads=self.numthreads,
            )
        )

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        out = _imagecodecs().jpeg2k_decode(data, numthreads=self.numthreads)
        return from_unsigned(out, spec, 0)


class Htj2kPeer(BaseAdapter):
    """High-throughput JPEG 2000 (Part 15) by OpenJPH.

    imagecodecs exposes no rate control for HTJ2K: ``level`` is OpenJPH's irreversible
    quantisation step (``set_irrev_quant``), relative to the range of the array's container
    (2**16 for ``uint16``/``int16``). Rates are reached by searching the step.
    ``target=None`` codes losslessly (reversible 5/3).
    """

    name: ClassVar[str] = "htj2k"
    label: ClassVar[str] = "HTJ2K (OpenJPH)"
    knob = Knob(
        "step", "OpenJPH irreversible quantisation step, fraction of the container range",
        1e-6, 0.5, size_increases=False, log_scale=True,
    )
    lossless = True

    def _probe(self) -> str | None:
        return _ic_available("HTJ2K")

    @property
    def version(self) -> str:
        return _ic_version("htj2k_version")

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        ic = _imagecodecs()
        a = np.ascontiguousarray(check_frame(frame, spec).astype(storage_dtype(spec.bits_stored, spec.signed)))
        if target is None:
            return bytes(ic.htj2k_encode(a, reversible=True))
        step = self.knob.clamp(target)
        return bytes(ic.htj2k_encode(a, level=step, reversible=False))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(_imagecodecs().htj2k_decode(data), spec, 0)


class JpeglsPeer(BaseAdapter):
    """JPEG-LS (ISO 14495-1) by CharLS: lossless, or near-lossless with NEAR = max abs error."""

    name: ClassVar[str] = "jpegls"
    label: ClassVar[str] = "JPEG-LS (CharLS)"
    knob = Knob("near", "JPEG-LS NEAR: guaranteed maximum absolute error", 0, 255, size_increases=False, integer=True)
    lossless = True
    min_bits_stored: ClassVar[int] = 2

    def _probe(self) -> str | None:
        return _ic_available("JPEGLS")

    @property
    def version(self) -> str:
        return _ic_version("jpegls_version")

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        near = 0 if target is None else int(self.knob.clamp(target))
        return bytes(_imagecodecs().jpegls_encode(u, level=near))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        offset = (1 << (spec.bits_stored - 1)) if spec.signed else 0
        return from_unsigned(_imagecodecs().jpegls_decode(data), spec, offset)


class JpegxlPeer(BaseAdapter):
    """JPEG XL by libjxl (VarDCT), ``distance`` = butteraugli distance (smaller = better).

    Samples go in as unsigned 16-bit (or 8-bit) without declaring ``bitspersample``: on 12-bit CT
    that gave 1.8 dB higher PSNR at 1 bpp than declaring 12 bits, and a peer gets its better
    setting. ``target=None`` is libjxl's lossless (modular) mode.
    """

    name: ClassVar[str] = "jpegxl"
    label: ClassVar[str] = "JPEG XL (libjxl)"
    knob = Knob("distance", "libjxl butteraugli distance (smaller = better)", 0.01, 25.0, False, True)
    lossless = True

    def __init__(self, numthreads: int = 1, effort: int | None = None):
        self.numthreads = numthreads
        self.effort = effort

    def _probe(self) -> str | None:
        return _ic_available("JPEGXL")

    @property
    def version(self) -> str:
        return _ic_version("jpegxl_version")

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        ic = _imagecodecs()
        if target is None:
            return bytes(ic.jpegxl_encode(u, lossless=True, effort=self.effort, numthreads=self.numthreads))
        d = self.knob.clamp(target)
        return bytes(ic.jpegxl_encode(u, distance=d, effort=self.effort, numthreads=self.numthreads))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        offset = (1 << (spec.bits_stored - 1)) if spec.signed else 0
        out = _imagecodecs().jpegxl_decode(data, numthreads=self.numthreads)
        return from_unsigned(out, spec, offset)


class Jpeg12Peer(BaseAdapter):
    """Baseline / extended JPEG by libjpeg-turbo: 12-bit (SOF1) for 9-12-bit data, 8-bit for 8-bit.

    ``quality`` is libjpeg's 1-100 scaling of the Annex K tables, with optimised Huffman tables.
    Data of 13-16 bits are outside the 12-bit process and skipped with a message.
    """

    name: ClassVar[str] = "jpeg12"
    label: ClassVar[str] = "JPEG 12-bit (libjpeg-turbo)"
    knob = Knob("quality", "libjpeg-turbo quality 1-100, optimised Huffman tables", 1, 100, True, False, True)
    max_bits_stored: ClassVar[int] = 12

    def _probe(self) -> str | None:
        why = _ic_available("JPEG8")
        if why:
            return why
        ic = _imagecodecs()
        probe = np.full((8, 8), 4095, dtype=np.uint16)
        if not np.array_equal(ic.jpeg8_decode(ic.jpeg8_encode(probe, level=100, bitspersample=12)), probe):
            return "this libjpeg-turbo cannot round-trip 12-bit samples"
        return None

    @property
    def version(self) -> str:
        return _ic_version("jpeg8_version")

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        q = 100 if target is None else int(self.knob.clamp(target))
        bps = 8 if spec.bits_stored <= 8 else 12
        return bytes(_imagecodecs().jpeg8_encode(u, level=q, optimize=True, bitspersample=bps))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        offset = (1 << (spec.bits_stored - 1)) if spec.signed else 0
        return from_unsigned(_imagecodecs().jpeg8_decode(data), spec, offset)


class ZlibPeer(BaseAdapter):
    """zlib (DEFLATE, level 6 as in ZIP tools) of the raw little-endian pixels: what a ZIP gives.

    The stream holds the pixels only, so ``decode`` needs ``shape``.
    """

    name: ClassVar[str] = "zlib"
    label: ClassVar[str] = "zlib of raw pixels (ZIP)"
    knob = None
    lossless = True
    lossless_only = True
    min_bits_stored: ClassVar[int] = 1

    def __init__(self, level: int = 6):
        self.level = level

    @property
    def version(self) -> str:
        return f"zlib {_zlib.ZLIB_RUNTIME_VERSION}"

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None = None) -> bytes:
        a = check_frame(frame, spec).astype(storage_dtype(spec.bits_stored, spec.signed).newbyteorder("<"))
        return _zlib.compress(np.ascontiguousarray(a).tobytes(), self.level)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        if shape is None:
            raise InvalidInputError("zlib: decode needs shape=, the stream holds raw pixels only")
        dtype = storage_dtype(spec.bits_stored, spec.signed).newbyteorder("<")
        raw = _zlib.decompress(data)
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise InvalidInputError(f"zlib: {len(raw)} bytes do not hold a {shape} frame of {dtype}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- registry

#: Every known adapter by name, in report order (medcodec first, the anchor second).
ADAPTERS: dict[str, Callable[[], BaseAdapter]] = {
    "medcodec": MedcodecAdapter,
    "medcodec-jpeg": MedcodecJpegAdapter,
    "jpeg2000": Jpeg2000Peer,
    "htj2k": Htj2kPeer,
    "jpegls": JpeglsPeer,
    "jpegxl": JpegxlPeer,
    "jpeg12": Jpeg12Peer,
    "zlib": ZlibPeer,
}

#: The peers (everything but medcodec).
PEER_NAMES: tuple[str, ...] = tuple(n for n in ADAPTERS if not n.startswith("medcodec"))


def get_adapter(name: str) -> BaseAdapter:
    """A fresh adapter by name.

    Raises
    ------
    InvalidInputError
        Unknown name (the message lists the known ones).
    """
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise InvalidInputError(f"unknown codec {name!r}, expected one of {', '.join(ADAPTERS)}") from None


def all_adapters() -> list[BaseAdapter]:
    """One adapter of every known codec (available or not; check ``is_available()``)."""
    return [factory() for factory in ADAPTERS.values()]


def library_versions() -> dict[str, str]:
    """Versions of the libraries behind the numbers (for reports and benchmark records)."""
    import platform

    import numpy

    out = {"python": platform.python_version(), "numpy": numpy.__version__}
    for mod in ("medcodec", "imagecodecs", "skimage", "scipy", "numba", "pydicom", "matplotlib"):
        try:
            m = __import__(mod)
            out[mod] = str(getattr(m, "__version__", "?"))
        except Exception:  # pragma: no cover - optional
            continue
    for adapter in all_adapters():
        if adapter.is_available() and not adapter.name.startswith("medcodec"):
            out[adapter.name] = adapter.version
    return out
