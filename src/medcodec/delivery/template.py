"""Live files for the later instances of a series, from one of its instances coded in full.

Where live CPU went on small images (``docs/delivery.md``, "Small images"): a 256x256 MR instance
cost ~3.3 ms in an encoder process, of which the JPEG kernel was ~0.6 ms; the rest was pydicom
``Dataset`` work on ~300 elements (reading, the preset's edits, writing), the same for every
instance of a series. Yet from one instance of a series to the next only a few elements differ
(instance number, position, window, a few private values, the pixels), and what the preset does
to an instance depends on few of its elements.

:class:`SeriesTemplate` keeps, for one series and preset, an instance's elements as they were read
and as the full path (:meth:`.Preset.encode_instance`) wrote them. Another instance of the series
is written from it when its elements are the template's, byte for byte, except:

* elements the preset does not read (:func:`preset_reads` is false) and writes as they are (the
  template's output of the element was its own bytes converted, :func:`.fastwrite.raw_element_bytes`):
  written from the instance's own bytes, converted the same way; group lengths (never written);
* the SOP Instance UID and the pixel data: coded (:func:`medcodec.dicom.compress.code_frames`, the
  full path's own function), and what follows from them (pixel data, lossy ratio, Derivation
  Description, Source Image Sequence, SOP Instance UIDs, padding attributes, the preview's
  comment) made with the full path's own helpers (``lossy_ratios``, ``derivation_description``,
  ``preview_comment``, ``declare_coded_padding``, ``source_ratio``, ``encapsulate``); the Source
  Image Sequence as written for the template's instance, its referenced UID replaced;

anything else (an element the preset reads that differs, an element more or less, another file
meta) is left to the full path. The bytes are those of the full path: a template is kept only when
it rebuilds its own instance exactly; :func:`encode_live` builds it on a series' second instance
(a series of one image never pays for it), checks it against the full path on the next instance
and on every :data:`CHECK_EVERY`-th one after, and drops it on a difference (logged: it would be a
bug). ``tests/delivery/test_template.py`` compares both paths on every instance of the real series,
on randomly damaged headers, and checks :func:`preset_reads` against what the preset's code touches.
"""

from __future__ import annotations

import logging
import struct
from copy import copy
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO

from ..dicom import SeriesMapping, get_syntax, pixel_spec_from_dataset
from ..dicom._lenient import source_values_as_is
from ..dicom.compress import code_frames, declare_coded_padding, source_ratio, stored_values
from ..dicom.iod import rescale_must_be_identity
from ..dicom.mapping import remap_value_attributes
from ..dicom.write import _values, lossy_ratios
from ..errors import DicomError
from ..ratecontrol import RateTarget
from ..registry import TransferSyntax, transfer_syntax
from ..spec import PixelSpec
from .fastread import _elements, element_end, element_spans, first_element_agrees, read_native
from .fastwrite import _element_bytes, raw_element_bytes
from .presets import (
    EncodedInstance,
    Preset,
    _coding_name,
    _derived_uid,
    derivation_description,
    preview_comment,
    rendition_ratio,
)

__all__ = ["SeriesTemplate", "encode_live", "preset_reads", "CHECK_EVERY"]

log = logging.getLogger(__name__)

#: Every this many instances written from a template, one is also written in full and compared.
#: The full path costs 3-4 template writes (a 256x256 MR: ~6 against ~1.6 ms); at 64 the checks
#: took ~6 % of an encoder process's time on a live MR archive (py-spy); at 256, a quarter of that
#: (the same count, not measured again). The
#: template is also checked when it is built and on the instance after, and compares every element
#: it copies, so this check is for what no test foresaw, not the main guard.
CHECK_EVERY = 256
_MAX_TEMPLATES = 64
#: A template that could not write this many instances in a row is built again from the next one
#: (at most _MAX_BUILDS times per series and process).
_REBUILD_AFTER = 3
_MAX_BUILDS = 4

