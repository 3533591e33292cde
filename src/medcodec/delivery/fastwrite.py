"""Live-path shortcuts: write a coded dataset and read native pixels without pydicom's per-element work.

Where live CPU went (``docs/delivery.md``, "Where live time goes"): about half of the Python
time of ``Preset.encode_instance`` was pydicom's writer walking every element of the original
through ``write_data_element`` (a buffer, a cast and several attribute look-ups per element),
and a good part of the rest was ``pixel_array`` for a native (uncompressed) image. Both are
done here with the same result and less work:

* :func:`encode_file_fast` writes the file exactly as :func:`medcodec.dicom.write.encode_file`
  (``dcmwrite(..., enforce_file_format=True)``) does, byte for byte: the file meta through
  pydicom's own ``write_file_meta_info``, then each element in tag order; an element pydicom
  would copy as it was read (a raw element of a data set read in the output's encoding) is
  copied here as header + raw value in one ``bytes`` join; every other element (the ~20 the
  preset changed, anything odd) goes through pydicom's ``write_data_element``. A data set read
  in another encoding (implicit VR, big endian) or a changed character set goes to
  ``encode_file`` as a whole.
* :func:`native_frames` reads the stored values of an uncompressed little-endian image with
  ``numpy.frombuffer`` from the raw Pixel Data (what pydicom's native decoder does), with the
  same masking and sign extension as :func:`medcodec.dicom.compress.dataset_frames`; anything
  else is handed to ``dataset_frames``.

``tests/delivery/test_fastwrite.py`` checks both against the pydicom paths on real files.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from copy import copy
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, private_dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import (
    correct_ambiguous_vr_element,
    validate_file_meta,
    write_data_element,
    write_file_meta_info,
    writers,
)
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import AMBIGUOUS_VR, CUSTOMIZABLE_CHARSET_VR, EXPLICIT_VR_LENGTH_32, VR

from ..dicom.compress import dataset_frames, stored_values
from ..dicom.write import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    encode_file,
    keep_text_bytes,
    private_value_fits,
)
from ..errors import DicomError
from ..spec import PixelSpec
from .fastread import is_sequence
from .fastread import sequence_end as _sequence_end

__all__ = ["encode_file_fast", "native_frames", "raw_element_bytes"]

_PIXEL_DATA = 0x7FE00010
_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_LONG_VRS = frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)
_NATIVE_LE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_TAG = struct.Struct("<HH")
#: VRs whose value bytes read with implicit VR LE are what pydicom writes back in explicit VR LE:
#: binary numbers and tags (same byte order), byte strings; and strings, which pydicom decodes and
#: re-encodes in the same character set (tests/delivery/test_fastwrite.py checks every real file).
_COPYABLE = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SS ST SV TM UC UI UL UR US UT UV".split()
)
_VR_CACHE: dict[int, str | None] = {}
_PRIVATE_VR_CACHE: dict[tuple[str, int], str | None] = {}
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
_SINGLE_TEXT_VRS = frozenset("LT ST UR UT".split())  # a backslash is text there, not a delimiter
_NUMBER_STRINGS = {
    "IS": re.compile(rb"[+-]?[0-9]+"),
    "DS": re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"),
}
_KNOWN_VRS = frozenset(str(v) for v in VR if len(str(v)) == 2)  # "OB or OW" and the like: never written
#: (tag, raw value, private creator) -> the element's bytes, or b"" (pydicom converts it); values up
#: to _CACHED_SIZE bytes (sequences' items up to _CACHED_SEQUENCE), cleared when what it holds
#: passes _CACHE_BYTES: bounded memory in each encoder process, whatever the studies
_IMPLICIT_CACHE: dict[tuple[int, bytes | None, Any], bytes] = {}
_CACHED_SIZE = 256
_CACHED_SEQUENCE = 4096
_CACHE_BYTES = 8 << 20
_NO_CREATOR = object()  # not looked up yet (None is a valid answer: no creator)
_cache_held = [0]  # bytes of keys and values in _IMPLICIT_CACHE and _RUN_CACHE (about)
#: (implicit, a run's bytes in its file, the private creators) -> the run's output (_dataset_body)
_RUN_CACHE: dict[tuple[Any, ...], bytes] = {}
#: tags written on their own, not in runs: values this process has seen change from one data set to
#: the next, or written by pydicom; and the hash of each tag's last value; both forgotten past
#: _MAX_TAGS tags
_ALONE: set[int] = set()
_LAST_VALUE: dict[int, int] = {}
_MAX_TAGS = 50_000
_ELEMENT_HEAD = struct.Struct("<HHL")
_DEFAULT_ENCODINGS = convert_encodings([default_encoding])
_SHORT = struct.Struct("<H")
_LONG = struct.Struct("<L")


def encode_file_fast(ds: Dataset) -> bytes:
    """The bytes :func:`medcodec.dicom.write.encode_file` would write for ``ds``, with less work.

    Raises
    ------
    DicomError
        No file meta Transfer Syntax UID, or an element cannot be encoded.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        return encode_file(ds)  # raises the DicomError
    ts = UID(meta.TransferSyntaxUID)
    if (
        ts.is_private
        or not ts.is_transfer_syntax
        or ts.is_implicit_VR
        or not ts.is_little_endian
        or ts.is_deflated
        or ds.original_encoding not in ((False, True), (True, True))
        or ds.original_character_set != ds._character_set
        or any(t >> 16 in (0, 2) for t in ds._dict)
    ):
        return encode_file(ds)
    try:
        # what dcmwrite(enforce_file_format=True) does to (a copy of) the file meta: the group's
        # elements shared, never changed in place (an element to change is replaced by a new one),
        # which is what a deep copy buys at a fraction of its cost
        file_meta = FileMetaDataset()
        file_meta._dict.update(meta._dict)
        ds_class = ds.get("SOPClassUID", None)
        if file_meta.get("MediaStorageSOPClassUID", None) is None or (
            ds_class and ds_class != file_meta.MediaStorageSOPClassUID
        ):
            _replace(file_meta, 0x00020002, "UI", ds_class)
        ds_instance = ds.get("SOPInstanceUID", None)
        if file_meta.get("MediaStorageSOPInstanceUID", None) is None or (
            ds_instance and ds_instance != file_meta.MediaStorageSOPInstanceUID
        ):
            _replace(file_meta, 0x00020003, "UI", ds_instance)
        # validate_file_meta's additions, made here so that it never sets a shared element's value
        if "FileMetaInformationVersion" not in file_meta or file_meta["FileMetaInformationVersion"].is_empty:
            _replace(file_meta, 0x00020001, "OB", b"\x00\x01")
        _replace(file_meta, 0x00020012, "UI", UID(IMPLEMENTATION_CLASS_UID))  # the writer: medcodec (as encode_file)
        _replace(file_meta, 0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)
        validate_file_meta(file_meta, enforce_standard=True)
        preamble = getattr(ds, "preamble", None) or b"\x00" * 128
        if len(preamble) != 128:
            return encode_file(ds)
        if _PIXEL_DATA in ds._dict:
            ds[_PIXEL_DATA].is_undefined_length = ts.is_compressed
        value_buffer = DicomBytesIO()
        value_buffer.is_implicit_VR, value_buffer.is_little_endian = False, True
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = False, True
        fp.write(preamble)
        fp.write(b"DICM")
        meta_bytes = _meta_bytes(file_meta, value_buffer)
        if meta_bytes is None:  # pydicom writes the group, and sets its length in place: on copies
            copied = FileMetaDataset()
            for tag, elem in file_meta._dict.items():
                copied._dict[tag] = copy(elem)
            write_file_meta_info(fp, copied, enforce_standard=True)
        else:
            fp.write(meta_bytes)
        implicit = ds.original_encoding[0]
        if implicit:  # what write_dataset does first when the encoding changes
            keep_text_bytes(ds)  # as encode_file: text invalid in its character set stays as it was
            _correct_ambiguous_vr(ds)
        encodings: Any = ds.get("SpecificCharacterSet", "iso8859")
        source = ds.__dict__.get("_medcodec_source")  # set by .fastread: the file ds was read from
        return fp.getvalue() + _dataset_body(ds, bool(implicit), encodings, value_buffer, source)
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many kinds on invalid values
        raise DicomError(f"cannot encode DICOM: {type(exc).__name__}: {exc}") from exc


