"""pixel_spec_from_dataset on synthetic headers: every rule in its module docstring."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medcodec.dicom import pixel_spec_from_dataset
from medcodec.errors import DicomError, NotAnImageError, UnsupportedImageError


def _image(**changes: object) -> Dataset:
    ds = Dataset()
    ds.Modality = "MR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 4, 6
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(4 * 6 * 2)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def test_defaults_identity_rescale_no_window() -> None:
    spec = pixel_spec_from_dataset(_image())
    assert (spec.bits_stored, spec.signed, spec.photometric_interpretation) == (12, False, "MONOCHROME2")
    assert (spec.rescale_slope, spec.rescale_intercept, spec.rescale_type) == (1.0, 0.0, "")
    assert spec.window_center is None and spec.window_width is None
    assert spec.extra["rows"] == 4 and spec.extra["columns"] == 6 and spec.extra["number_of_frames"] == 1


def test_multi_valued_window_takes_the_first_and_ct_means_hu() -> None:
    ds = _image(Modality="CT", PixelRepresentation=1, BitsStored=16, HighBit=15,
                RescaleSlope="1", RescaleIntercept="-1024", WindowCenter=["40", "300"], WindowWidth=["400", "1500"])
    spec = pixel_spec_from_dataset(ds)
    assert spec.signed and spec.bits_stored == 16
    assert (spec.rescale_intercept, spec.rescale_type) == (-1024.0, "HU")
    assert (spec.window_center, spec.window_width) == (40.0, 400.0)


def test_non_positive_window_width_is_dropped() -> None:
    spec = pixel_spec_from_dataset(_image(WindowCenter="10", WindowWidth="0"))
    assert spec.window_center is None and spec.window_width is None


def test_enhanced_functional_groups_give_rescale_and_window() -> None:
    shared = _item(
        PixelValueTransformationSequence=Sequence([_item(RescaleSlope="2", RescaleIntercept="-10", RescaleType="US")]),
        FrameVOILUTSequence=Sequence([_item(WindowCenter=["50", "60"], WindowWidth="100")]),
    )
    ds = _image(NumberOfFrames=3, SharedFunctionalGroupsSequence=Sequence([shared]))
    spec = pixel_spec_from_dataset(ds)
    assert (spec.rescale_slope, spec.rescale_intercept, spec.rescale_type) == (2.0, -10.0, "US")
    assert (spec.window_center, spec.window_width) == (50.0, 100.0)
    assert spec.extra["number_of_frames"] == 3 and "rescale_varies_per_frame" not in spec.extra


def test_per_frame_rescale_differences_are_flagged() -> None:
    frames = [
        _item(PixelValueTransformationSequence=Sequence([_item(RescaleSlope="1", RescaleIntercept=str(b))]))
        for b in (0, 5)
    ]
    spec = pixel_spec_from_dataset(_image(NumberOfFrames=2, PerFrameFunctionalGroupsSequence=Sequence(frames)))
    assert spec.rescale_intercept == 0.0 and spec.extra["rescale_varies_per_frame"] is True


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"PhotometricInterpretation": "RGB", "SamplesPerPixel": 3}, "(0028,0004) Photometric Interpretation 'RGB'"),
        ({"PhotometricInterpretation": "PALETTE COLOR"}, "'PALETTE COLOR' is not supported yet"),
        ({"PhotometricInterpretation": "YBR_FULL_422", "SamplesPerPixel": 3}, "'YBR_FULL_422'"),
        ({"SamplesPerPixel": 2}, "(0028,0002) Samples per Pixel 2"),
        ({"BitsAllocated": 32, "BitsStored": 32}, "(0028,0100) Bits Allocated 32"),
        ({"BitsAllocated": 1, "BitsStored": 1}, "(0028,0100) Bits Allocated 1"),
    ],
)
def test_unsupported_images_name_the_tag_and_the_path(changes: dict, fragment: str) -> None:
    with pytest.raises(UnsupportedImageError) as info:
        pixel_spec_from_dataset(_image(**changes), path="study/im1.dcm")
    assert fragment in str(info.value) and str(info.value).startswith("study/im1.dcm: ")
    assert info.value.path == "study/im1.dcm" and isinstance(info.value, NotImplementedError)


def test_float_pixel_data_is_unsupported() -> None:
    ds = _image(PixelData=None)
    ds.FloatPixelData = bytes(4 * 6 * 4)
    with pytest.raises(UnsupportedImageError, match=r"\(7FE0,0008\) Float Pixel Data"):
        pixel_spec_from_dataset(ds)


def test_bits_stored_above_16_is_unsupported_and_above_allocated_is_invalid() -> None:
    with pytest.raises(UnsupportedImageError, match=r"\(0028,0101\) Bits Stored 17"):
        pixel_spec_from_dataset(_image(BitsStored=17))
    with pytest.raises(DicomError, match=r"Bits Stored 12 is invalid with \(0028,0100\) Bits Allocated 8"):
        pixel_spec_from_dataset(_image(BitsAllocated=8))


def test_no_pixel_data_is_not_an_image() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    with pytest.raises(NotAnImageError, match=r"\(7FE0,0010\) Pixel Data: not an image \(Basic Text SR Storage\)"):
        pixel_spec_from_dataset(ds, path="sr.dcm")


def test_image_without_pixel_data_is_reported_as_damaged() -> None:
    with pytest.raises(DicomError, match="truncated") as info:
        pixel_spec_from_dataset(_image(PixelData=None))
    assert not isinstance(info.value, NotAnImageError)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"BitsStored": None}, "(0028,0101) Bits Stored is missing"),
        ({"PhotometricInterpretation": None}, "(0028,0004) Photometric Interpretation is missing"),
        ({"PixelRepresentation": 2}, "(0028,0103) Pixel Representation 2 is invalid"),
        ({"RescaleSlope": "0"}, "rescale is invalid"),
        ({"NumberOfFrames": 0}, "(0028,0008) Number of Frames 0 is invalid"),
    ],
)
def test_invalid_headers_raise_dicom_errors(changes: dict, fragment: str) -> None:
    with pytest.raises(DicomError) as info:
        pixel_spec_from_dataset(_image(**changes))
    assert fragment in str(info.value)