_SOP_INSTANCE_UID = 0x00080018
_PIXEL_DATA = 0x7FE00010
_META_UID = 0x00020003
_META_LENGTH = 0x00020000
#: Enhanced objects get no template: their copies name the source inside these groups.
_FUNCTIONAL_GROUPS = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
#: Elements outside group 0028 that the preset's code reads or writes (image class, Image Type,
#: the derivation and lossy attributes, UIDs, the preview's labels, the character set).
_READ_TAGS = frozenset(
    {
        0x00080005,  # Specific Character Set
        0x00080008,  # Image Type
        0x00080016,  # SOP Class UID
        0x00080018,  # SOP Instance UID
        0x00080060,  # Modality
        0x00081030,  # Study Description
        0x0008103E,  # Series Description
        0x00082111,  # Derivation Description
        0x00082112,  # Source Image Sequence
        0x00089215,  # Derivation Code Sequence
        0x00180015,  # Body Part Examined
        0x00181030,  # Protocol Name
        0x00181100,  # Reconstruction Diameter (CT-neuro by the field)
        0x0020000E,  # Series Instance UID
        0x00204000,  # Image Comments
        0x00409096,  # Real World Value Mapping Sequence (follows the mapping: dicom.mapping.remap_real_world_values)
        0x00880200,  # Icon Image Sequence (an encapsulated icon is decoded: dicom.compress.native_icons)
    }
)
#: Group 0028 elements the preset's code does not use for anything it writes: the windows (in
#: output units, which the mapping's rescale preserves; read into the PixelSpec, used by .mdc only).
_UNREAD_IN_0028 = frozenset({0x00281050, 0x00281051, 0x00281055})
_READ_GROUPS = frozenset({0x0002, 0x0028, 0x5200, 0x7FE0, 0xFFFC})
_LOSSY_OUT = (0x00080018, 0x00082111, 0x00082112, 0x00282112, 0x7FE00010)
_PADDING = (0x00280120, 0x00280121)
_UL = struct.Struct("<L")
_META_GROUP_LENGTH = struct.Struct("<HH2sHL")  # (0002,0000) UL, explicit VR little endian
_UID_CHARACTERS = frozenset(b"0123456789.")


def preset_reads(tag: int) -> bool:
    """Whether a lossy preset's code (reading, coding, the derivation attributes) reads or writes
    the top-level element ``tag`` of the original, so that an instance differing there from the
    template is written in full (private creators included: private elements' VRs follow them)."""
    group = tag >> 16
    if tag & 0xFFFF == 0 and group > 6:
        return False  # a group length: never written (as pydicom), never read
    if group in _READ_GROUPS:
        return tag not in _UNREAD_IN_0028
    if group & 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
        return True
    return tag in _READ_TAGS


@dataclass
class _Kept:
    """A series' template in :func:`encode_live`, and how it has fared."""

    template: SeriesTemplate | None
    verified: bool = False  # checked against the full path on an instance other than its own
    applied: int = 0
    misses: int = 0  # instances in a row it could not write
    builds: int = 0
    wrong: bool = False  # it differed from the full path: the series is written in full from now on


_TEMPLATES: dict[tuple[Any, ...], _Kept] = {}