def _remember(key: tuple[int, bytes | None, Any], written: bytes | None) -> None:
    _charge(100 + len(key[1] or b"") + len(written or b""))  # with the tuple's and objects' overhead
    _IMPLICIT_CACHE[key] = b"" if written is None else written


def _charge(size: int) -> None:
    """Count ``size`` bytes against the caches' one budget, emptying both first when it would pass it."""
    if _cache_held[0] + size > _CACHE_BYTES:
        _IMPLICIT_CACHE.clear()
        _RUN_CACHE.clear()
        _cache_held[0] = 0
    _cache_held[0] += size


def _replace(group: Dataset, tag: int, vr: str, value: Any) -> None:
    """Put a new element in ``group`` (the old one may be shared with the data set being written)."""
    group._dict[BaseTag(tag)] = DataElement(BaseTag(tag), vr, value)


def _correct_ambiguous_vr(ds: Dataset, ancestors: list[Dataset] | None = None) -> None:
    """pydicom's ``correct_ambiguous_vr(ds, True)``, the same decisions without its per-element
    look-ups: elements still raw are skipped as pydicom skips them (an implicit-VR raw element has no
    VR yet; an explicit one never has an ambiguous VR) unless they are sequences read with explicit
    VR, which pydicom converts and walks too."""
    ancestors = [ds] if ancestors is None else ancestors
    items = ds._dict
    for tag in sorted(items, key=int):
        vr = items[tag].VR
        if vr == "SQ":
            for item in ds[tag].value:
                ancestors.insert(0, item)
                _correct_ambiguous_vr(item, ancestors)
        elif vr in AMBIGUOUS_VR:
            correct_ambiguous_vr_element(items[tag], ds, True, ancestors)
    del ancestors[0]


