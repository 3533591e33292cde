"""The live shortcuts (:mod:`medcodec.delivery.fastwrite`) give what the pydicom-only path gives.

Each real file is coded twice by ``Preset.encode_instance(measure=False)`` (the
live call): once with the shortcuts (numpy pixel read, raw-element writer) and once with them
switched off (``pydicom`` ``pixel_array`` + ``dcmwrite``). The files must be the same bytes, and
so the same data set element by element (checked too, so a failure says which element).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import CHEST, HEAD, MR, series_files
from pydicom.data import get_testdata_file

from medcodec.delivery import presets
from medcodec.delivery.fastwrite import encode_file_fast, native_frames
from medcodec.dicom import pixel_spec_from_dataset
from medcodec.dicom.compress import dataset_frames
from medcodec.dicom.write import encode_file

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