class SeriesTemplate:
    """One series' first instance under one lossy preset, as read and as written (module docstring).

    Build with :meth:`build`; :meth:`apply` writes another instance of the series or says it cannot.
    """

    def __init__(self) -> None:
        self.preset: Preset
        self.mapping: SeriesMapping
        self.implicit: bool
        self.meta_in: dict[int, bytes]
        self.tags: tuple[int, ...]
        self.in_bytes: list[bytes]
        self.varying: frozenset[int]  # elements (indices in tags) that differed in an instance
        self._plan: tuple[tuple[bytes | None, int, int], ...] | None
        self.passable: frozenset[int]
        self.dropped: frozenset[int]
        self.out: dict[int, bytes]
        self.out_meta: list[tuple[int, bytes]]
        self.per_instance: frozenset[int]
        self.earlier_ratios: list[Any]
        self.padding: list[DataElement]
        self.vrs: dict[int, str]
        self.bits_allocated: int
        self.source_sequence: _Splice
        self.creators: dict[int, Any]
        self.encodings: Any
        self.image_comments: str
        self.converted: Any
        self.spec: PixelSpec
        self.shape: tuple[int, int]
        self.ts: TransferSyntax
        self.target: RateTarget
        self.quality: float
        self.entry: Any

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, preset: Preset, mapping: SeriesMapping, data: bytes, encoded: EncodedInstance
    ) -> SeriesTemplate | None:
        """A template from an original and what the full path wrote for it, or ``None`` when this kind
        of instance is not written from templates (not a lossy coded single-frame native file, or the
        template does not rebuild ``encoded`` exactly)."""
        entry = encoded.entry
        if not entry.lossy or entry.passthrough or not isinstance(data, bytes):
            return None
        ds = read_native(data)
        if ds is None or "NumberOfFrames" in ds or any(k in ds for k in _FUNCTIONAL_GROUPS):
            return None  # enhanced: the source is referenced inside the functional groups (reference_source)
        if rescale_must_be_identity(ds) and not mapping.is_identity:
            return None  # DX / mammography: the mapping goes into each instance's windows and VOI LUTs
        self = cls()
        self.preset, self.mapping, self.entry = preset, mapping, entry
        self.implicit = bool(ds.original_encoding[0])
        meta_end = _meta_end(data)
        out = encoded.data
        out_meta_end = _meta_end(out)
        if meta_end is None or out_meta_end is None or out[:128] != data[:128]:
            return None
        meta_in = _meta_elements(data, meta_end)
        out_meta = _meta_elements(out, out_meta_end)
        spans = element_spans(data, meta_end, self.implicit)
        out_spans = element_spans(out, out_meta_end, False)
        if meta_in is None or out_meta is None or spans is None or out_spans is None:
            return None
        self.meta_in = {t: b for t, b in meta_in.items() if t not in (_META_LENGTH, _META_UID)}
        self.out_meta = [(t, b) for t, b in out_meta.items() if t != _META_LENGTH]
        self.tags = tuple(t for t, _, _ in spans)
        # the pixels are always the instance's own (and not worth keeping)
        self.in_bytes = [b"" if t == _PIXEL_DATA else data[s:e] for t, s, e in spans]
        self.varying, self._plan = frozenset(), None
        self.out = {t: out[s:e] for t, s, e in out_spans}
        with source_values_as_is():
            self.spec = spec = pixel_spec_from_dataset(ds)
            point = preset.operating_point(ds)
            if point is None or point.quality is None:
                return None
            syntax = get_syntax(point.syntax)
            bits, _ = syntax.target(spec.bits_stored, spec.signed)
            self.ts = transfer_syntax(syntax.uid(bits))
            self.quality = float(point.quality)
            self.target = RateTarget.of(quality=self.quality)
            rows, cols = int(spec.extra.get("rows", 0) or 0), int(spec.extra.get("columns", 0) or 0)
            if (
                int(spec.extra.get("bits_allocated", 0) or 0) != 16
                or int(ds.get("SamplesPerPixel", 1) or 1) != 1
                or int(spec.extra.get("number_of_frames", 0) or 0) != 1
                or rows * cols == 0
            ):
                return None
            self.shape = (rows, cols)
            self.earlier_ratios = _values(ds, "LossyImageCompressionRatio")
            self.padding = [copy(ds[t]) for t in _PADDING if t in ds]
            self.encodings = ds.get("SpecificCharacterSet", "iso8859")
            self.image_comments = str(ds.get("ImageComments", "") or "")  # the same in every instance it takes
            source_uid = str(ds.get("SOPInstanceUID", ""))
        if self.padding and not mapping.is_identity:  # as write_coded: remapped, then declared
            remapped = Dataset()
            for elem in self.padding:
                remapped._dict[elem.tag] = elem
            remap_value_attributes(remapped, mapping)
            self.padding = [remapped[t] for t in _PADDING if t in remapped]
        self.converted = convert_encodings(self.encodings or [default_encoding])
        self.creators = {}
        for (tag, _, _), raw in zip(spans, self.in_bytes):
            if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
                self.creators[tag] = _value(raw, self.implicit)  # block (gggg,00xx) -> its creator
        per_instance = set(_LOSSY_OUT)
        if preset.label:
            per_instance.add(0x00204000)  # the preview's comment gives its ratio
        if mapping.padding is not None:
            per_instance.update(_PADDING)  # declared as the padding decodes
        self.per_instance = frozenset(per_instance)
        written = dict(self.out)
        for tag in per_instance:  # made for each instance (apply)
            self.out.pop(tag, None)
        if any(t not in written for t in _LOSSY_OUT):
            return None
        self.vrs = {t: written[t][4:6].decode("ascii") for t in (0x00082111, 0x00282112, 0x00204000) if t in written}
        allocated = written.get(0x00280100, b"")  # (0028,0100) US, as the full path wrote it
        self.bits_allocated = struct.unpack_from("<H", allocated, 8)[0] if len(allocated) == 10 else 0
        sequence = _Splice.of(written[0x00082112], source_uid)
        if sequence is None or self.bits_allocated not in (8, 16):
            return None
        self.source_sequence = sequence
        passable, dropped = set(), set()
        for tag, raw in zip(self.tags, self.in_bytes):
            if preset_reads(tag):
                continue
            if tag not in self.out:  # not written whatever its value (group lengths)
                dropped.add(tag)
                continue
            found = _raw_element(raw, self.implicit)
            if found is not None and raw_element_bytes(found, self.implicit, dict(self.creators)) == self.out[tag]:
                passable.add(tag)
        self.passable = frozenset(passable)
        self.dropped = frozenset(dropped)
        try:
            again = self.apply(data)
        except Exception as exc:  # (a template that cannot rebuild its instance is not kept)
            log.debug("no series template: %s: %s", type(exc).__name__, exc)
            return None
        if again is None or again.data != encoded.data or again.entry != entry:
            return None
        return self

    # ------------------------------------------------------------------ writing

    def apply(self, data: bytes, meta: _Meta | None = None) -> EncodedInstance | None:
        """``data`` (another instance of the series) written as the full path writes it, or ``None``
        (it differs from the template where the preset reads: write it in full). ``meta``:
        :func:`_read_meta` of ``data``, when the caller has it."""
        meta = meta if meta is not None else _read_meta(data)
        walked = None if meta is None else self._walk(data, meta)
        if walked is None:
            return None
        changed, sop, pixels = walked
        frames = self._frames(pixels)
        if frames is None:
            return None
        out = dict(self.out)
        creators = dict(self.creators)
        for raw in changed:
            elem = _raw_element(raw, self.implicit)
            written = None if elem is None else raw_element_bytes(elem, self.implicit, creators)
            if written is None:
                return None
            out[int(elem.tag)] = written  # type: ignore[union-attr]
        source_uid = _uid_of(sop, self.implicit)
        if source_uid is None:
            return None
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = False, True
        ratio, uid = self._per_instance(out, source_uid, frames, buffer)
        new_uid = _ui_element(_META_UID, uid)  # as pydicom writes a UID (ASCII, NUL-padded)
        meta_parts = [new_uid if t == _META_UID else b for t, b in self.out_meta]
        meta_body = b"".join(meta_parts)
        group = _META_GROUP_LENGTH.pack(2, 0, b"UL", 4, len(meta_body))
        written = b"".join([data[:128], b"DICM", group, meta_body, *(out[t] for t in sorted(out))])
        entry = replace(
            self.entry,
            sop_instance_uid=source_uid,
            rendition_sop_instance_uid=str(uid),
            source_bytes=len(data),
            bytes=len(written),
            ratio=ratio,
        )
        return EncodedInstance(written, entry)

    def _walk(self, data: bytes, meta: _Meta) -> tuple[list[bytes], bytes, bytes | memoryview] | None:
        """``data``'s elements along the template's: ``(elements that differ and are passable, SOP
        Instance UID element, Pixel Data element (a view of ``data``))``, or ``None`` (it differs
        where the preset reads)."""
        if meta.implicit != self.implicit:
            return None
        if {t: b for t, b in meta.elements.items() if t not in (_META_LENGTH, _META_UID)} != self.meta_in:
            return None
        if not first_element_agrees(data, meta.end, self.implicit):
            return None
        # walk the template's elements along the file: an element with the template's bytes is
        # compared, not parsed; only the others are (the same rules as fastread.element_spans).
        # Runs of elements that have never differed are compared as one slice (_plan); a run that
        # differs is walked element by element, and what differed leaves the runs from then on
        changed: list[bytes] = []
        sop: bytes | None = None
        pixels: bytes | memoryview | None = None
        pos = meta.end
        tags, in_bytes, implicit = self.tags, self.in_bytes, self.implicit
        differed: list[int] = []
        for run, first, stop in self._plan or self._make_plan():
            if run is not None and data[pos : pos + len(run)] == run:
                pos += len(run)
                continue
            for i in range(first, stop):
                theirs = in_bytes[i]
                size = len(theirs)
                if size and data[pos : pos + size] == theirs:
                    pos += size
                    continue
                differed.append(i)
                tag = tags[i]
                found = element_end(data, pos, implicit)
                if found is None or found[0] != tag:
                    return None
                if tag == _PIXEL_DATA:  # not copied: only read (_frames)
                    pixels, pos = memoryview(data)[pos : found[1]], found[1]
                    continue
                raw = data[pos : found[1]]
                pos = found[1]
                if tag == _SOP_INSTANCE_UID:
                    sop = raw
                elif tag in self.passable:
                    changed.append(raw)
                elif tag not in self.dropped:
                    return None
        if not self.varying.issuperset(differed):
            self.varying = self.varying.union(differed)
            self._plan = None  # made again on the next instance
        if pos != len(data):
            return None
        sop = sop if sop is not None else self.in_bytes[self.tags.index(_SOP_INSTANCE_UID)]
        pixels = pixels if pixels is not None else self.in_bytes[self.tags.index(_PIXEL_DATA)]
        return changed, sop, pixels

    def _make_plan(self) -> tuple[tuple[bytes | None, int, int], ...]:
        """How :meth:`_walk` goes along the template's elements: ``(run, first, stop)`` items, ``run``
        the bytes of elements ``first..stop-1`` (compared at once) or ``None`` (one element that
        differed in an instance before, or the pixel data, compared and parsed alone)."""
        plan: list[tuple[bytes | None, int, int]] = []
        first = 0
        for i, theirs in enumerate(self.in_bytes):
            if not theirs or i in self.varying:
                if first < i:
                    plan.append((b"".join(self.in_bytes[first:i]), first, i))
                plan.append((None, i, i + 1))
                first = i + 1
        if first < len(self.in_bytes):
            plan.append((b"".join(self.in_bytes[first:]), first, len(self.in_bytes)))
        self._plan = tuple(plan)
        return self._plan

    def _frames(self, element: bytes | memoryview) -> Any:
        """The stored values of a native Pixel Data element (as :func:`.fastwrite.native_frames`)."""
        head = 8 if self.implicit else 12
        rows, cols = self.shape
        need = rows * cols * 2
        if len(element) - head < need:
            return None
        arr = np.frombuffer(element, dtype="<i2" if self.spec.signed else "<u2", count=rows * cols, offset=head)
        return stored_values(arr.reshape(1, rows, cols), self.spec)

    def _per_instance(
        self, out: dict[int, bytes], source_uid: str, frames: Any, buffer: DicomBytesIO
    ) -> tuple[float, str]:
        """Code the pixels; put in ``out`` the elements that follow from them and from the SOP
        Instance UID, made with the full path's own functions; return the ratio and the new UID."""
        coded = code_frames(frames, self.spec, self.ts, self.target, self.mapping, 1)
        rows, cols = self.shape
        ratio = rendition_ratio(1, rows, cols, self.bits_allocated, coded.nbytes)
        uid = _derived_uid(self.preset.name, source_uid, _coding_name(self.mapping, self.quality, None))

        def put(tag: int, vr: str, value: Any, **flags: Any) -> None:
            elem = DataElement(tag, vr, value)
            for name, flag in flags.items():
                setattr(elem, name, flag)
            out[tag] = _written(elem, self.converted, buffer)

        out[_SOP_INSTANCE_UID] = _ui_element(_SOP_INSTANCE_UID, uid)
        put(0x00082111, self.vrs[0x00082111], derivation_description(self.preset, self.mapping, self.quality, ratio))
        out[0x00082112] = self.source_sequence.with_uid(source_uid)
        put(0x00282112, self.vrs[0x00282112], lossy_ratios(self.earlier_ratios, source_ratio(coded, frames, self.spec)))
        if 0x00204000 in self.per_instance:
            put(0x00204000, self.vrs.get(0x00204000, "LT"), preview_comment(self.preset, ratio, self.image_comments))
        put(_PIXEL_DATA, "OB", encapsulate(coded.streams, has_bot=True), is_undefined_length=True)
        if self.mapping.padding is not None:
            padding = Dataset()
            for elem in self.padding:
                padding._dict[elem.tag] = copy(elem)
            declare_coded_padding(padding, coded, frames, self.spec, self.mapping)
            for declared in padding._dict.values():
                put(declared.tag, str(declared.VR), declared.value)
        return ratio, uid


