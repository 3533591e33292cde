"""The live shortcuts (:mod:`medcodec.delivery.fastwrite`) give what the pydicom-only path gives.

Each real file is coded twice by ``Preset.encode_instance(measure=False)`` (the
live call): once with the shortcuts (numpy pixel read, raw-element writer) and once with them
switched off (``pydicom`` ``pixel_array`` + ``dcmwrite``). The files must be the same bytes, and
so the same data set element by element (checked too, so a failure says which element).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from delivery_data import CHEST, HEAD, MR, series_files
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medcodec.delivery import fastwrite, presets
from medcodec.delivery.fastread import read_native
from medcodec.delivery.fastwrite import encode_file_fast, native_frames
from medcodec.dicom import pixel_spec_from_dataset
from medcodec.dicom.compress import dataset_frames
from medcodec.dicom.write import encode_file
from medcodec.errors import CodecError, DicomError

CASES = {
    "ct-explicit": (HEAD, 2),
    "ct-implicit": (CHEST, 2),
    "mr-implicit": (MR, 2),
}


def _files(shared_data: Path, case: str) -> list[Path]:
    folder, count = CASES[case]
    return series_files(shared_data, folder)[10 : 10 + count]


def _both(data: bytes, preset: str, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    p = presets.PRESETS[preset]
    fast = p.encode_instance(data, measure=False)
    with monkeypatch.context() as m:
        m.setattr(presets, "_FAST_IO", False)
        slow = p.encode_instance(data, measure=False)
    assert fast.entry == slow.entry
    return fast.data, slow.data


def _assert_same_dataset(a: bytes, b: bytes) -> None:
    da, db = pydicom.dcmread(io.BytesIO(a)), pydicom.dcmread(io.BytesIO(b))
    assert da.file_meta == db.file_meta
    assert list(da.keys()) == list(db.keys())
    for tag in da.keys():
        assert da[tag] == db[tag], f"element {tag} differs"


@pytest.mark.realdata
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
def test_live_file_is_identical_with_and_without_shortcuts(shared_data, monkeypatch, case, preset):
    for path in _files(shared_data, case):
        fast, slow = _both(path.read_bytes(), preset, monkeypatch)
        _assert_same_dataset(fast, slow)
        assert fast == slow
        ds = pydicom.dcmread(io.BytesIO(fast))
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
        assert "DERIVED" in ds.ImageType


@pytest.mark.parametrize("name", ["emri_small.dcm", "CT_small.dcm", "MR_small.dcm"])
def test_multiframe_and_small_files_identical(monkeypatch, name):
    fast, slow = _both(Path(get_testdata_file(name)).read_bytes(), "diagnostic", monkeypatch)
    _assert_same_dataset(fast, slow)
    assert fast == slow


@pytest.mark.realdata
@pytest.mark.parametrize("case", sorted(CASES))
def test_writer_and_reader_match_pydicom(shared_data, case):
    path = _files(shared_data, case)[0]
    ds = pydicom.dcmread(path)
    spec = pixel_spec_from_dataset(ds)
    a, b = native_frames(ds, spec), dataset_frames(ds, spec)
    assert a.dtype == b.dtype and np.array_equal(a, b)
    ds.SOPInstanceUID = "1.2.3.4"  # a changed element among raw ones
    assert encode_file_fast(ds) == encode_file(ds)


@pytest.mark.realdata
def test_reader_masks_dirty_high_bits(shared_data):
    path = shared_data / "singles/mr_384x384_12bit_unsigned_dirty_high_bits.dcm"
    ds = pydicom.dcmread(path)
    spec = pixel_spec_from_dataset(ds)
    a, b = native_frames(ds, spec), dataset_frames(ds, spec)
    assert int(np.frombuffer(ds.PixelData, "<u2").max()) > spec.max_value  # the case is real
    assert np.array_equal(a, b)


@pytest.mark.realdata
def test_writer_matches_dcmwrite_on_every_shared_file(shared_data):
    """Every real file (all series, all single images and syntaxes), read and one element changed:
    the raw-element writer gives dcmwrite's bytes (or hands the file to it)."""
    files = sorted(p for p in shared_data.rglob("*.dcm") if p.is_file())
    assert len(files) > 300
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = "1.2.3.4"
        assert encode_file_fast(ds) == encode_file(ds), path.name


