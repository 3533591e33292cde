"""Series <-> .mdc in the library (what `medcodec encode` / `decode --to dicom` call), with progress callbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from medcodec import decode, read_header
from medcodec.dicom import read_series
from medcodec.dicom.series_mdc import decode_mdc_to_dicom, encode_series_to_mdc
from medcodec.errors import InvalidInputError
from medcodec.metrics import psnr

CHEST = "ct_chest_lungpetctdx_A0001_philips"


@pytest.mark.realdata
def test_series_to_mdc_and_back_to_dicom(shared_data: Path, tmp_path: Path) -> None:
    paths = [shared_data / CHEST / f"{i:04d}.dcm" for i in (10, 11, 12, 13)]
    series = read_series(paths).series[0]
    calls: list[tuple[int, int | None]] = []
    out = tmp_path / "ct.mdc"
    summary = encode_series_to_mdc(series, out, quality=90, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    data = out.read_bytes()
    assert summary.nbytes == len(data) and summary.frames == 4 and read_header(data).frames == 4
    assert psnr(series.pixels(), decode(data), bits_stored=12) > 55
    with pytest.raises(InvalidInputError, match="exists"):
        encode_series_to_mdc(series, out, quality=90)
    with pytest.raises(InvalidInputError):
        encode_series_to_mdc(series, paths[0], quality=90, overwrite=True)  # never over an input

    written, series_uid, ratio = decode_mdc_to_dicom(data, tmp_path / "dicom", source=out)
    assert len(written) == 4 and ratio > 3
    for path, src in zip(sorted(written, key=lambda p: int(pydicom.dcmread(p).InstanceNumber)), paths):
        ds, orig = pydicom.dcmread(path), pydicom.dcmread(src)
        assert ds.SeriesInstanceUID == series_uid != orig.SeriesInstanceUID
        assert ds.LossyImageCompression == "01" and ds.PatientID == orig.PatientID
        assert np.abs(ds.pixel_array.astype(int) - orig.pixel_array).max() < 100


def test_mdc_without_headers_is_refused(tmp_path: Path) -> None:
    from medcodec import encode

    data = encode(np.zeros((16, 16), np.uint16), bits_stored=12)
    with pytest.raises(InvalidInputError, match="dcmh"):
        decode_mdc_to_dicom(data, tmp_path / "x")
