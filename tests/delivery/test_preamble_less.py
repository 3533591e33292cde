"""Preamble-less datasets (no PS3.10 preamble or file meta; ACR-NEMA-era files, some tools' output).

They are stored byte for byte like any file, catalogued in the transfer syntax they are really in
(until 2026-12-01 every one was catalogued as Implicit VR Little Endian, so an Explicit VR Big
Endian file was served under that label), and delivered as PS3.10 files (preamble, file meta, the
same dataset bytes) by the presets that pass them through and by DICOMweb's "as stored" answer;
the `original` preset keeps the stored bytes. Files from pydicom's test set (real-world encodings).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import store  # noqa: F401 (fixture)
from pydicom.data import get_testdata_file

from medcodec.delivery.header import as_part10, read_header, stored_syntax
from medcodec.delivery.live import instance_bytes
from medcodec.delivery.presets import PRESETS

CASES = [
    ("ExplVR_BigEndNoMeta.dcm", "1.2.840.10008.1.2.2"),  # Explicit VR Big Endian
    ("ExplVR_LitEndNoMeta.dcm", "1.2.840.10008.1.2.1"),  # Explicit VR Little Endian
    ("rtstruct.dcm", "1.2.840.10008.1.2"),  # Implicit VR Little Endian
]


def _elements(ds: pydicom.Dataset) -> dict[int, object]:
    return {int(e.tag): e.value for e in ds if e.tag.group != 0x0002 and e.VR != "SQ"}


@pytest.mark.parametrize(("name", "syntax"), CASES)
def test_syntax_is_read_off_the_bytes_and_part10_keeps_the_dataset(name: str, syntax: str) -> None:
    data = Path(get_testdata_file(name)).read_bytes()
    assert data[128:132] != b"DICM"
    ds = read_header(data, name)
    assert stored_syntax(ds) == syntax
    out = as_part10(data, str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax)
    assert out[128:132] == b"DICM" and out.endswith(data)  # the dataset's bytes, untouched
    again = pydicom.dcmread(io.BytesIO(out))  # no force: a PS3.10 file now
    assert again.file_meta.TransferSyntaxUID == syntax
    assert again.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert _elements(again) == _elements(pydicom.dcmread(io.BytesIO(data), force=True))
    assert as_part10(out, "1.2", "1.2", syntax) is out  # a PS3.10 file is returned as it is


def test_a_leading_group_0002_without_preamble_is_replaced_not_duplicated() -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    bare = data[132:]  # the file meta kept, the preamble and "DICM" cut off
    ds = read_header(bare, "bare")
    out = as_part10(bare, str(ds.SOPClassUID), str(ds.SOPInstanceUID), stored_syntax(ds))
    again = pydicom.dcmread(io.BytesIO(out))
    assert again.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert out.count(b"\x02\x00\x10\x00UI") == 1  # one (0002,0010) Transfer Syntax UID
    assert (again.pixel_array == pydicom.dcmread(io.BytesIO(data)).pixel_array).all()


@pytest.mark.parametrize(("name", "syntax"), CASES)
def test_stored_as_is_catalogued_right_and_delivered_as_part10(store, name: str, syntax: str) -> None:
    path = Path(get_testdata_file(name))
    data = path.read_bytes()
    report = store.ingest([path], presets=("diagnostic", "original"))
    record = report.outcomes[0].record
    assert record is not None and record.transfer_syntax_uid == syntax
    with store.open_original(record) as fh:
        assert fh.read() == data

    out, got = instance_bytes(store, record, "*")  # DICOMweb's transfer-syntax=* and DIMSE's "as stored"
    assert got == syntax and out[128:132] == b"DICM" and out.endswith(data)

    for preset, expect in (("diagnostic", "part10"), ("original", "as stored")):
        encoded = PRESETS[preset].encode_instance(data)
        assert encoded.entry.passthrough and encoded.entry.transfer_syntax_uid == syntax
        assert (encoded.data == data) == (expect == "as stored")
        archive = store.archive(record.study_uid, None, preset)
        assert archive is not None
        with store.open_archive(archive) as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
            files = [n for n in zf.namelist() if n.endswith(".dcm")]
            assert len(files) == 1
            member = zf.read(files[0])
            entry = json.loads(zf.read("manifest.json"))["files"][0]
        assert entry["passthrough"] and entry["transfer_syntax_uid"] == syntax and entry["bytes"] == len(member)
        if expect == "as stored":
            assert member == data
        else:
            assert member[128:132] == b"DICM" and member.endswith(data)
            assert pydicom.dcmread(io.BytesIO(member)).file_meta.TransferSyntaxUID == syntax
    assert store.check().consistent


def test_relabel_syntax_changes_the_file_meta_only() -> None:
    """``relabel_syntax``: the Transfer Syntax UID of the file meta (and the writer, medcodec), its
    group length recomputed, every byte after the meta as it was; a dataset without a PS3.10 prefix
    is refused."""
    from medcodec.delivery.header import relabel_syntax
    from medcodec.dicom.write import IMPLEMENTATION_CLASS_UID
    from medcodec.errors import InvalidInputError

    data = Path(get_testdata_file("MR_small_jp2klossless.dcm")).read_bytes()
    src = pydicom.dcmread(io.BytesIO(data))
    assert src.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    for uid in ("1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.2011"):  # same length, and two bytes longer
        out = relabel_syntax(data, uid)
        got = pydicom.dcmread(io.BytesIO(out))
        assert got.file_meta.TransferSyntaxUID == uid
        assert got.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        meta_end = 132 + 12 + src.file_meta.FileMetaInformationGroupLength
        assert out[132 + 12 + got.file_meta.FileMetaInformationGroupLength :] == data[meta_end:]
        assert got.SOPInstanceUID == src.SOPInstanceUID
    with pytest.raises(InvalidInputError):
        relabel_syntax(data[132:], "1.2.840.10008.1.2.4.91")


def _without_file_meta(path: Path, out: Path, implicit: bool) -> Path:
    """``path``'s dataset alone (no preamble, no file meta), as ``dcmconv -F`` writes it."""
    ds = pydicom.dcmread(path)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    pydicom.dcmwrite(out, ds, implicit_vr=implicit, little_endian=True)
    assert out.read_bytes()[128:132] != b"DICM" and out.read_bytes()[:2] == b"\x08\x00"
    return out


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_an_image_without_file_meta_is_read_and_coded(shared_data: Path, tmp_path: Path, implicit: bool) -> None:
    """A CT slice as a bare dataset: the reader, ``compress`` and the presets decode it in the
    syntax its bytes are in. Until 2026-12-06 ``encode`` / ``evaluate`` failed with pydicom's
    "'transfer_syntax_uid' is required", every transcode was 406 and every preset delivered it as
    stored (an outside audit of input syntaxes)."""
    from pydicom.uid import JPEGLSLossless

    from medcodec.dicom import read_series
    from medcodec.dicom.compress import compress

    source = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[0]
    reference = pydicom.dcmread(source).pixel_array
    bare = _without_file_meta(source, tmp_path / "bare.dcm", implicit)
    (series,) = read_series([bare])
    assert np.array_equal(series.pixels()[0], reference)
    assert np.array_equal(list(series.iter_frames())[0], reference)
    coded = compress(pydicom.dcmread(bare, force=True), JPEGLSLossless)
    assert np.array_equal(coded.pixel_array, reference)
    data = bare.read_bytes()
    lossless = PRESETS["lossless"].encode_instance(data)
    assert not lossless.entry.passthrough, lossless.entry
    assert np.array_equal(pydicom.dcmread(io.BytesIO(lossless.data)).pixel_array, reference)
    diagnostic = PRESETS["diagnostic"].encode_instance(data)
    assert not diagnostic.entry.passthrough and diagnostic.entry.lossy, diagnostic.entry


def test_a_colour_file_without_preamble_is_coded_as_with_one(shared_data: Path) -> None:
    """File meta but no preamble and no "DICM": the colour image coded as the same file with them
    (until 2026-12-06 taken for unsupported grayscale and delivered as stored by every preset)."""
    data = (shared_data / "singles" / "us_US1_480x640_rgb_uncompressed.dcm").read_bytes()
    for preset in ("diagnostic", "lossless"):
        whole, bare = PRESETS[preset].encode_instance(data), PRESETS[preset].encode_instance(data[132:])
        assert not whole.entry.passthrough and not bare.entry.passthrough, (preset, bare.entry)
        assert whole.entry.transfer_syntax_uid == bare.entry.transfer_syntax_uid
        a, b = (pydicom.dcmread(io.BytesIO(x.data)).pixel_array for x in (whole, bare))
        assert np.array_equal(a, b)
