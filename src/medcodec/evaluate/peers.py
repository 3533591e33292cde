"""Codecs compared with medcodec, behind one small adapter interface.

Every codec, medcodec included, is a :class:`CodecAdapter`: a ``name``, an ``is_available()``
check with a ``why_unavailable`` message, ``supports(spec)`` (a reason string when the data are
outside what the codec handles), one rate knob described by a :class:`Knob`, and
``encode(frame, spec, *, target) -> bytes`` / ``decode(data, spec, *, shape) -> ndarray`` on one
2-D frame. ``target`` is a value of the codec's own knob; ``None`` asks for lossless coding
(or the only mode a lossless-only codec has).

Peers (each skipped with a message when its library is missing). How each library is called
(arguments, codestream format, availability probes, versions, the signed -> unsigned mapping)
lives in :mod:`medcodec.external`, shared with the lossy DICOM writer; this module adds the
adapter protocol and each knob's searchable range:

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
avif          libavif+libaom (``avif_encode``) ``quality`` 0-100, speed 6; <= 12-bit     offset
zlib          zlib (``zlib_encode``)          none: lossless only, raw little-endian      native
============  ==============================  ==========================================  =========

"offset": the codec takes unsigned samples only and gets them through
:func:`~medcodec.external.to_unsigned` / :func:`~medcodec.external.from_unsigned` (re-exported
here with :func:`~medcodec.external.check_frame`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .. import external
from ..errors import InvalidInputError
from ..external import (
    check_frame,
    from_unsigned,
    to_storage,
    to_unsigned,
    unsigned_offset,
)
from ..ratecontrol import Knob
from ..registry import BACKENDS
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
    "OPT_IN",
    "DEFAULT_CODECS",
    "get_adapter",
    "all_adapters",
    "to_unsigned",
    "from_unsigned",
    "check_frame",
    "library_versions",
    "ShiftedAdapter",
    "shifted_for",
]


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

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]: ...


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

    def _clamp(self, value: float) -> float:
        """``value`` clamped (and rounded) to the knob's range."""
        if self.knob is None:
            raise InvalidInputError(f"{self.name} has no rate knob (lossless only)")
        return self.knob.clamp(value)

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

    def for_series(self, stack: NDArray[Any], spec: PixelSpec) -> None:
        """Called once per evaluation with the whole ``(frames, rows, cols)`` stack before any frame
        is coded: a codec that codes a series as its writer does takes what it needs (default: nothing)."""

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        """One 2-D frame to bytes at knob value ``target`` (``None``: lossless)."""
        raise NotImplementedError

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        """Bytes back to one 2-D frame in the spec's storage dtype."""
        raise NotImplementedError

    def label_for(self, spec: PixelSpec) -> str:
        """The label for coding ``spec``'s data (a codec whose coding process follows the depth says which)."""
        return self.label

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


# --------------------------------------------------------------------------- medcodec


class MedcodecAdapter(BaseAdapter):
    """medcodec itself, through the public ``medcodec.encode`` / ``medcodec.decode`` only."""

    name: ClassVar[str] = "medcodec"
    label: ClassVar[str] = "medcodec (.mdc)"
    backend: ClassVar[str] = "medcodec-mdc"
    knob = BACKENDS["medcodec-mdc"].knob
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

    #: extra keyword arguments of ``medcodec.encode`` (e.g. the v2 entropy coder)
    options: ClassVar[dict[str, Any]] = {}
    #: the series' span (``range_bits``) set by :meth:`for_series`, None before
    _range_bits: int | None = None

    def for_series(self, stack: NDArray[Any], spec: PixelSpec) -> None:
        """One span for all the frames of this series (``range_bits``), the content's, as the series
        writers code (README, "Choosing a quality"), where ``medcodec.encode`` on one frame takes
        its declared depth (:func:`medcodec.codec.levelshift.default_range_bits`). ``.mdc``: the
        span ``medcodec encode`` to ``.mdc`` takes (between quantiles, at least ``bits_stored -
        4``); JPEG: the plain span of the evaluated frames (the lossy DICOM writer's CT span starts
        at the tissue floor, so its steps can be up to 2x coarser). Frames are still coded one by
        one through the public ``medcodec.encode``, with that ``range_bits``; the next call replaces it."""
        from ..codec import levelshift, mdc
        from ..codec.framecoder import validate_pixels

        self._range_bits = None
        if "range_bits" in self.options:  # the adapter's own setting wins
            return
        if self.fmt == "mdc":
            self._range_bits = mdc.series_range_bits(stack, spec.bits_stored, spec.signed,
                                                     entropy=self.options.get("entropy"))  # fmt: skip
            return
        frames, signed, _, bits = validate_pixels(np.asarray(stack), spec.bits_stored, spec.signed)  # native order
        self._range_bits = levelshift.content_range_bits(frames, *levelshift.check_range(frames, bits, signed), bits)

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        enc, _ = self._api()
        q = 100 if target is None else int(self._clamp(target))
        # JPEG: the spec carries the modality, which picks the trained table (as the DICOM writer does)
        kw: dict[str, Any] = {"spec": spec} if self.fmt == "jpeg" else {}
        if self._range_bits is not None and not {"max_error", "range_bits"} & set(self.options):
            kw["range_bits"] = self._range_bits
        return bytes(
            enc(
                check_frame(frame, spec),
                bits_stored=spec.bits_stored,
                signed=spec.signed,
                quality=q,
                format=self.fmt,
                **self.options,
                **kw,
            )
        )

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        _, dec = self._api()
        out = np.asarray(dec(data))
        if out.ndim == 3 and out.shape[0] == 1:
            out = out[0]
        return out