@dataclass(frozen=True)
class _Splice:
    """The Source Image Sequence as written for the template's instance, ready to take another
    instance's SOP Instance UID in the item that references it (the last one): the UID element
    replaced, and the lengths of the sequence and of that item (when defined) moved with it."""

    data: bytes
    at: int  # where the Referenced SOP Instance UID element starts
    size: int  # its length
    length_fields: tuple[int, ...]  # where the defined lengths that contain it are

    @classmethod
    def of(cls, data: bytes, uid: str) -> _Splice | None:
        """From the written element and the UID it references, or ``None`` (not as expected)."""
        if len(data) < 12 or data[4:8] != b"SQ\0\0":
            return None
        fields = []
        if _UL.unpack_from(data, 8)[0] != 0xFFFFFFFF:
            fields.append(8)
        pos, last = 12, -1
        while pos + 8 <= len(data) and data[pos : pos + 4] == b"\xfe\xff\x00\xe0":
            last = pos
            length = _UL.unpack_from(data, pos + 4)[0]
            if length == 0xFFFFFFFF:
                return None  # an item of undefined length before ours: not spliced
            pos += 8 + length
        if last < 0:
            return None
        needle = _ui_element(0x00081155, uid)
        at = data.find(needle, last + 8)
        if at < 0 or data.find(needle, at + 1) >= 0:
            return None
        fields.append(last + 4)
        return cls(data, at, len(needle), tuple(fields))

    def with_uid(self, uid: str) -> bytes:
        """The element referencing ``uid`` instead."""
        element = _ui_element(0x00081155, uid)
        delta = len(element) - self.size
        out = bytearray(self.data[: self.at] + element + self.data[self.at + self.size :])
        for at in self.length_fields:
            _UL.pack_into(out, at, _UL.unpack_from(out, at)[0] + delta)
        return bytes(out)


