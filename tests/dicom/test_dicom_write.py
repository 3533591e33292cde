"""Derived DICOM: pixels, lossy attributes, identity, and never writing over an input."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from medcodec.dicom import derive_dataset, new_uid_map, read_image, read_series, write_derived
from medcodec.errors import InvalidInputError

pytestmark = pytest.mark.realdata

CHEST_SLICE = "ct_chest_lungpetctdx_A0001_philips/0001.dcm"
ENHANCED = "singles/mr_enhanced_multiframe_10f_64x64_rle.dcm"


def _derive(image, **options):
    defaults = dict(ratio=10.0, method="ISO_10918_1", description="medcodec JPEG 12-bit q90")
    return derive_dataset(image.dataset, image.pixels, image.spec, **{**defaults, **options})


def test_written_file_reads_back_with_pixels_and_lossy_attributes(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / CHEST_SLICE)
    original = pydicom.dcmread(shared_data / CHEST_SLICE)
    out = write_derived(tmp_path / "derived.dcm", _derive(image, ratio=12.3456))
    back = pydicom.dcmread(out)

    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(back.pixel_array, image.pixels[0])
    assert back.LossyImageCompression == "01"
    assert float(back.LossyImageCompressionRatio) == 12.35 and back.LossyImageCompressionMethod == "ISO_10918_1"
    assert back.ImageType[0] == "DERIVED" and list(back.ImageType[1:]) == list(original.ImageType[1:])
    assert back.DerivationDescription == "medcodec JPEG 12-bit q90"
    assert back.DerivationCodeSequence[0].CodeValue == "113040"
    assert back.SOPInstanceUID != original.SOPInstanceUID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.file_meta.MediaStorageSOPClassUID == back.SOPClassUID == original.SOPClassUID
    reference = back.SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121320"
    # every original attribute is kept
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "ImagePositionPatient",
                    "PixelSpacing", "RescaleIntercept", "WindowCenter", "KVP", "SliceThickness"):
        assert back[keyword].value == original[keyword].value, keyword
    assert (back.BitsAllocated, back.BitsStored, back.HighBit, back.PixelRepresentation) == (16, 12, 11, 0)
    assert "NumberOfFrames" not in back  # not added to a single-frame IOD
    assert read_image(out).spec == image.spec


def test_ratio_and_method_are_appended_to_prior_values(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / CHEST_SLICE)
    first = write_derived(tmp_path / "1.dcm", _derive(image, ratio=8))
    again = read_image(first)
    second = write_derived(tmp_path / "2.dcm", _derive(again, ratio=2.5, method="MEDCODEC_MDC"), inputs=[first])
    back = pydicom.dcmread(second)
    assert [float(v) for v in back.LossyImageCompressionRatio] == [8.0, 2.5]
    assert list(back.LossyImageCompressionMethod) == ["ISO_10918_1", "MEDCODEC_MDC"]
    assert len({back.SOPInstanceUID, pydicom.dcmread(first).SOPInstanceUID, image.sop_instance_uid}) == 3


def test_lossless_rendition_leaves_lossy_attributes_alone(shared_data: Path) -> None:
    image = read_image(shared_data / CHEST_SLICE)
    ds = _derive(image, lossy=False, description="lossless")
    assert "LossyImageCompressionRatio" not in ds and "LossyImageCompressionMethod" not in ds
    assert ds.get("LossyImageCompression") == image.dataset.get("LossyImageCompression")
    assert ds.ImageType[0] == "DERIVED"


def test_spec_drives_the_image_pixel_and_rescale_attributes(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / "singles/ct_CT1_small_128x128_signed16.dcm")  # signed 16-bit
    offset = -100  # stored 128..2191 -> 28..2091: unsigned 12-bit, HU kept through the intercept
    mapped = (image.pixels.astype(np.int32) + offset).astype(np.uint16)
    spec = image.spec.replace(bits_stored=12, signed=False, rescale_intercept=image.spec.rescale_intercept - offset)
    out = write_derived(tmp_path / "mapped.dcm", derive_dataset(
        image.dataset, mapped, spec, ratio=9, method="ISO_10918_1", description="12-bit mapping"))
    back = read_image(out)
    assert (back.spec.bits_stored, back.spec.signed, back.spec.rescale_intercept) == (12, False, -1024.0 - offset)
    np.testing.assert_array_equal(back.spec.to_output_units(back.pixels), image.spec.to_output_units(image.pixels))
    raw = pydicom.dcmread(out)
    assert (raw.BitsAllocated, raw.BitsStored, raw.HighBit, raw.PixelRepresentation) == (16, 12, 11, 0)


def test_enhanced_multiframe_keeps_frames_and_updates_functional_groups(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / "singles/ct_enhanced_multiframe_2f_512x512.dcm")
    spec = image.spec.replace(rescale_intercept=-2000.0)
    out = write_derived(tmp_path / "mf.dcm", derive_dataset(
        image.dataset, image.pixels, spec, ratio=15, method="ISO_10918_1", description="x"))
    back = pydicom.dcmread(out)
    assert back.NumberOfFrames == 2 and back.pixel_array.shape == (2, 512, 512)
    shared = back.SharedFunctionalGroupsSequence[0]
    assert float(shared.PixelValueTransformationSequence[0].RescaleIntercept) == -2000.0
    assert shared.CTImageFrameTypeSequence[0].FrameType[0] == "DERIVED"
    assert "RescaleIntercept" not in back and "SourceImageSequence" not in back
    assert read_image(out).spec.rescale_intercept == -2000.0
    # the source is named where an enhanced IOD names it (an outside audit, 2026-12-04: nowhere):
    # the Derivation Image functional group, and the Source Image Evidence Sequence it requires
    (derivation,) = shared.DerivationImageSequence
    assert derivation.DerivationCodeSequence[0].CodeValue == "113040"
    (source,) = derivation.SourceImageSequence
    assert source.ReferencedSOPInstanceUID == image.sop_instance_uid
    assert source.PurposeOfReferenceCodeSequence[0].CodeValue == "121320" and "ReferencedFrameNumber" not in source
    (study,) = back.SourceImageEvidenceSequence
    assert study.StudyInstanceUID == image.dataset.StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == image.dataset.SeriesInstanceUID
    assert [s.ReferencedSOPInstanceUID for s in series.ReferencedSOPSequence] == [image.sop_instance_uid]
    rle = read_image(shared_data / ENHANCED)
    back = read_image(write_derived(tmp_path / "rle.dcm", _derive(rle)))
    np.testing.assert_array_equal(back.pixels, rle.pixels)


def test_refuses_to_overwrite_inputs_and_existing_files(shared_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "original.dcm"
    shutil.copy(shared_data / CHEST_SLICE, source)
    before = source.read_bytes()
    ds = _derive(read_image(source))
    with pytest.raises(InvalidInputError, match="refusing to overwrite an input"):
        write_derived(source, ds, inputs=[source], overwrite=True)
    with pytest.raises(InvalidInputError, match="exists already"):
        write_derived(source, ds)
    assert source.read_bytes() == before
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left behind
    target = tmp_path / "out.dcm"
    write_derived(target, ds)
    write_derived(target, ds, inputs=[source], overwrite=True)


def test_one_new_series_uid_for_a_whole_series(shared_data: Path, tmp_path: Path) -> None:
    series = read_series([shared_data / f"ct_chest_lungpetctdx_A0001_philips/{i:04d}.dcm" for i in (1, 2, 3)]).series[0]
    uids = new_uid_map()
    written = []
    for index, (image, frame) in enumerate(zip(series.images, series.iter_frames())):
        ds = derive_dataset(image.dataset, frame, image.spec, ratio=10, method="ISO_10918_1", description="x",
                            new_series_uid=uids[image.series_instance_uid])
        written.append(write_derived(tmp_path / f"{index}.dcm", ds))
    again = read_series(tmp_path)
    assert [len(s) for s in again.series] == [3]
    assert again.series[0].series_instance_uid == uids[series.series_instance_uid] != series.series_instance_uid
    np.testing.assert_array_equal(again.series[0].pixels(), series.pixels())


def test_source_with_invalid_identifiers_is_copied_without_warnings(shared_data: Path, tmp_path: Path) -> None:
    """ct_512x512_12bit_jpeg_lossless.dcm has a hash as SOP Instance UID and over-long SH values."""
    image = read_image(shared_data / "singles/ct_512x512_12bit_jpeg_lossless.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = write_derived(tmp_path / "d.dcm", _derive(image))
    back = pydicom.dcmread(out)
    assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == image.sop_instance_uid
    np.testing.assert_array_equal(back.pixel_array, image.pixels[0])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"ratio": 0}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"method": "iso 10918"}, "0028,2114"),
        ({"method": "A_VERY_LONG_METHOD_NAME"}, "0028,2114"),
        ({"description": "x" * 1025}, "1024"),
    ],
)
def test_invalid_options_are_refused(shared_data: Path, options: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        _derive(read_image(shared_data / CHEST_SLICE), **options)


def test_pixels_outside_the_spec_are_refused(shared_data: Path) -> None:
    image = read_image(shared_data / CHEST_SLICE)
    bad = image.pixels.copy()
    bad[0, 0, 0] = 4096
    with pytest.raises(InvalidInputError, match="do not fit bits_stored=12"):
        derive_dataset(image.dataset, bad, image.spec, ratio=2, method="ISO_10918_1", description="x")
    with pytest.raises(InvalidInputError, match="dtype"):
        derive_dataset(image.dataset, image.pixels.astype(float), image.spec, ratio=2, method="ISO_10918_1", description="x")


def test_text_invalid_in_its_character_set_keeps_its_bytes_from_implicit_vr(shared_data: Path, tmp_path: Path) -> None:
    """Latin-1 bytes under ``ISO_IR 192`` in an implicit VR original: pydicom converts every element
    to write explicit VR and wrote U+FFFD (``write.keep_text_bytes`` keeps the bytes); valid UTF-8
    text next to it is written as before."""
    ds = pydicom.dcmread(shared_data / CHEST_SLICE)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.StudyDescription = "Müller^Jörg", "Schädel"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    source = tmp_path / "implicit.dcm"
    ds.save_as(source, enforce_file_format=True, implicit_vr=True)
    data = source.read_bytes().replace(b"ISO_IR 100", b"ISO_IR 192")  # the bytes stay Latin-1
    data = data.replace(b"Sch\xe4del", "Schäde".encode())  # valid UTF-8, same length
    source.write_bytes(data)
    image = read_image(source)
    out = write_derived(tmp_path / "derived.dcm", _derive(image))
    back = pydicom.dcmread(out)
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.get_item(0x00100010).value == b"M\xfcller^J\xf6rg "
    assert back.StudyDescription == "Schäde"