class MedcodecArithAdapter(MedcodecAdapter):
    """medcodec ``.mdc`` 2.1: the DCT levels range-coded with contexts, reconstruction offsets and
    the encoder-chosen decoder filters, without intra prediction (``entropy="arith", intra=False``;
    the default ``medcodec`` adds intra frames, format 2.2)."""

    name: ClassVar[str] = "medcodec-arith"
    label: ClassVar[str] = "medcodec (.mdc 2.1, no intra)"
    options: ClassVar[dict[str, Any]] = {"entropy": "arith", "intra": False}


class MedcodecJpegAdapter(MedcodecAdapter):
    """medcodec's standard-JPEG output (SOF0/SOF1), once ``format="jpeg"`` exists."""

    name: ClassVar[str] = "medcodec-jpeg"
    label: ClassVar[str] = "medcodec (standard JPEG)"
    fmt: ClassVar[str] = "jpeg"
    backend: ClassVar[str] = "medcodec-jpeg"
    max_bits_stored: ClassVar[int] = BACKENDS["medcodec-jpeg"].bits[1]


# --------------------------------------------------------------------------- peers


class _ExternalPeer(BaseAdapter):
    """A peer backed by one backend of :data:`medcodec.registry.BACKENDS` (knob, bit depths,
    availability and version from there; how the library is called from :mod:`medcodec.external`)."""

    backend: ClassVar[str] = ""  #: name in :data:`medcodec.registry.BACKENDS`

    def _probe(self) -> str | None:
        return BACKENDS[self.backend].why_unavailable()

    @property
    def version(self) -> str:
        return BACKENDS[self.backend].version()


class Jpeg2000Peer(_ExternalPeer):
    """JPEG 2000 Part 1 by OpenJPEG, irreversible 9/7 with fixed-quality (PSNR) rate control.

    The knob is OpenJPEG's target PSNR with peak ``2**bits_stored - 1``, the same PSNR this
    package reports (:func:`medcodec.external.jpeg2k_encode`). ``target=None`` codes losslessly
    (reversible 5/3).
    """

    name: ClassVar[str] = "jpeg2000"
    label: ClassVar[str] = "JPEG 2000 (OpenJPEG)"
    backend: ClassVar[str] = "openjpeg"
    min_bits_stored: ClassVar[int] = BACKENDS["openjpeg"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["openjpeg"].bits[1]
    knob = BACKENDS["openjpeg"].knob
    lossless = True

    def __init__(self, numthreads: int = 1):
        self.numthreads = numthreads

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        psnr_db = None if target is None else float(self._clamp(target))
        return external.jpeg2k_encode(to_storage(frame, spec), bits_stored=spec.bits_stored, psnr_db=psnr_db,
                               numthreads=self.numthreads)  # fmt: skip

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.jpeg2k_decode(data, numthreads=self.numthreads), spec, 0)


class Htj2kPeer(_ExternalPeer):
    """High-throughput JPEG 2000 (Part 15) by OpenJPH.

    No rate control in the library: the knob is OpenJPH's irreversible quantisation step,
    relative to the range of the array's container (:func:`medcodec.external.htj2k_encode`);
    rates are reached by searching the step. ``target=None`` codes losslessly (reversible 5/3).
    """

    name: ClassVar[str] = "htj2k"
    label: ClassVar[str] = "HTJ2K (OpenJPH)"
    backend: ClassVar[str] = "openjph"
    min_bits_stored: ClassVar[int] = BACKENDS["openjph"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["openjph"].bits[1]
    knob = BACKENDS["openjph"].knob
    lossless = True

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        step = None if target is None else self._clamp(target)
        return external.htj2k_encode(to_storage(frame, spec), step=step)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.htj2k_decode(data), spec, 0)