def _dataset_body(
    ds: Dataset, implicit: bool, encodings: Any, value_buffer: DicomBytesIO, source: bytes | None = None
) -> bytes:
    """``write_dataset``'s output for ``ds`` (top level or a sequence item) in explicit VR little endian:
    raw elements copied (:func:`_raw_bytes`), plain converted ones through :func:`_element_bytes`,
    sequences through :func:`_sequence_bytes`, anything else through pydicom's ``write_data_element``.

    ``source``: the file :mod:`.fastread` read ``ds`` from (its raw elements' ``value_tell`` point
    into it). Consecutive raw elements are then written as *runs*: a run's output is a function of
    its bytes in the file (tags, lengths, values) and of the private creators alone, so it is
    remembered under those bytes, and the next instance of a series whose run is the same bytes
    costs one look-up instead of one per element. Elements whose values differ between instances,
    and those pydicom has to write (learnt per process: :data:`_ALONE`), end runs, so that the runs
    between them repeat.
    """
    converted = convert_encodings(encodings or [default_encoding])
    parts: list[bytes] = []
    items = ds._dict
    creators: dict[int, Any] = {}  # private block -> its creator's value (looked up once per block)
    run: list[Any] = []  # the raw elements of the current run (with ``source``)
    run_start = run_end = -1
    creator_key: tuple[Any, ...] | None = None

    def element(tag: Any, elem: Any) -> tuple[bytes, bool]:
        return _element_out(ds, items, tag, elem, implicit, creators, encodings, converted, value_buffer)

    def flush() -> None:
        nonlocal creator_key
        if len(run) == 1:
            parts.append(element(run[0].tag, run[0])[0])
        elif run:
            if creator_key is None:
                creator_key = _creators(items)
            key = (implicit, source[run_start:run_end], creator_key)  # type: ignore[index]
            known = _RUN_CACHE.get(key)
            if known is not None:
                parts.append(known)
            else:
                out, pure, steady = [], True, True
                for elem in run:
                    done, is_pure = element(elem.tag, elem)
                    out.append(done)
                    steady = _steady(int(elem.tag), elem.value) and steady
                    if not is_pure:  # pydicom wrote it, from more than its bytes: it ends runs from now on
                        _ALONE.add(int(elem.tag))
                        pure = False
                joined = b"".join(out)
                parts.append(joined)
                if pure and steady:  # a run with a value just seen to change will not come again
                    _remember_run(key, joined)
        run.clear()

    for tag in sorted(items, key=int):  # int order = tag order, without BaseTag.__lt__
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # group lengths are not written (as write_dataset)
        elem = items[tag]
        if source is not None and elem.__class__ is RawDataElement and int(tag) not in _ALONE:
            start, end = _span(elem, implicit)
            if start != run_end or not run:
                flush()
                run_start = start
            run.append(elem)
            run_end = end
            continue
        flush()
        parts.append(element(tag, elem)[0])
    flush()
    return b"".join(parts)