def test_writer_matches_dcmwrite_on_pydicom_test_files():
    """pydicom's own test files (odd encodings, private tags, sequences, empty values): the
    raw-element writer gives dcmwrite's bytes wherever dcmwrite can write the file."""
    checked = 0
    for name in get_testdata_files("*.dcm"):
        try:
            ds = pydicom.dcmread(name)
            ds.SOPInstanceUID = "1.2.3.4"
            expected = encode_file(ds)
        except Exception:
            continue  # not writable as a PS3.10 file by dcmwrite either (e.g. no file meta)
        ds = pydicom.dcmread(name)
        ds.SOPInstanceUID = "1.2.3.4"
        assert encode_file_fast(ds) == expected, Path(name).name
        checked += 1
    assert checked > 100


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def _implicit_file(body: bytes) -> bytes:
    """A PS3.10 file in implicit VR little endian with ``body`` (raw elements, in tag order) after a
    minimal header: the bytes exactly as a scanner might write them, padding included."""
    buffer = io.BytesIO()
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue() + body


@pytest.mark.parametrize(
    "value",
    [b"ABCD  ", b"AB\x00\x00", b" 12 ", b"1\\2 ", b"A\\ B ", b"ABC ", b"", b"A\\B\\C "],
)
@pytest.mark.parametrize("tag", [0x00081030, 0x00200013, 0x00281050, 0x00080008, 0x00081040])
def test_implicit_text_copied_only_when_pydicom_writes_it_back(tag, value):
    """Text read with implicit VR is copied only when pydicom would write the same bytes (padding
    stripped and redone, numeric strings' spaces dropped): otherwise both paths convert it."""
    body = _element(0x00080016, b"1.2.840.10008.5.1.4.1.1.2\x00") + _element(0x00080018, b"1.2.3\x00")
    body += _element(tag, value)
    written = []
    for write in (encode_file, encode_file_fast):
        ds = pydicom.dcmread(io.BytesIO(_implicit_file(body)))
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        try:
            written.append(write(ds))
        except DicomError as exc:  # e.g. 'ABCD' as IS: then both refuse it
            written.append(type(exc))
    assert written[0] == written[1]


def test_implicit_sequences_and_private_items_match_dcmwrite(monkeypatch):
    """Defined-length sequences read with implicit VR are written from their bytes: items of defined
    and undefined length, a nested sequence, empty and private elements (creator in the item),
    an over-padded private text that pydicom rewrites; a sequence holding an empty private element
    of unknown VR is left to pydicom. Both give dcmwrite's bytes."""
    ref = _element(0x00081150, b"1.2.840.10008.5.1.4.1.1.2\x00") + _element(0x00081155, b"1.2.3.4.5\x00")
    item_defined = b"\xfe\xff\x00\xe0" + struct.pack("<L", len(ref)) + ref
    private = _element(0x00290010, b"ACME 1.0") + _element(0x00291001, b"ABC ")
    nested = _element(0x00081140, item_defined)
    end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    item_undefined = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + ref + _element(0x00200013, b"") + private + nested + end
    copied = _element(0x00081115, item_defined + item_undefined)  # Referenced Series Sequence
    empty_un = _element(0x00290010, b"ACME 1.0") + _element(0x00291002, b"")
    converted = _element(0x00081120, b"\xfe\xff\x00\xe0" + struct.pack("<L", len(empty_un)) + empty_un)
    padded = _element(0x00091010, b"GEMS_IDEN_01") + _element(0x00091030, b"LONGWOOD15MR    ")
    body = (
        _element(0x00080016, b"1.2.840.10008.5.1.4.1.1.2\x00")
        + _element(0x00080018, b"1.2.3\x00")
        + _element(0x00080050, b"")
        + copied
        + converted
        + padded
        + _element(0x00200013, b"7 ")
    )
    results: dict[int, bool] = {}
    original = fastwrite._implicit_sequence

    def spy(tag: int, value: bytes) -> bytes | None:
        out = original(tag, value)
        results[tag] = out is not None
        return out

    monkeypatch.setattr(fastwrite, "_implicit_sequence", spy)
    for change in (False, True):
        written = []
        for write in (encode_file, encode_file_fast):
            ds = pydicom.dcmread(io.BytesIO(_implicit_file(body)))
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            if change:
                ds.SOPInstanceUID = "1.2.3.4"
            written.append(write(ds))
        assert written[0] == written[1]
    assert results[0x00081115] and results[0x00081140]  # copied from the bytes, nested sequence too
    assert not results[0x00081120]  # refused where pydicom must decide
    ds = pydicom.dcmread(io.BytesIO(written[0]))
    assert len(ds.ReferencedSeriesSequence) == 2 and ds.ReferencedSeriesSequence[1].ReferencedImageSequence