def _ui_element(tag: int, uid: str) -> bytes:
    """A UI element in explicit VR little endian, as pydicom writes it (value padded with NUL)."""
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, b"UI", len(value)) + value


def _uid_of(raw: bytes, implicit: bool) -> str | None:
    """A UI element's value as pydicom reads it (``str`` of the converted element): read directly
    when it is one UID of digits and dots (pydicom strips the trailing NUL or spaces), else by
    pydicom."""
    if len(raw) >= 8:
        if implicit:
            length = _UL.unpack_from(raw, 4)[0]
        else:
            length = struct.unpack_from("<H", raw, 6)[0] if raw[4:6] == b"UI" else -1
        value = raw[8:].rstrip(b"\0 ")
        if length == len(raw) - 8 and value and _UID_CHARACTERS.issuperset(value):
            return value.decode("ascii")
    elem = _raw_element(raw, implicit)
    if elem is None:
        return None
    with source_values_as_is():
        return str(convert_raw_data_element(elem).value or "")


def encode_live(preset: Preset, data: bytes, mapping: SeriesMapping | None, *, jobs: int = 1) -> EncodedInstance:
    """:meth:`.Preset.encode_instance` with ``measure=False`` (live delivery), from the series'
    template when there is one for this instance (module docstring): the same bytes, less work."""

    def full() -> EncodedInstance:
        return preset.encode_instance(data, mapping=mapping, measure=False, jobs=jobs)

    if mapping is None or not preset.lossy or not isinstance(data, bytes):
        return full()
    meta = _read_meta(data)
    if meta is None:
        return full()
    key = (preset.name, mapping, _series_key(data, meta.end, meta.implicit))
    kept = _TEMPLATES.get(key)
    if kept is None:  # the series' first instance here: a series of one (a radiograph) never pays for a template
        if len(_TEMPLATES) >= _MAX_TEMPLATES:
            _TEMPLATES.clear()
        _TEMPLATES[key] = _Kept(None)
        return full()
    if kept.wrong:
        return full()
    written = None if kept.template is None else _try(kept.template, data, meta)
    if written is None:
        encoded = full()
        kept.misses += 1
        # built on the series' second instance; again when the one it was built from is unlike the
        # rest (a localizer, other attributes) and it could not write _REBUILD_AFTER in a row
        if (kept.builds == 0 or kept.misses >= _REBUILD_AFTER) and kept.builds < _MAX_BUILDS:
            kept.template, kept.verified, kept.misses = _build(preset, mapping, data, encoded), False, 0
            kept.builds += 1
        return encoded
    kept.misses = 0
    kept.applied += 1
    if kept.verified and kept.applied % CHECK_EVERY:
        return written
    encoded = full()
    if written.data != encoded.data or written.entry != encoded.entry:
        log.warning("series template of %s differs from the full path: dropped", preset.name)
        kept.template, kept.wrong = None, True
    else:
        kept.verified = True
    return encoded


def _build(preset: Preset, mapping: SeriesMapping, data: bytes, encoded: EncodedInstance) -> SeriesTemplate | None:
    try:
        return SeriesTemplate.build(preset, mapping, data, encoded)
    except Exception as exc:  # (no template: the full path stays)
        log.debug("no series template: %s: %s", type(exc).__name__, exc)
        return None


def _try(template: SeriesTemplate, data: bytes, meta: _Meta) -> EncodedInstance | None:
    try:
        written = template.apply(data, meta)
    except Exception as exc:  # (the full path decides, and reports, what is wrong with the file)
        log.debug("series template not applied: %s: %s", type(exc).__name__, exc)
        return None
    if written is not None and len(written.data) >= len(data):
        return None  # the full path delivers the stored file, which is no larger (Preset.encode_instance)
    return written


class _Meta(NamedTuple):
    """A native PS3.10 file's meta group (:func:`_read_meta`)."""

    end: int  # where the data set starts
    elements: dict[int, bytes]  # file meta element -> its bytes
    implicit: bool


def _read_meta(data: bytes) -> _Meta | None:
    """The file meta of a native little-endian PS3.10 file, or ``None``."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    end = _meta_end(data)
    elements = None if end is None else _meta_elements(data, end)
    if end is None or elements is None:
        return None
    syntax = elements.get(0x00020010, b"")[8:].rstrip(b"\0 ")
    if syntax not in (b"1.2.840.10008.1.2", b"1.2.840.10008.1.2.1"):
        return None
    return _Meta(end, elements, syntax == b"1.2.840.10008.1.2")


def _series_key(data: bytes, start: int, implicit: bool) -> bytes:
    """The Series Instance UID element's bytes, found by its tag (the template cache's key: a wrong
    find only costs a template; each template checks every element, this one included)."""
    at = data.find(b"\x20\x00\x0e\x00" if implicit else b"\x20\x00\x0e\x00UI", start)
    return data[at : at + 74] if at >= 0 else b""


def _meta_end(data: bytes) -> int | None:
    """End of the file meta group, from its group length (PS3.10 §7.1), or ``None``."""
    if len(data) < 144 or data[128:132] != b"DICM" or data[132:140] != b"\x02\x00\x00\x00UL\x04\x00":
        return None
    end = 144 + _UL.unpack_from(data, 140)[0]
    return end if end <= len(data) else None


def _meta_elements(data: bytes, end: int) -> dict[int, bytes] | None:
    """The file meta elements (explicit VR little endian) from offset 132 to ``end``: tag -> bytes."""
    out: dict[int, bytes] = {}
    pos = 132
    while pos < end:
        if end - pos < 8:
            return None
        group, element = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4 : pos + 6]
        if group != 0x0002:
            return None
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
            if end - pos < 12:
                return None
            length = _UL.unpack_from(data, pos + 8)[0]
            stop = pos + 12 + length
        else:
            stop = pos + 8 + struct.unpack_from("<H", data, pos + 6)[0]
        if stop > end:
            return None
        out[group << 16 | element] = data[pos:stop]
        pos = stop
    return out


def _raw_element(raw: bytes, implicit: bool) -> RawDataElement | None:
    """One element's bytes as :mod:`.fastread` reads it (``value_tell`` relative to ``raw``)."""
    found = _elements(raw, 0, implicit)
    if found is None or len(found) != 1:
        return None
    (elem,) = found.values()
    return elem if isinstance(elem, RawDataElement) else None


def _value(raw: bytes, implicit: bool) -> Any:
    elem = _raw_element(raw, implicit)
    return None if elem is None else elem.value


def _written(elem: DataElement, encodings: Any, buffer: DicomBytesIO) -> bytes:
    """A converted element's bytes as the full path writes them (``encodings``: Python encodings of
    its character set; the file meta's default for group 0002)."""
    done = _element_bytes(elem, encodings, buffer)
    if done is None:
        raise DicomError(f"cannot write {elem.tag}")
    return done
