"""Issue 10 item 9 on real data: every input is reported, duplicates are detected, a full disk
leaves no half-written series."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from medcodec.cli.main import main
from medcodec.dicom import encode_series_to_dicom, read_series
from medcodec.errors import OutputError

CT_SMALL = "singles/ct_CT1_small_128x128_signed16.dcm"
CHEST = "ct_chest_lungpetctdx_A0001_philips"


def _mixed_folder(shared_data: Path, root: Path) -> Path:
    folder = root / "in"
    folder.mkdir()
    shutil.copy(shared_data / CT_SMALL, folder / "a.dcm")
    shutil.copy(shared_data / CT_SMALL, folder / "a_copy.dcm")  # the same instance twice
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "random.bin").write_bytes(os.urandom(3000))
    (folder / "notes").write_text("not an image, just some words\n")
    return folder


@pytest.mark.realdata
def test_every_non_dicom_input_and_every_duplicate_is_listed(shared_data: Path, tmp_path: Path) -> None:
    found = read_series([_mixed_folder(shared_data, tmp_path)])
    assert [s.shape for s in found.series] == [(1, 128, 128)]  # not a 2-frame series of two copies
    failed = {Path(p).name: str(e) for p, e in found.failures}
    assert set(failed) == {"empty.dcm", "random.bin", "notes", "a_copy.dcm"}
    assert "not a DICOM file" in failed["empty.dcm"] and "not a DICOM file" in failed["random.bin"]
    assert "duplicate SOP Instance UID" in failed["a_copy.dcm"] and "a.dcm" in failed["a_copy.dcm"]


@pytest.mark.realdata
def test_cli_lists_them_and_exits_1(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _mixed_folder(shared_data, tmp_path)
    assert main(["encode", str(folder), "-o", str(tmp_path / "out"), "--quality", "80"]) == 1
    err = capsys.readouterr().err
    for name in ("empty.dcm", "random.bin", "notes", "a_copy.dcm"):
        assert name in err
    assert len(list((tmp_path / "out").glob("*.mdc"))) == 1


@pytest.fixture
def small_disk(tmpfs) -> Path:
    """A 1.5 MB tmpfs: a real full disk (needs root, as the CI container has)."""
    return tmpfs(1536)


@pytest.mark.realdata
def test_a_full_disk_leaves_nothing_half_written(shared_data: Path, small_disk: Path) -> None:
    files = sorted((shared_data / CHEST).iterdir())[:30]
    series = read_series(files).series[0]
    out = small_disk / "series"
    with pytest.raises(OutputError, match="No space left"):
        encode_series_to_dicom(series, out, syntax="jpeg", quality=98, jobs=2, failures=[])
    assert not out.exists()  # no file of the series, no staging folder, no empty series folder it made
    # a series that fits is written whole
    few = read_series(files[:2]).series[0]
    results = encode_series_to_dicom(few, out, syntax="jpeg", quality=60, failures=[])
    assert sorted(p.name for p in out.iterdir()) == sorted(r.path.name for r in results) and len(results) == 2