def _same_as_dcmread(data: bytes) -> bool | None:
    """``read_native(data)`` against ``dcmread``: ``None`` when it declines, else whether every
    element is what pydicom read (an undefined-length sequence it keeps raw converts to pydicom's)."""
    got = read_native(data)
    if got is None:
        return None
    ref = pydicom.dcmread(io.BytesIO(data))
    assert got.file_meta == ref.file_meta and got.preamble == ref.preamble
    assert got.original_encoding == ref.original_encoding and got._character_set == ref._character_set
    assert list(got._dict) == list(ref._dict)
    sequences = []
    for tag, expected in ref._dict.items():
        found = got._dict[tag]
        if isinstance(expected, DataElement) and isinstance(found, RawDataElement):
            assert expected.VR == "SQ" and found.length == 0xFFFFFFFF, tag
            sequences.append(tag)
        else:
            assert type(found) is type(expected) and found == expected, tag
    for tag in sequences:  # converted only now: conversions may touch other elements
        assert got[tag].is_undefined_length and _same_items(got[tag].value, ref[tag].value), tag
    return True


def _same_items(a: Any, b: Any) -> bool:
    """Sequence items element by element without converting raw ones (a damaged nested value
    would raise in both): raw elements equal as read (but for their offset), parsed sequences
    recursively."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if list(x._dict) != list(y._dict):
            return False
        for tag, e in x._dict.items():
            f = y._dict[tag]
            if isinstance(e, RawDataElement) or isinstance(f, RawDataElement):
                # value_tell: pydicom counts it from the sequence's value when it converts a raw one
                if not isinstance(e, RawDataElement) or not isinstance(f, RawDataElement):
                    return False
                if e._replace(value_tell=0) != f._replace(value_tell=0):
                    return False
            elif e.VR == "SQ":
                if not _same_items(e.value, f.value):
                    return False
            elif e != f:
                return False
    return True


@pytest.mark.realdata
def test_reader_matches_dcmread(shared_data):
    """read_native gives dcmread's data set on every real file it takes (and takes the native ones),
    and on pydicom's test files."""
    files = sorted(p for p in shared_data.rglob("*.dcm") if p.is_file())
    taken = [_same_as_dcmread(p.read_bytes()) for p in files]
    assert taken.count(True) > 300
    natives = [Path(n) for n in get_testdata_files("*.dcm")]
    results = []
    for path in natives:
        try:
            pydicom.dcmread(path)
        except Exception:
            continue
        results.append(_same_as_dcmread(path.read_bytes()))
    assert results.count(True) > 20


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"])
def test_writer_leaves_the_file_meta_alone(name):
    """The writer shares the file meta's elements instead of copying them: writing must not change
    the data set's own file meta (the group length, the media storage UIDs)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = "1.2.3.4"  # differs from the meta's Media Storage SOP Instance UID
    before = {tag: (elem.VR, elem.value) for tag, elem in ds.file_meta.items()}
    written = encode_file_fast(ds)
    assert {tag: (elem.VR, elem.value) for tag, elem in ds.file_meta.items()} == before
    assert pydicom.dcmread(io.BytesIO(written)).file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert written == encode_file(ds)


@pytest.mark.realdata
def test_reader_and_live_encoding_on_mutated_files(shared_data):
    """Stored originals come from anywhere (STOW, C-STORE): real files with header bytes flipped, cut
    or overwritten with lengths and delimiters. The reader gives dcmread's data set or declines
    (then dcmread reads); encode_instance gives a file pydicom reads back, or passes the original
    through with the reason, or raises from the one error hierarchy, never anything else; and
    when both the shortcut and the pydicom-only paths code the file, it is the same file. (On a
    damaged element the two may differ in whether they code at all: the writer never copies an
    element whose VR is not one of PS3.5, where dcmwrite would write it as it came.)"""
    rng = np.random.default_rng(20261130)
    sources = [series_files(shared_data, folder)[3].read_bytes() for folder in (CHEST, MR, HEAD)]
    sources += [Path(get_testdata_file(n)).read_bytes() for n in ("CT_small.dcm", "MR_small.dcm")]
    hostile = [b"\xff\xff\xff\xff", b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0", b"\xfe\xff\x0d\xe0", b"SQ\x00\x00",
               b"\x00\x00\x00\x00", b"UN\x00\x00"]  # fmt: skip
    taken = coded = 0
    for trial in range(200):
        data = bytearray(sources[trial % len(sources)])
        header_end = min(len(data), 6000)  # mutate the header, where the parsers work
        for _ in range(int(rng.integers(1, 5))):
            at = int(rng.integers(132, header_end))
            if rng.random() < 0.5:
                data[at] ^= 1 << int(rng.integers(0, 8))
            else:
                chunk = hostile[int(rng.integers(0, len(hostile)))]
                data[at : at + len(chunk)] = chunk
        if trial % 7 == 0:
            del data[int(rng.integers(140, len(data))) :]  # cut short
        blob = bytes(data)
        try:
            found = _same_as_dcmread(blob)
        except AssertionError:
            raise
        except Exception as exc:  # dcmread refused the file (or a value in it): the reader must decline
            assert read_native(blob) is None, f"trial {trial}: read_native took what dcmread refuses ({exc!r})"
            continue
        taken += found is True
        files = []
        for fast in (True, False):
            with pytest.MonkeyPatch.context() as m:
                m.setattr(presets, "_FAST_IO", fast)
                try:
                    out = presets.PRESETS["diagnostic"].encode_instance(blob, measure=False)
                except CodecError:
                    continue  # one hierarchy: a clear error
            if out.entry.passthrough:
                assert out.data == blob and out.entry.reason, f"trial {trial}"
            else:
                pydicom.dcmread(io.BytesIO(out.data))  # what was written reads back
                files.append(out.data)
        if len(files) == 2:
            assert files[0] == files[1], f"trial {trial}"
            coded += 1
    assert taken > 50 and coded > 50  # most mutations leave files both paths take


def test_implicit_cache_stays_bounded(monkeypatch):
    """The per-process cache of implicit-VR elements is cleared when it holds too much: a study
    whose every element is new costs at most its byte budget."""
    monkeypatch.setattr(fastwrite, "_CACHE_BYTES", 20_000)
    monkeypatch.setattr(fastwrite, "_IMPLICIT_CACHE", {})
    monkeypatch.setattr(fastwrite, "_cache_held", [0])
    for i in range(2_000):
        value = f"{i:06d}".encode()
        fastwrite._remember((0x00081030, value, None), b"x" * 200)
        assert fastwrite._cache_held[0] <= 20_000
    held = sum(100 + len(k[1] or b"") + len(v) for k, v in fastwrite._IMPLICIT_CACHE.items())
    assert held == fastwrite._cache_held[0] and 0 < len(fastwrite._IMPLICIT_CACHE) < 2_000


class _CountingDict(dict):  # type: ignore[type-arg]
    hits = 0

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        found = super().get(key, default)
        if found is not None:
            type(self).hits += 1
        return found


@pytest.mark.realdata
@pytest.mark.parametrize("case", sorted(CASES))
def test_remembered_runs_give_dcmwrite_bytes(shared_data, monkeypatch, case):
    """Consecutive unchanged raw elements are written as runs remembered under their bytes in the
    file: over a series (values that change from slice to slice learnt on the way) the runs are
    found again, and every file is still dcmwrite's bytes, element changes included."""
    monkeypatch.setattr(fastwrite, "_RUN_CACHE", _CountingDict())
    monkeypatch.setattr(fastwrite, "_ALONE", set())
    monkeypatch.setattr(fastwrite, "_LAST_VALUE", {})
    _CountingDict.hits = 0
    folder, _ = CASES[case]
    for i, path in enumerate(series_files(shared_data, folder)[:8]):
        data = path.read_bytes()
        ds = read_native(data)
        assert ds is not None and ds.__dict__["_medcodec_source"] is data
        ds.SOPInstanceUID = f"1.2.3.{i}"  # changed elements among the raw ones, as a preset does
        ds.ImageType = ["DERIVED", "PRIMARY"]
        del ds[0x00200013]  # a deleted one: the runs around it must not bridge the gap
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # written in explicit VR, as the presets write
        expected = encode_file(_same(data, i))
        assert encode_file_fast(ds) == expected, f"{path.name}"
    assert _CountingDict.hits > 0, "no run was found again"
    assert fastwrite._ALONE, "nothing was learnt to vary along the series"