class JpeglsPeer(_ExternalPeer):
    """JPEG-LS (ISO 14495-1) by CharLS: lossless, or near-lossless with NEAR = max abs error."""

    name: ClassVar[str] = "jpegls"
    label: ClassVar[str] = "JPEG-LS (CharLS)"
    backend: ClassVar[str] = "charls"
    min_bits_stored: ClassVar[int] = BACKENDS["charls"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["charls"].bits[1]
    knob = BACKENDS["charls"].knob
    lossless = True

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        return external.jpegls_encode(u, near=0 if target is None else int(self._clamp(target)))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.jpegls_decode(data), spec, unsigned_offset(spec))


class JpegxlPeer(_ExternalPeer):
    """JPEG XL by libjxl (VarDCT), ``distance`` = butteraugli distance (smaller = better).

    ``target=None`` is libjxl's lossless (modular) mode (:func:`medcodec.external.jpegxl_encode`).
    """

    name: ClassVar[str] = "jpegxl"
    label: ClassVar[str] = "JPEG XL (libjxl)"
    backend: ClassVar[str] = "libjxl"
    min_bits_stored: ClassVar[int] = BACKENDS["libjxl"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["libjxl"].bits[1]
    knob = BACKENDS["libjxl"].knob
    lossless = True

    def __init__(self, numthreads: int = 1, effort: int | None = None):
        self.numthreads = numthreads
        self.effort = effort

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        distance = None if target is None else self._clamp(target)
        return external.jpegxl_encode(u, distance=distance, effort=self.effort, numthreads=self.numthreads)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.jpegxl_decode(data, numthreads=self.numthreads), spec, unsigned_offset(spec))


class Jpeg12Peer(_ExternalPeer):
    """Baseline / extended JPEG by libjpeg-turbo: 12-bit (SOF1) for 9-12-bit data, 8-bit for 8-bit.

    ``quality`` is libjpeg's 1-100 scaling of the Annex K tables, with optimised Huffman tables.
    Data of 13-16 bits are outside the 12-bit process and skipped with a message.
    """

    name: ClassVar[str] = "jpeg12"
    label: ClassVar[str] = "JPEG 12-bit (libjpeg-turbo)"
    backend: ClassVar[str] = "libjpeg-turbo"
    min_bits_stored: ClassVar[int] = BACKENDS["libjpeg-turbo"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["libjpeg-turbo"].bits[1]
    knob = BACKENDS["libjpeg-turbo"].knob

    def label_for(self, spec: PixelSpec) -> str:
        # 8-bit data is coded as 8-bit baseline (SOF0): "12-bit" was wrong there (an outside audit)
        return "JPEG 8-bit baseline (libjpeg-turbo)" if spec.bits_stored <= 8 else self.label

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        q = 100 if target is None else int(self._clamp(target))
        return external.jpeg8_encode(u, bits_stored=spec.bits_stored, quality=q)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.jpeg8_decode(data), spec, unsigned_offset(spec))


class AvifPeer(_ExternalPeer):
    """AVIF (AV1 intra) by libavif + libaom at speed 6, monochrome 8 or 12 bits: the strongest
    block-transform anchor (variable blocks, intra prediction, loop filters), ~25x slower than
    OpenJPEG. ``quality`` is libavif's 0-100; ``target=None`` is lossless."""

    name: ClassVar[str] = "avif"
    label: ClassVar[str] = "AVIF (AV1 intra, libaom speed 6)"
    backend: ClassVar[str] = "avif"
    min_bits_stored: ClassVar[int] = BACKENDS["avif"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["avif"].bits[1]
    knob = BACKENDS["avif"].knob

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        u, _ = to_unsigned(frame, spec)
        return external.avif_encode(u, quality=None if target is None else int(self._clamp(target)))

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        return from_unsigned(external.avif_decode(data), spec, unsigned_offset(spec))


class ZlibPeer(_ExternalPeer):
    """zlib (DEFLATE, level 6 as in ZIP tools) of the raw little-endian pixels: what a ZIP gives.

    The stream holds the pixels only, so ``decode`` needs ``shape``.
    """

    name: ClassVar[str] = "zlib"
    label: ClassVar[str] = "zlib of raw pixels (ZIP)"
    backend: ClassVar[str] = "zlib"
    min_bits_stored: ClassVar[int] = BACKENDS["zlib"].bits[0]
    max_bits_stored: ClassVar[int] = BACKENDS["zlib"].bits[1]
    knob = None
    lossless = True
    lossless_only = True

    def __init__(self, level: int = 6):
        self.level = level

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None = None) -> bytes:
        return external.zlib_encode(to_storage(frame, spec), level=self.level)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        if shape is None:
            raise InvalidInputError("zlib: decode needs shape=, the stream holds raw pixels only")
        return external.zlib_decode(data, shape=shape, dtype=storage_dtype(spec.bits_stored, spec.signed))