def _element_out(
    ds: Dataset,
    items: Any,
    tag: Any,
    elem: Any,
    implicit: bool,
    creators: dict[int, Any],
    encodings: Any,
    converted: Any,
    value_buffer: DicomBytesIO,
) -> tuple[bytes, bool]:
    """One element's bytes as ``write_data_element`` writes them, and whether they came from the raw
    element alone (its tag, value, VR and private creator: the same bytes in, the same bytes out)."""
    raw = _pure_bytes(items, tag, elem, implicit, creators)
    if raw is not None:
        return raw, True
    # converted as pydicom converts on access: everything read with implicit VR, and the raw
    # undefined-length sequences .fastread leaves (explicit VR raw elements are written as read)
    undefined_sequence = isinstance(elem, RawDataElement) and elem.length == 0xFFFFFFFF and tag != _PIXEL_DATA
    # (a raw element without a VR: a file whose meta says explicit VR but whose dataset is implicit)
    no_vr = isinstance(elem, RawDataElement) and elem.VR is None
    element = ds[tag] if implicit or undefined_sequence or no_vr else ds.get_item(tag)
    done = None
    if isinstance(element, DataElement):
        if element.VR == "SQ":
            done = _sequence_bytes(element, encodings, value_buffer)
        else:
            done = _element_bytes(element, converted, value_buffer)
    if done is not None:
        return done, False
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = False, True
    write_data_element(out, element, encodings)
    return out.getvalue(), False


def raw_element_bytes(elem: RawDataElement, implicit: bool, creators: dict[int, Any]) -> bytes | None:
    """The bytes :func:`encode_file_fast` writes for a top-level raw element (as :mod:`.fastread`
    reads it) when they depend on the element alone and its private creator (``creators``: private
    block -> the creator's raw value; a block not in it has none), else ``None``.

    :mod:`.template` writes an instance's changed elements with it; the runs of
    :func:`_dataset_body` rest on the same property.
    """
    return _pure_bytes({}, elem.tag, elem, implicit, creators)


def _pure_bytes(items: Any, tag: Any, elem: Any, implicit: bool, creators: dict[int, Any]) -> bytes | None:
    """:func:`_element_out` for a raw element whose bytes depend on itself alone, else ``None``."""
    itag = int(tag)  # plain int in the cache keys: compared in C (BaseTag.__eq__ is Python code)
    raw = None
    if isinstance(elem, RawDataElement):
        if elem.length == 0xFFFFFFFF and tag != _PIXEL_DATA:
            # an undefined-length sequence that .fastread left raw: written as pydicom writes the
            # parsed one (items re-encoded, sorted, group lengths dropped)
            if implicit and is_sequence(tag):
                items_bytes = elem.value or b""
                if len(items_bytes) > _CACHED_SEQUENCE:
                    raw = _implicit_sequence(tag, items_bytes, undefined=True)
                else:  # remembered like the elements below (tag and items' bytes decide)
                    sequence_key = (itag, items_bytes, "undefined length")  # public: no creator
                    known = _IMPLICIT_CACHE.get(sequence_key)
                    if known is None:
                        raw = _implicit_sequence(tag, items_bytes, undefined=True)
                        _remember(sequence_key, raw)
                    elif known:
                        raw = known
        elif implicit:
            value = elem.value
            # the bytes depend on tag, value and (private) creator only: remembered per process,
            # since most elements repeat from one instance of a series to the next
            creator = None
            if itag >> 16 & 1:
                block = itag & 0xFFFF0000 | (itag & 0xFFFF) >> 8
                creator = creators.get(block, _NO_CREATOR)
                if creator is _NO_CREATOR:
                    creator = creators[block] = _creator_of(items, tag)
            cacheable = (value is None or len(value) <= _CACHED_SIZE) and isinstance(creator, (bytes, str, type(None)))
            key = (itag, value, creator) if cacheable else None  # (a multi-valued creator is not hashable)
            known = _IMPLICIT_CACHE.get(key) if key is not None else None
            if known is None:
                vr = _copy_vr(tag, value, creator)
                if vr is None and is_sequence(tag):
                    raw = _implicit_sequence(tag, value or b"")
                if raw is None:
                    raw = _raw_bytes(elem, vr)
                if key is not None:
                    _remember(key, raw)
            elif known:
                raw = known
        else:
            raw = _raw_bytes(elem, elem.VR)
    return raw