def _same(data: bytes, i: int) -> Any:
    """The same changes on a data set pydicom read itself (no runs: its reference bytes)."""
    ref = pydicom.dcmread(io.BytesIO(data))
    ref.SOPInstanceUID = f"1.2.3.{i}"
    ref.ImageType = ["DERIVED", "PRIMARY"]
    del ref[0x00200013]
    ref.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ref


@pytest.mark.realdata
def test_multi_valued_private_creator_is_written_as_dcmwrite_writes_it(shared_data):
    """A private creator changed to two values (not hashable as pydicom holds it) broke the writer's
    cache keys (TypeError, so the live file fell back to the original); it is written as dcmwrite
    writes it, and again from the caches on a second pass."""
    data = series_files(shared_data, MR)[3].read_bytes()
    for _ in range(2):
        ds = read_native(data)
        assert ds is not None
        creator = next(t for t in ds._dict if t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF)
        ds[creator].value = ["GEMS_A", "GEMS_B"]
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ref = pydicom.dcmread(io.BytesIO(data))
        ref[creator].value = ["GEMS_A", "GEMS_B"]
        ref.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        with pytest.warns(UserWarning, match="private creator"):
            expected = encode_file(ref)
        assert encode_file_fast(ds) == expected


def _private_un_vr(data: bytes, tag: int) -> bytes:
    """The VR bytes an explicit VR LE file gives ``tag`` (top level), read off the bytes: pydicom itself
    turns UN back into the private dictionary's VR when it reads (``replace_un_with_known_vr``)."""
    needle = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    at = data.index(needle, 132)
    return data[at + 4 : at + 6]


