"""Live-path shortcut: read a native PS3.10 file into a pydicom data set without pydicom's per-element work.

``pydicom.dcmread`` was a tenth of a live CT instance's CPU (py-spy, 2026-11-30): its element
generator does a dozen checks per element, and it parses every undefined-length sequence at once,
each item a ``Dataset`` (~50 us apiece; an anonymised chest CT file has 16 of them). For the files
a live archive reads most (native little-endian PS3.10, implicit or explicit VR), :func:`read_native`
builds the same top-level data set here: the file meta and the data set as pydicom sets them up,
each element a ``RawDataElement`` with pydicom's own fields. One thing differs, by design: an
undefined-length sequence stays raw (its items' bytes, without the closing delimiter), and pydicom
converts it when something reads it (``convert_SQ`` parses the same items; the element keeps
``is_undefined_length``). :mod:`.fastwrite` writes such a sequence item by item as pydicom writes
a parsed one.

Anything else (other transfer syntaxes, a VR that lies about the encoding, an undefined-length
element that is not a sequence, group 0002 or item tags in the data set, a file cut short) returns
``None``, and the caller uses ``dcmread``. ``tests/delivery/test_fastwrite.py`` checks that live
files are the same bytes either way, on every real file.
"""

from __future__ import annotations

import io
import struct

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset
from pydicom.filereader import _read_file_meta_info, convert_raw_data_element
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

__all__ = ["element_end", "element_spans", "is_sequence", "read_native", "sequence_end"]

_NATIVE = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}  # uid -> implicit VR
_HEAD = struct.Struct("<HHL")
_EXPLICIT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<L")
_LONG_VRS = frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)
_ITEM = 0xFFFEE000
_SEQ_END = 0xFFFEE0DD
_SQ_CACHE: dict[int, bool] = {}
_VR_NAMES = {  # the VRs of PS3.5 6.2, by their bytes (anything else: pydicom reads the file)
    v.encode("ascii"): v
    for v in (
        "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV"
    ).split()
}
_VR_TEXTS = frozenset(_VR_NAMES.values())


def read_native(data: bytes) -> FileDataset | None:
    """``dcmread(BytesIO(data))`` for a native little-endian PS3.10 file, or ``None`` (read it with
    pydicom). Undefined-length sequences stay raw (module docstring)."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    try:
        return _read(data)
    except Exception:  # whatever pydicom's helpers raise on odd values: dcmread decides
        return None


def _read(data: bytes) -> FileDataset | None:
    fp = io.BytesIO(data)
    fp.seek(132)
    file_meta = _read_file_meta_info(fp)
    if any(isinstance(e, RawDataElement) and e.VR not in _VR_TEXTS for e in file_meta._dict.values()):
        return None  # an unknown VR in the meta (pydicom fails when it converts it): dcmread decides
    implicit = _NATIVE.get(str(file_meta.get("TransferSyntaxUID", "")))
    if implicit is None or file_meta.original_encoding != (False, True):
        return None
    start = fp.tell()
    if len(data) - start < 8 or data[start : start + 2] == b"\x00\x00":
        return None  # nothing after the meta (pydicom then assumes implicit VR), or a command set first
    elements = _elements(data, start, implicit)
    if elements is None:
        return None
    dataset = Dataset(elements)
    encoding: str | list[str] = default_encoding
    charset = elements.get(BaseTag(0x00080005))
    if isinstance(charset, RawDataElement):  # as read_dataset: the encoding of the elements that follow
        encoding = convert_encodings(convert_raw_data_element(charset).value)
    dataset.set_original_encoding(implicit, True, encoding)
    ds = FileDataset(fp, dataset, data[:128], file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, dataset._character_set)
    # the raw elements' value_tell point into this: .fastwrite writes unchanged runs of them from it
    if isinstance(data, bytes):
        ds._medcodec_source = data
    return ds


def _elements(data: bytes, pos: int, implicit: bool) -> dict[BaseTag, RawDataElement | DataElement] | None:
    """The top-level elements from ``pos`` to the end, as pydicom's generator yields them, or ``None``."""
    n = len(data)
    if not first_element_agrees(data, pos, implicit):
        return None
    out: dict[BaseTag, RawDataElement | DataElement] = {}
    new = tuple.__new__  # RawDataElement(...) without the named tuple's keyword wrapper (all 9 fields given)
    while n - pos >= 8:
        found = _header(data, pos, implicit)
        if found is None:
            return None
        number, vr, length, pos = found
        tag = BaseTag(number)
        if length == 0xFFFFFFFF:
            if not (vr == "SQ" or (implicit and is_sequence(tag))):
                return None  # encapsulated pixel data, UN of undefined length...: pydicom reads them
            end = sequence_end(data, pos, implicit)
            if end is None:
                return None
            out[tag] = new(RawDataElement, (tag, vr, length, data[pos:end], pos, implicit, True, True, False))
            pos = end + 8
            continue
        if pos + length > n:
            return None  # cut short: pydicom warns and keeps what it read; the caller decides
        value = data[pos : pos + length] if length else empty_value_for_VR(vr, raw=True)
        out[tag] = new(RawDataElement, (tag, vr, length, value, pos, implicit, True, True, False))
        pos += length
    return out


def first_element_agrees(data: bytes, pos: int, implicit: bool) -> bool:
    """pydicom's ``_is_implicit_vr`` check: whether the element at ``pos`` looks like the syntax says
    (a VR of two capital letters with explicit VR, none with implicit); a file whose first element
    contradicts its syntax is left to pydicom."""
    if len(data) - pos < 6:
        return True
    vr0, vr1 = data[pos + 4], data[pos + 5]
    return (not (0x40 < vr0 < 0x5B and 0x40 < vr1 < 0x5B)) == implicit


def _header(data: bytes, pos: int, implicit: bool) -> tuple[int, str | None, int, int] | None:
    """The element header at ``pos`` (at least 8 bytes there): ``(tag, VR or None when implicit,
    value length, where the value starts)``, or ``None`` (not a VR of PS3.5, cut short, or a tag
    of group 0002 or an item tag: not a data set element for :func:`read_native`)."""
    if implicit:
        group, element, length = _HEAD.unpack_from(data, pos)
        vr = None
        pos += 8
    else:
        group, element, raw_vr, length = _EXPLICIT.unpack_from(data, pos)
        vr = _VR_NAMES.get(raw_vr)
        if vr is None:
            return None  # not a VR of PS3.5: pydicom guesses (implicit VR, a latin-1 "VR"), it decides
        pos += 8
        if vr in _LONG_VRS:
            if len(data) - pos < 4:
                return None
            length = _LONG.unpack_from(data, pos)[0]
            pos += 4
    if group == 0x0002 or group == 0xFFFE:
        return None
    return group << 16 | element, vr, length, pos


def element_spans(data: bytes, pos: int, implicit: bool) -> list[tuple[int, int, int]] | None:
    """``(tag, start, end)`` of each top-level element from ``pos`` to the end of ``data`` (header,
    value and, for undefined length, the closing delimiter), or ``None`` where :func:`read_native`
    would not read the file (the same rules), except that undefined-length Pixel Data
    (encapsulated fragments, as in a coded file) is walked item by item."""
    n = len(data)
    spans: list[tuple[int, int, int]] = []
    while n - pos >= 8:
        found = element_end(data, pos, implicit)
        if found is None:
            return None
        tag, end = found
        spans.append((tag, pos, end))
        pos = end
    return spans if pos == n else None


def element_end(data: bytes, pos: int, implicit: bool) -> tuple[int, int] | None:
    """``(tag, end)`` of the top-level element at ``pos`` (:func:`element_spans`' rules), or ``None``."""
    if len(data) - pos < 8:
        return None
    found = _header(data, pos, implicit)
    if found is None:
        return None
    tag, vr, length, pos = found
    if length != 0xFFFFFFFF:
        return (tag, pos + length) if pos + length <= len(data) else None
    if tag == 0x7FE00010:
        end = _fragments_end(data, pos)
    elif vr == "SQ" or (implicit and is_sequence(tag)):
        end = sequence_end(data, pos, implicit)
    else:
        return None
    return None if end is None else (tag, end + 8)


def _fragments_end(data: bytes, pos: int) -> int | None:
    """Where the Sequence Delimitation Item after the encapsulated fragments starting at ``pos`` is."""
    n = len(data)
    while n - pos >= 8:
        group, element, length = _HEAD.unpack_from(data, pos)
        tag = group << 16 | element
        if tag == _SEQ_END:
            return pos if length == 0 else None
        if tag != _ITEM or length == 0xFFFFFFFF or pos + 8 + length > n:
            return None
        pos += 8 + length
    return None


def is_sequence(tag: int) -> bool:
    """Whether pydicom's dictionary makes ``tag`` a sequence (SQ); private tags are not in it."""
    found = _SQ_CACHE.get(tag)
    if found is None:
        try:
            found = str(dictionary_VR(tag)) == "SQ"
        except KeyError:
            found = False
        _SQ_CACHE[tag] = found
    return found


def sequence_end(data: bytes, pos: int, implicit: bool) -> int | None:
    """Where the Sequence Delimitation Item of the undefined-length value starting at ``pos`` is,
    walking its items (nested undefined-length values included), or ``None``."""
    n = len(data)
    while n - pos >= 8:
        group, element, length = _HEAD.unpack_from(data, pos)
        tag = group << 16 | element
        if tag == _SEQ_END:
            return pos if length == 0 else None
        if tag != _ITEM:
            return None
        pos += 8
        if length != 0xFFFFFFFF:
            # its elements must fill it exactly (what pydicom's parse of the items will need)
            if pos + length > n or _item_end(data, pos, implicit, stop=pos + length) is None:
                return None
            pos += length
            continue
        end = _item_end(data, pos, implicit)
        if end is None:
            return None
        pos = end + 8
    return None


def _item_end(data: bytes, pos: int, implicit: bool, stop: int | None = None) -> int | None:
    """Where the Item Delimitation Item of the undefined-length item starting at ``pos`` is; with
    ``stop`` (a defined-length item), ``stop`` when its elements end exactly there. ``None``: not so."""
    n = len(data) if stop is None else stop
    if pos == stop:
        return stop  # an empty item
    while n - pos >= 8:
        group, element, length = _HEAD.unpack_from(data, pos)
        if group == 0xFFFE:
            return pos if stop is None and element == 0xE00D and length == 0 else None
        if implicit:
            pos += 8
        else:
            vr = _VR_NAMES.get(data[pos + 4 : pos + 6])
            if vr is None:
                return None  # an implicit item inside an explicit file, or no VR: pydicom copes, we do not
            if vr in _LONG_VRS:
                if n - pos < 12:
                    return None
                length = _LONG.unpack_from(data, pos + 8)[0]
                pos += 12
            else:
                length = _EXPLICIT.unpack_from(data, pos)[3]
                pos += 8
        if length == 0xFFFFFFFF:
            end = sequence_end(data, pos, implicit)
            if end is None:
                return None
            pos = end + 8
        else:
            pos += length
        if stop is not None and pos == stop:
            return stop
    return None