def _span(elem: RawDataElement, implicit: bool) -> tuple[int, int]:
    """Where a raw element read by :mod:`.fastread` lies in its file: ``(start, end)`` of its header,
    value and (undefined length) sequence delimiter."""
    tell = elem.value_tell
    if elem.length == 0xFFFFFFFF:  # .fastread: the value is the items, the delimiter follows
        return tell - (8 if implicit else 12), tell + len(elem.value or b"") + 8
    return tell - (8 if implicit or elem.VR not in _LONG_VRS else 12), tell + elem.length


def _creators(items: Any) -> tuple[Any, ...]:
    """The private creators of a data set's elements ``(tag, value)`` (what, besides its bytes, a
    private element's output depends on)."""
    out = []
    for t in items:
        if t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF:
            value = getattr(items[t], "value", None)
            # raw bytes, or a converted value (a multi-valued one is a list: not hashable as it is)
            out.append((int(t), value if isinstance(value, (bytes, str, type(None))) else repr(value)))
    return tuple(out)


def _steady(tag: int, value: Any) -> bool:
    """Whether ``tag``'s value is the one this process saw last for it (else ``tag`` joins
    :data:`_ALONE`, so that later runs end at it)."""
    digest = hash(value)
    last = _LAST_VALUE.get(tag)
    if len(_LAST_VALUE) > _MAX_TAGS:
        _LAST_VALUE.clear()
        _ALONE.clear()
    _LAST_VALUE[tag] = digest
    if last is not None and last != digest:
        _ALONE.add(tag)
        return False
    return True


def _remember_run(key: tuple[Any, ...], written: bytes) -> None:
    _charge(100 + 2 * len(key[1]) + len(written))
    _RUN_CACHE[key] = written


_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"


def _sequence_bytes(elem: DataElement, encodings: Any, value_buffer: DicomBytesIO) -> bytes | None:
    """``write_data_element``'s output for a sequence (each item as ``write_sequence_item`` writes it:
    defined length unless read with undefined length), or ``None`` (an item in another byte order or
    character set: pydicom writes the sequence)."""
    if elem.is_buffered or isinstance(elem.value, (bytes, str)) or elem.value is None:
        return None
    parts: list[bytes] = []
    for item in elem.value:
        if not isinstance(item, Dataset):
            return None
        original = item.original_encoding
        if original[1] is False:
            return None
        if item.original_character_set != item._character_set and (
            original != (None, None) or any(isinstance(e, RawDataElement) for e in item._dict.values())
        ):
            return None  # raw values in another character set (a new item's values are encoded on writing)
        if original != (False, True):  # as write_dataset: encoding changes, so ambiguous VRs are resolved
            _correct_ambiguous_vr(item)
        body = _dataset_body(item, bool(original[0]), item.get("SpecificCharacterSet", encodings), value_buffer)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts += [_ITEM, b"\xff\xff\xff\xff", body, _ITEM_END]
        else:
            parts += [_ITEM, _LONG.pack(len(body)), body]
    value = b"".join(parts)
    tag = elem.tag
    head = _TAG.pack(tag >> 16, tag & 0xFFFF) + b"SQ\x00\x00"
    if elem.is_undefined_length:
        return head + b"\xff\xff\xff\xff" + value + _SEQ_DELIMITER
    return head + _LONG.pack(len(value)) + value


def _meta_bytes(file_meta: Dataset, buffer: DicomBytesIO) -> bytes | None:
    """``write_file_meta_info(enforce_standard=True)``'s output for a validated file meta, or ``None``
    (an element this module does not write: pydicom writes the group)."""
    parts = []
    for tag in sorted(file_meta._dict, key=int):
        if tag == 0x00020000:
            continue
        elem = file_meta.get_item(tag)
        if isinstance(elem, RawDataElement):
            done = _raw_bytes(elem, elem.VR)
        else:
            done = _element_bytes(elem, _DEFAULT_ENCODINGS, buffer)
        if done is None:
            return None
        parts.append(done)
    body = b"".join(parts)
    _replace(file_meta, 0x00020000, "UL", len(body))  # as pydicom: the bytes after the 12-byte element
    group = _element_bytes(file_meta[0x00020000], _DEFAULT_ENCODINGS, buffer)
    return None if group is None else group + body