def test_a_private_value_too_long_for_its_dictionary_vr_is_written_un_on_every_path() -> None:
    """An outside audit (2026-12-04): a Siemens (0051,100E) of 22 characters read with implicit VR was
    written SH (at most 16), an invalid value in every explicit VR file (DCMTK and GDCM write UN).
    Now UN with its bytes, in the pydicom path, the fast writer and the Explicit VR LE transcode, alike;
    a value that fits keeps the dictionary's VR."""
    from medcodec.delivery.live import _to_explicit_le

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.add_new(0x00510010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0051100E, "SH", "Tra>Cor(2.8)>Sag(0.6)")  # 21 characters: no SH
    ds.add_new(0x0051100C, "SH", "FoV 200*200")  # fits its dictionary VR (SH)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=True)
    implicit = buffer.getvalue()
    full = encode_file(_explicit(pydicom.dcmread(io.BytesIO(implicit))))
    fast = encode_file_fast(_explicit(pydicom.dcmread(io.BytesIO(implicit))))
    assert full == fast
    transcoded = _to_explicit_le(implicit)
    for out in (full, transcoded):
        assert _private_un_vr(out, 0x0051100E) == b"UN" and _private_un_vr(out, 0x0051100C) == b"SH"
        back = pydicom.dcmread(io.BytesIO(out))
        assert back[0x0051100E].value in (b"Tra>Cor(2.8)>Sag(0.6) ", "Tra>Cor(2.8)>Sag(0.6)")


def _explicit(ds: pydicom.Dataset) -> pydicom.Dataset:
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds
