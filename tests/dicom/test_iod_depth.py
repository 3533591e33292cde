"""PET (and RT Dose) copies keep the Bits Stored their IOD fixes.

The PET Image Module (PS3.3 C.8.9.4) fixes Bits Allocated and Bits Stored at 16: a 12-bit JPEG copy
(Bits Stored 12, High Bit 11) is no PET image, and dciodvfy says so (checked 2026-12-04, seventeenth
session, on the header below). 12-bit JPEG is refused for them, with the syntaxes that keep the
depth; the delivery presets deliver them as HTJ2K lossless, bit-exact.

The pixels are real (a slice of the shared chest CT, scaled to 16 bits as a PET's counts are); the
PET header around them is synthetic: no real PET could be found on PyPI, Debian or npm.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGExtended12Bit, generate_uid

from medcodec.delivery.presets import PRESETS
from medcodec.dicom import compress, encode_series_to_dicom, read_series
from medcodec.dicom.iod import bits_stored_allowed
from medcodec.errors import UnsupportedImageError
from medcodec.testing.tools import dciodvfy_errors

PET = "1.2.840.10008.5.1.4.1.1.128"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"


def _pet(shared_data: Path, folder: Path) -> Path:
    chest = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[10]
    ds = pydicom.dcmread(chest)
    counts = (ds.pixel_array.astype(np.int64) - int(ds.pixel_array.min())) * 12  # 0..~49000: 16 bits
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(PET)
    ds.Modality = "PT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = counts.astype("<u2").tobytes()
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType, ds.Units = "0.0813", "0", "BQML", "BQML"
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            del ds[keyword]
    path = folder / "pet.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_pet_and_rt_dose_fix_bits_stored() -> None:
    pet, dose, ct = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
    pet.SOPClassUID, dose.SOPClassUID, ct.SOPClassUID = (
        PET,
        "1.2.840.10008.5.1.4.1.1.481.2",
        "1.2.840.10008.5.1.4.1.1.2",
    )
    assert [bits_stored_allowed(pet, b) for b in (12, 16)] == [False, True]
    assert [bits_stored_allowed(dose, b) for b in (12, 16, 32)] == [False, True, True]
    assert bits_stored_allowed(ct, 12)


@pytest.mark.realdata
def test_a_12_bit_jpeg_copy_of_a_pet_is_refused_and_the_depth_keeping_ones_are_written(
    shared_data: Path, tmp_path: Path
) -> None:
    source = _pet(shared_data, tmp_path)
    series = read_series(tmp_path).series[0]
    with pytest.raises(UnsupportedImageError, match=r"Bits Stored at 16 .*dicom-htj2k"):
        encode_series_to_dicom(series, tmp_path / "jpeg", syntax="jpeg", quality=90)
    assert not list((tmp_path / "jpeg").glob("*.dcm"))  # nothing written
    with pytest.raises(UnsupportedImageError, match="Bits Stored"):
        compress(pydicom.dcmread(source), JPEGExtended12Bit, quality=90)
    # JPEG 2000 (.91): the installed dciodvfy does not know the HTJ2K syntaxes (docs/audits.md)
    (result,) = encode_series_to_dicom(series, tmp_path / "j2k", syntax="j2k", quality=90)
    copy = pydicom.dcmread(result.path)
    assert (int(copy.BitsStored), int(copy.HighBit), float(copy.RescaleIntercept)) == (16, 15, 0.0)
    assert dciodvfy_errors(result.path) <= dciodvfy_errors(source)


@pytest.mark.realdata
@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
def test_the_presets_deliver_a_pet_losslessly(shared_data: Path, tmp_path: Path, preset: str) -> None:
    source = _pet(shared_data, tmp_path)
    out = PRESETS[preset].encode_instance(source.read_bytes())
    assert out.entry.transfer_syntax_uid == HTJ2K_LOSSLESS and not out.entry.passthrough, out.entry
    copy = pydicom.dcmread(io.BytesIO(out.data))
    assert int(copy.BitsStored) == 16
    assert np.array_equal(copy.pixel_array, pydicom.dcmread(source).pixel_array)


def _signed(path: Path) -> Path:
    """The PET of :func:`_pet` with signed pixels, as some scanners write them (-800..)."""
    ds = pydicom.dcmread(path)
    values = ds.pixel_array.astype(np.int64) - 800
    ds.PixelRepresentation, ds.PixelData = 1, values.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.realdata
def test_a_signed_pet_is_not_shifted_by_a_syntax_without_a_sign(shared_data: Path, tmp_path: Path) -> None:
    """An outside re-check (2026-12-04, C2): ``dicom-jpegls``, which the refusal of JPEG recommended,
    shifted a signed PET to unsigned with Rescale Intercept -800; PET fixes it at 0 (C.8.9.4). Refused,
    naming the syntaxes that keep depth and sign; every preset delivers PET losslessly (HTJ2K)."""
    source = _signed(_pet(shared_data, tmp_path))
    series = read_series(tmp_path).series[0]
    with pytest.raises(UnsupportedImageError, match=r"Rescale Intercept at 0 .*use dicom-j2k or dicom-htj2k"):
        encode_series_to_dicom(series, tmp_path / "jpegls", syntax="jpegls", quality=90)
    with pytest.raises(UnsupportedImageError, match=r"Bits Stored at 16 .*use dicom-j2k or dicom-htj2k"):
        encode_series_to_dicom(series, tmp_path / "jpeg", syntax="jpeg", quality=90)
    with pytest.raises(UnsupportedImageError, match="Rescale Intercept"):
        compress(pydicom.dcmread(source), "1.2.840.10008.1.2.4.80")  # JPEG-LS lossless
    (result,) = encode_series_to_dicom(series, tmp_path / "j2k", syntax="j2k", quality=90)
    copy = pydicom.dcmread(result.path)
    assert float(copy.RescaleIntercept) == 0.0 and int(copy.PixelRepresentation) == 1
    for preset in ("diagnostic", "near-lossless", "preview"):
        out = PRESETS[preset].encode_instance(source.read_bytes())
        assert out.entry.transfer_syntax_uid == HTJ2K_LOSSLESS, (preset, out.entry)
        assert np.array_equal(pydicom.dcmread(io.BytesIO(out.data)).pixel_array, pydicom.dcmread(source).pixel_array)


@pytest.mark.realdata
def test_a_16_bit_nm_keeps_its_depth(shared_data: Path, tmp_path: Path) -> None:
    """An outside re-check (2026-12-04, C1): a 16-bit NM Image Storage object got 12-bit JPEG copies
    (Bits Stored 12, which C.8.4.7 does not allow: 8 or 16), with a rescale the NM IOD does not have."""
    ds = pydicom.dcmread(_pet(shared_data, tmp_path))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.20")
    ds.Modality = "NM"
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "Units"):
        del ds[keyword]
    path = tmp_path / "pet.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(UnsupportedImageError, match=r"Bits Stored at 8/16"):
        encode_series_to_dicom(read_series(tmp_path).series[0], tmp_path / "jpeg", syntax="jpeg", quality=90)
    out = PRESETS["diagnostic"].encode_instance(path.read_bytes())
    assert out.entry.transfer_syntax_uid == HTJ2K_LOSSLESS, out.entry
    out = PRESETS["near-lossless"].encode_instance(path.read_bytes())  # JPEG-LS keeps 16 bits: allowed
    assert out.entry.transfer_syntax_uid == "1.2.840.10008.1.2.4.81", out.entry


@pytest.mark.realdata
def test_a_source_already_outside_its_iod_is_coded_as_it_is(shared_data: Path, tmp_path: Path) -> None:
    """An outside re-check (2026-12-04, D2, D4): a PET whose own Rescale Intercept is not 0, or a
    12-bit NM Image Storage object, was refused by every syntax, lossless included (every preset
    then stored it uncompressed). A copy may not break its IOD; keeping what the source has does not."""
    ds = pydicom.dcmread(_pet(shared_data, tmp_path))
    ds.RescaleIntercept = "-100"
    path = tmp_path / "pet.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = PRESETS["diagnostic"].encode_instance(path.read_bytes())
    assert out.entry.transfer_syntax_uid == HTJ2K_LOSSLESS and not out.entry.passthrough, out.entry
    (result,) = encode_series_to_dicom(read_series(tmp_path).series[0], tmp_path / "j2k", syntax="j2k", quality=90)
    assert float(pydicom.dcmread(result.path).RescaleIntercept) == -100.0
    nm = pydicom.dcmread(path)
    nm.SOPClassUID = nm.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.20")
    nm.Modality, nm.BitsStored, nm.HighBit = "NM", 12, 11
    nm.PixelData = (nm.pixel_array >> 4).astype("<u2").tobytes()
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "Units"):
        del nm[keyword]
    copy = compress(nm, "1.2.840.10008.1.2.4.90")  # JPEG 2000 lossless: Bits Stored 12 as the source's
    assert int(copy.BitsStored) == 12