def _element_bytes(elem: DataElement, encodings: list[str], buffer: DicomBytesIO) -> bytes | None:
    """``write_data_element``'s output for a converted element with a plain value (pydicom's own value
    writer into a reused buffer, the header built here), or ``None`` (sequences, pixel data, buffered
    or undefined-length values, a value too long for a short VR: pydicom writes it)."""
    vr = elem.VR
    if elem.is_undefined_length and elem.tag == _PIXEL_DATA and vr == "OB" and not elem.is_buffered:
        # encapsulated frames, as write_data_element writes them after checking the first item tag
        value = elem.value
        if isinstance(value, bytes) and value[:4] == _ITEM and not len(value) % 2:
            return b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff" + value + _SEQ_DELIMITER
        return None
    if vr not in writers or vr == "SQ" or len(vr) != 2 or elem.is_buffered or elem.is_undefined_length:
        return None
    raw_buffer = cast(io.BytesIO, buffer.parent)
    raw_buffer.seek(0)
    raw_buffer.truncate()
    if not elem.is_empty:
        fn, param = cast("tuple[Callable[..., None], str | None]", writers[cast(VR, vr)])
        if vr in CUSTOMIZABLE_CHARSET_VR:
            fn(buffer, elem, encodings=encodings)
        elif param is not None:
            fn(buffer, elem, param)
        else:
            fn(buffer, elem)
    value = buffer.getvalue()
    n = len(value)
    tag = elem.tag
    head = _TAG.pack(tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_VRS:
        return head + b"\x00\x00" + _LONG.pack(n) + value
    if n > 0xFFFF:
        return None
    return head + _SHORT.pack(n) + value


def _implicit_vr(tag: int) -> str | None:
    """The VR pydicom gives a public element read with implicit VR when its value is copied unchanged
    (a single unambiguous VR other than SQ), else ``None`` (pydicom converts and writes it)."""
    vr = _VR_CACHE.get(tag, "")
    if vr == "":
        vr = None
        if tag >> 16 & 1 == 0 and tag >> 16 not in (0, 2) and tag & 0xFFFF != 0:
            try:
                found = str(dictionary_VR(tag))
            except KeyError:
                found = ""
            if found in _COPYABLE:
                vr = found
        _VR_CACHE[tag] = vr
    return vr


def _creator_of(elements: Any, tag: int) -> Any:
    """The value of the Private Creator element that reserves private ``tag`` in ``elements``
    (a data set's element dict or an item's raw values), or ``None``."""
    if not tag >> 16 & 1:
        return None
    found = elements.get(tag & 0xFFFF0000 | (tag & 0xFFFF) >> 8)
    return getattr(found, "value", found)


def _copy_vr(tag: int, value: Any, creator: Any) -> str | None:
    """The VR under which a raw element read with implicit VR is written with its value bytes
    unchanged (what pydicom writes after converting it), or ``None`` (pydicom converts and writes it)."""
    if tag >> 16 & 1:
        return _private_vr(creator, tag, value)
    vr = _implicit_vr(tag)
    if vr is not None and vr in _TEXT_VRS and not _canonical_text(value, vr):
        return None
    return vr


def _private_vr(creator: Any, tag: int, value: Any) -> str | None:
    """The VR pydicom gives a private element read with implicit VR (``LO`` for a private creator, the
    private dictionary's VR for its creator, else ``UN``: ``pydicom.hooks._private_vr_for_tag``) when
    pydicom would write its value bytes back unchanged, else ``None`` (pydicom converts and writes it).

    Text is copied only when it is padded as pydicom pads it (one value; trailing spaces and NULs
    stripped, then one space to an even length): pydicom rewrites ``'LONGWOOD15MR    '`` as
    ``'LONGWOOD15MR'``, and the two paths must give the same bytes."""
    element = tag & 0xFFFF
    if 0x10 <= element <= 0xFF:
        return "LO" if _canonical_text(value, "LO") else None
    if element < 0x1000:
        return None  # invalid private tags: pydicom's rules (UN, group lengths) apply
    if isinstance(creator, bytes):
        creator = creator.decode("latin-1").rstrip(" \x00")
    elif creator is not None and not isinstance(creator, str):
        return None  # a multi-valued or odd creator: let pydicom decide
    key = (creator or "", tag & 0xFFFF00FF)
    vr = _PRIVATE_VR_CACHE.get(key, "")
    if vr == "":
        found = "UN"
        if creator:
            try:
                found = str(private_dictionary_VR(tag, creator))
            except KeyError:
                found = "UN"
        vr = found if found in _COPYABLE or found == "UN" else None
        _PRIVATE_VR_CACHE[key] = vr
    if vr not in (None, "UN") and not private_value_fits(vr, value):
        return "UN"  # as dicom.write.untyped_private_as_un: bytes no valid value of the VR
    if vr is not None and vr in _TEXT_VRS and not _canonical_text(value, vr):
        return None
    return vr


def _canonical_text(value: Any, vr: str) -> bool:
    """Whether pydicom writes text ``value`` (raw bytes of a ``vr`` element) back unchanged: it
    strips each value's padding (and a numeric string's spaces) and pads the whole to an even
    length with one space (NUL for UI), so ``'LONGWOOD15MR    '`` comes back as ``'LONGWOOD15MR'``
    and ``' 1.5'`` (DS) as ``'1.5'``. Anything not plainly canonical answers ``False`` (pydicom writes
    it): values with surrounding spaces or NULs, or the wrong padding."""
    if value is None:
        return True  # empty: nothing to pad
    if not isinstance(value, bytes) or not value.isascii():
        return False  # other bytes go through the character set (and Python's idea of white space)
    stripped = value.rstrip(b" \x00")
    if value != (stripped + (b"\x00" if vr == "UI" else b" ") if len(stripped) % 2 else stripped):
        return False
    if vr in _SINGLE_TEXT_VRS:
        return stripped[:1] not in (b" ", b"\x00")
    parts = stripped.split(b"\\")
    if vr in _NUMBER_STRINGS:  # pydicom parses them: only plain numbers come back as they were
        return all(_NUMBER_STRINGS[vr].fullmatch(part) for part in parts)
    return all(part == part.strip(b" \x00") for part in parts)


def _implicit_sequence(tag: int, value: bytes, *, undefined: bool = False) -> bytes | None:
    """``write_data_element``'s output for a raw sequence read with implicit VR (its items' bytes;
    ``undefined``: read with undefined length, without the closing delimiter), written from its
    bytes (items parsed here, each element under the rules of :func:`_copy_vr`), or ``None``
    (anything else, e.g. an element pydicom would convert: pydicom converts and writes it)."""
    parts: list[bytes] = []
    pos, end = 0, len(value)
    while pos < end:
        if end - pos < 8:
            return None
        group, element, length = _ELEMENT_HEAD.unpack_from(value, pos)
        if (group, element) != (0xFFFE, 0xE000):
            return None
        pos += 8
        stop = None if length == 0xFFFFFFFF else pos + length
        if stop is not None and stop > end:
            return None
        found = _implicit_item(value, pos, stop)
        if found is None:
            return None
        body, pos = found
        if stop is None:  # pydicom writes an item read with undefined length the same way
            parts += [_ITEM, b"\xff\xff\xff\xff", body, _ITEM_END]
        else:
            parts += [_ITEM, _LONG.pack(len(body)), body]
    seq = b"".join(parts)
    head = _TAG.pack(tag >> 16, tag & 0xFFFF) + b"SQ\x00\x00"
    if undefined:
        return head + b"\xff\xff\xff\xff" + seq + _SEQ_DELIMITER
    return head + _LONG.pack(len(seq)) + seq


def _implicit_item(buf: bytes, pos: int, stop: int | None) -> tuple[bytes, int] | None:
    """One sequence item's elements (implicit VR, from ``pos`` to ``stop`` or to its Item
    Delimitation Item) written in explicit VR as pydicom writes the item's data set:
    ``(body, position after the item)`` or ``None``."""
    values: dict[int, bytes | None] = {}
    nested: dict[int, bytes] = {}  # undefined-length sequences: their items' bytes
    end = len(buf) if stop is None else stop
    while True:
        if stop is not None and pos == stop:
            break
        if end - pos < 8:
            return None
        group, element, length = _ELEMENT_HEAD.unpack_from(buf, pos)
        pos += 8
        if group == 0xFFFE:
            if stop is None and element == 0xE00D and length == 0:
                break
            return None
        tag = group << 16 | element
        if tag in values:
            return None
        if length == 0xFFFFFFFF:  # a nested sequence of undefined length
            close = _sequence_end(buf, pos, True) if is_sequence(tag) else None
            if close is None or close > end:
                return None
            nested[tag] = buf[pos:close]
            values[tag] = None
            pos = close + 8
            continue
        if pos + length > end:
            return None
        values[tag] = buf[pos : pos + length] if length else None
        pos += length
    parts: list[bytes] = []
    for tag in sorted(values):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # group lengths are not written (as write_dataset)
        value = values[tag]
        if tag in nested:
            done = _implicit_sequence(tag, nested[tag], undefined=True)
            if done is None:
                return None
            parts.append(done)
            continue
        vr = _copy_vr(tag, value, _creator_of(values, tag))
        done = None
        if vr is not None and (value is not None or vr != "UN"):  # an empty UN: pydicom decides (_raw_bytes)
            done = _value_bytes(tag, vr, value or b"", undefined=False)
        elif is_sequence(tag):
            done = _implicit_sequence(tag, value or b"")
        if done is None:
            return None
        parts.append(done)
    return b"".join(parts), pos


def _value_bytes(tag: int, vr: str, value: bytes, *, undefined: bool) -> bytes | None:
    """An element in explicit VR little endian from its value bytes, or ``None`` (does not fit)."""
    n = len(value)
    head = _TAG.pack(tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_VRS:
        head += b"\x00\x00" + _LONG.pack(0xFFFFFFFF if undefined else n)
    elif undefined or n > 0xFFFF:
        return None
    else:
        head += _SHORT.pack(n)
    return head + value + _SEQ_DELIMITER if undefined else head + value


def _raw_bytes(elem: RawDataElement, vr: str | None) -> bytes | None:
    """``write_data_element``'s output for a raw element whose value bytes are written as read
    (explicit VR little endian out), or ``None`` (let pydicom write it)."""
    value, tag = elem.value, elem.tag
    if value is None and elem.length == 0 and vr != "UN":
        # an empty element (pydicom reads its value as None): header only, as pydicom writes it (an
        # empty UN is written under the dictionary's VR when pydicom knows the tag: pydicom decides)
        value = b""
    if vr is None or vr not in _KNOWN_VRS or not isinstance(value, bytes):
        return None  # no VR, or one pydicom does not know (it refuses to write it: the same error)
    undefined = elem.length == 0xFFFFFFFF
    if undefined and tag == _PIXEL_DATA:
        return None  # pydicom checks the encapsulation
    return _value_bytes(tag, vr, value, undefined=undefined)


def native_frames(ds: Dataset, spec: PixelSpec) -> NDArray[np.integer]:
    """:func:`medcodec.dicom.compress.dataset_frames` for ``ds``: read with numpy when its pixel data
    are native little-endian 16-bit single-sample values, else by ``dataset_frames``."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    elem = ds._dict.get(_PIXEL_DATA)  # type: ignore[call-overload]
    raw = elem.value if isinstance(elem, RawDataElement) else None
    frames = int(spec.extra.get("number_of_frames", 0) or 0)
    rows, cols = int(spec.extra.get("rows", 0) or 0), int(spec.extra.get("columns", 0) or 0)
    need = frames * rows * cols * 2
    if (
        ts not in _NATIVE_LE
        or not isinstance(raw, bytes)
        or elem.length == 0xFFFFFFFF
        or int(spec.extra.get("bits_allocated", 0) or 0) != 16
        or int(ds.get("SamplesPerPixel", 1) or 1) != 1
        or need == 0
        or len(raw) < need
    ):
        return dataset_frames(ds, spec)
    arr = np.frombuffer(raw, dtype="<i2" if spec.signed else "<u2", count=frames * rows * cols)
    return stored_values(arr.reshape(frames, rows, cols), spec)