# --------------------------------------------------------------------------- shifted series


class ShiftedAdapter:
    """``inner``, a codec of at most ``bits`` bits, given a series that declares more bits than its
    values span: each stored value ``v`` is coded as ``v - low`` (unsigned, ``bits`` bits) and
    decoded back, as the lossy DICOM writer maps such a series (:mod:`medcodec.dicom.mapping`, the
    offset rule). Without it the 12-bit JPEG codecs (medcodec's and libjpeg-turbo) were left out of
    every evaluation of a CT or MR declaring 16 bits for 12-bit values, the common case (dicompyler's
    CT, -1000..1457 HU, an evaluation of 2026-12-03). Metrics stay in the source's stored units."""

    def __init__(self, inner: BaseAdapter, low: int, bits: int) -> None:
        self.inner, self.low, self.bits = inner, int(low), int(bits)
        self.name: str = inner.name
        self.label: str = f"{inner.label}, values {-self.low:+d} in {self.bits} bits"
        self.knob: Knob | None = inner.knob
        self.lossless: bool = inner.lossless
        self.lossless_only: bool = inner.lossless_only

    def coded(self, spec: PixelSpec) -> PixelSpec:
        """The spec of the shifted values the inner codec is given."""
        import dataclasses

        return dataclasses.replace(spec, bits_stored=self.bits, signed=False)

    def _shift(self, pixels: NDArray[Any]) -> NDArray[Any]:
        return (np.asarray(pixels, np.int64) - self.low).astype(storage_dtype(self.bits, False))

    def is_available(self) -> bool:
        return self.inner.is_available()

    @property
    def why_unavailable(self) -> str | None:
        return self.inner.why_unavailable

    @property
    def version(self) -> str:
        return self.inner.version

    def supports(self, spec: PixelSpec) -> str | None:
        return None

    def for_series(self, stack: NDArray[Any], spec: PixelSpec) -> None:
        self.inner.for_series(self._shift(stack), self.coded(spec))

    def encode(self, frame: NDArray[Any], spec: PixelSpec, *, target: float | None) -> bytes:
        return self.inner.encode(self._shift(frame), self.coded(spec), target=target)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> NDArray[Any]:
        out = np.asarray(self.inner.decode(data, self.coded(spec), shape=shape), np.int64) + self.low
        return out.astype(storage_dtype(spec.bits_stored, spec.signed))

    def label_for(self, spec: PixelSpec) -> str:
        return self.label

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "label": self.label, "shifted": {"low": self.low, "bits": self.bits}}


def shifted_for(adapter: BaseAdapter, stack: NDArray[Any], spec: PixelSpec) -> ShiftedAdapter | None:
    """``adapter`` given ``stack`` shifted into its depth (:class:`ShiftedAdapter`) when it refuses
    ``spec`` only for declaring more bits than it codes and the values span fewer; else ``None``."""
    if spec.bits_stored <= adapter.max_bits_stored or adapter.min_bits_stored > adapter.max_bits_stored:
        return None
    values = np.asarray(stack)
    low, high = int(values.min()), int(values.max())
    if high - low >= 1 << adapter.max_bits_stored:
        return None
    shifted = ShiftedAdapter(adapter, low, adapter.max_bits_stored)
    return shifted if adapter.supports(shifted.coded(spec)) is None else None


# --------------------------------------------------------------------------- registry

#: Every known adapter by name, in report order (medcodec first, the anchor second). Each adapter
#: names its backend in :data:`medcodec.registry.BACKENDS` (``adapter.backend``), where its knob,
#: bit depths and availability are declared.
ADAPTERS: dict[str, Callable[[], BaseAdapter]] = {
    "medcodec": MedcodecAdapter,
    "medcodec-arith": MedcodecArithAdapter,
    "medcodec-jpeg": MedcodecJpegAdapter,
    "jpeg2000": Jpeg2000Peer,
    "htj2k": Htj2kPeer,
    "jpegls": JpeglsPeer,
    "jpegxl": JpegxlPeer,
    "jpeg12": Jpeg12Peer,
    "avif": AvifPeer,
    "zlib": ZlibPeer,
}

#: The peers (everything but medcodec).
PEER_NAMES: tuple[str, ...] = tuple(n for n in ADAPTERS if not n.startswith("medcodec"))

#: Codecs left out of a run unless named (``--codecs``): AVIF (libaom, speed 6) spends about as
#: much CPU as all the other codecs together in a default ``medcodec evaluate`` (docs/evaluation.md).
OPT_IN: tuple[str, ...] = ("avif",)

#: What ``medcodec evaluate`` and ``benchmarks/run.py`` run when no ``--codecs`` is given.
DEFAULT_CODECS: tuple[str, ...] = tuple(n for n in ADAPTERS if n not in OPT_IN)


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
