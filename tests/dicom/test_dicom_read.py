"""Reading every file of the shared real-data set (../shared/data/README.md).

Expected shapes, dtypes and stored ranges come from the README inventory, which was made with
pydicom 3 + pylibjpeg independently of medcodec (so not circular for the reader, but the same
decoding libraries: the transfer-syntax test below is what cross-checks decoders).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medcodec.dicom import DicomImage, pixel_spec_from_dataset, read_image, read_series
from medcodec.dicom.io import _finish
from medcodec.errors import UnsupportedImageError
from medcodec.spec import PixelSpec

# file -> (frames, rows, cols, dtype, stored min, stored max), README "Inventory"
GRAYSCALE = {
    "singles/cr_RG2_2140x1760_10bit_jpeg_lossless.dcm": (1, 2140, 1760, "uint16", 0, 893),
    "singles/cr_RG2_2140x1760_10bit_jpegls_lossless.dcm": (1, 2140, 1760, "uint16", 0, 893),
    "singles/cr_RG3_1760x1760_10bit_j2k_lossless.dcm": (1, 1760, 1760, "uint16", 0, 1023),
    "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm": (1, 1760, 1760, "uint16", 0, 1023),
    "singles/ct_512x512_12bit_jpeg_lossless.dcm": (1, 512, 512, "uint16", 13, 2267),
    "singles/ct_512x512_signed16_j2k_lossless.dcm": (1, 512, 512, "int16", -1024, 1186),
    "singles/ct_CT1_512x512_signed16_jpegls_near_lossless.dcm": (1, 512, 512, "int16", -2004, 2278),
    "singles/ct_CT1_small_128x128_signed16.dcm": (1, 128, 128, "int16", 128, 2191),
    "singles/ct_enhanced_multiframe_2f_512x512.dcm": (2, 512, 512, "uint16", 0, 1196),
    "singles/dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm": (1, 2128, 2000, "uint16", 0, 4095),
    "singles/mr_384x384_12bit_signed_dirty_high_bits.dcm": (1, 384, 384, "int16", -2048, 2047),
    "singles/mr_384x384_12bit_unsigned.dcm": (1, 384, 384, "uint16", 0, 2908),
    "singles/mr_384x384_12bit_unsigned_dirty_high_bits.dcm": (1, 384, 384, "uint16", 0, 4095),
    "singles/mr_MR1_small_64x64_signed16.dcm": (1, 64, 64, "int16", 127, 2145),
    "singles/mr_MR1_small_64x64_signed16_big_endian.dcm": (1, 64, 64, "int16", 127, 2145),
    "singles/mr_MR2_1024x1024_12bit_j2k_lossless.dcm": (1, 1024, 1024, "uint16", 0, 595),
    "singles/mr_MR2_1024x1024_12bit_j2k_lossy.dcm": (1, 1024, 1024, "uint16", 0, 600),
    "singles/mr_MR2_1024x1024_12bit_jpeg_lossless_p14.dcm": (1, 1024, 1024, "uint16", 0, 595),
    "singles/mr_MR2_1024x1024_12bit_uncompressed.dcm": (1, 1024, 1024, "uint16", 0, 595),
    "singles/mr_enhanced_multiframe_10f_64x64_rle.dcm": (10, 64, 64, "uint16", 0, 467),
    "singles/nm_NM1_1024x256_12bit_jpeg_extended.dcm": (1, 1024, 256, "uint16", 0, 264),
    "singles/nm_NM1_1024x256_signed16_jpeg_lossless.dcm": (1, 1024, 256, "int16", 0, 278),
    "singles/us_768x1024_8bit_jpeg_lossless.dcm": (1, 768, 1024, "uint8", 0, 255),
}
TRANSFER_SYNTAXES = [
    "explicit_be", "explicit_le", "implicit_le", "j2k_lossless_gdcm", "jpeg_lossless_sv1_dcmtk",
    "jpeg_lossless_sv1_gdcm", "jpegls_lossless_dcmtk", "jpegls_lossless_gdcm", "rle",
]
for _name in TRANSFER_SYNTAXES:
    GRAYSCALE[f"transfer_syntaxes_mr/mr_384x384_{_name}.dcm"] = (1, 384, 384, "uint16", 0, 2362)

COLOUR = {
    "singles/us_US1_480x640_rgb_uncompressed.dcm": "RGB",
    "singles/us_US1_480x640_ybr_rct_j2k_lossless.dcm": "YBR_RCT",
    "singles/us_600x800_palette_rle.dcm": "PALETTE COLOR",
    "singles/us_576x768_ybr_jpeg_extended.dcm": "YBR_FULL",
}
SERIES = {
    "ct_head_phantom_philips_ingenuity": (140, 512, 512, "uint16"),
    "ct_chest_lungpetctdx_A0001_philips": (64, 512, 512, "uint16"),
    "mr_head_ge_signa_t1_ctk": (100, 256, 256, "int16"),
}

pytestmark = pytest.mark.realdata


def test_every_single_file_is_covered(shared_data: Path) -> None:
    on_disk = {p.relative_to(shared_data).as_posix() for p in shared_data.glob("*/*.dcm") if p.parent.name in ("singles", "transfer_syntaxes_mr")}
    assert on_disk == set(GRAYSCALE) | set(COLOUR)
    assert len(on_disk) + sum(v[0] for v in SERIES.values()) == 340  # README: 340 image files


@pytest.mark.parametrize("name", sorted(GRAYSCALE))
def test_grayscale_file_reads_with_shape_dtype_and_range(shared_data: Path, name: str) -> None:
    frames, rows, cols, dtype, lo, hi = GRAYSCALE[name]
    image = read_image(shared_data / name)
    assert image.path == str(shared_data / name)
    assert image.pixels.shape == (frames, rows, cols) == image.shape
    assert image.pixels.dtype == np.dtype(dtype) == image.dtype
    assert image.pixels.dtype.isnative
    assert image.spec.min_value <= image.pixels.min() and image.pixels.max() <= image.spec.max_value
    assert (int(image.pixels.min()), int(image.pixels.max())) == (lo, hi)
    assert "PixelData" not in image.dataset  # the header never holds pixel data twice
    assert image.spec == pixel_spec_from_dataset(pydicom.dcmread(shared_data / name))


def test_transfer_syntaxes_decode_to_identical_pixels(shared_data: Path) -> None:
    reference = read_image(shared_data / "transfer_syntaxes_mr/mr_384x384_explicit_le.dcm").pixels
    for name in TRANSFER_SYNTAXES:
        pixels = read_image(shared_data / f"transfer_syntaxes_mr/mr_384x384_{name}.dcm").pixels
        np.testing.assert_array_equal(pixels, reference, err_msg=name)


def test_big_endian_equals_little_endian(shared_data: Path) -> None:
    le = read_image(shared_data / "singles/mr_MR1_small_64x64_signed16.dcm").pixels
    be = read_image(shared_data / "singles/mr_MR1_small_64x64_signed16_big_endian.dcm").pixels
    np.testing.assert_array_equal(le, be)


@pytest.mark.parametrize("signed", [False, True])
def test_dirty_high_bits_are_masked_and_sign_extended(shared_data: Path, signed: bool) -> None:
    kind = "signed" if signed else "unsigned"
    path = shared_data / f"singles/mr_384x384_12bit_{kind}_dirty_high_bits.dcm"
    raw = np.frombuffer(pydicom.dcmread(path).PixelData, "<u2").reshape(384, 384).astype(np.int32)
    assert np.count_nonzero(raw >> 12) > 0  # the file really has garbage above bit 11
    expected = raw & 0x0FFF
    if signed:
        expected = np.where(expected >= 0x800, expected - 0x1000, expected)
    pixels = read_image(path).pixels[0]
    np.testing.assert_array_equal(pixels, expected)
    assert pixels.min() >= (-2048 if signed else 0) and pixels.max() <= (2047 if signed else 4095)


@pytest.mark.parametrize(
    ("values", "dtype", "bits", "signed", "expected"),
    [
        ([0xF123, 0x0FFF, 0x1000], "<u2", 12, False, [0x123, 0xFFF, 0]),
        ([0xF800, 0x07FF, 0xFFFF], "<u2", 12, True, [-2048, 2047, -1]),
        ([0x7FFF, -1], "<i2", 12, True, [-1, -1]),
        ([0x0FFF, 0xF000], ">u2", 12, False, [0xFFF, 0]),
        ([0x1FF, 0x0FF], "<u2", 8, False, [0xFF, 0xFF]),
    ],
)
def test_finish_masks_and_sign_extends_any_decoder_output(values, dtype, bits, signed, expected) -> None:
    spec = PixelSpec(bits_stored=bits, signed=signed)
    arr = np.array(values).astype(dtype).reshape(1, 1, -1)
    out = _finish(arr, spec, "synthetic", (1, 1, len(values)))
    assert out.dtype.isnative and out.dtype.kind == ("i" if signed else "u")
    assert out.tolist() == [[expected]]


@pytest.mark.parametrize("name", sorted(COLOUR))
def test_colour_and_palette_are_refused_with_path_and_tag(shared_data: Path, name: str) -> None:
    with pytest.raises(UnsupportedImageError) as info:
        read_image(shared_data / name)
    message = str(info.value)
    assert str(shared_data / name) in message and info.value.path == str(shared_data / name)
    assert "(0028,0004) Photometric Interpretation" in message and repr(COLOUR[name]) in message


def test_enhanced_multiframe_spec_comes_from_functional_groups(shared_data: Path) -> None:
    image = read_image(shared_data / "singles/ct_enhanced_multiframe_2f_512x512.dcm")
    assert image.pixels.shape == (2, 512, 512)
    assert (image.spec.rescale_slope, image.spec.rescale_intercept) == (1.0, -1024.0)
    assert (image.spec.window_center, image.spec.window_width) == (49.0, 102.0)
    assert image.position is not None and image.orientation is not None
    frames = list(read_image(shared_data / "singles/ct_enhanced_multiframe_2f_512x512.dcm", lazy=True).iter_frames())
    np.testing.assert_array_equal(np.stack(frames), image.pixels)


@pytest.mark.parametrize("folder", sorted(SERIES))
def test_series_folder_is_one_sorted_series(shared_data: Path, folder: str) -> None:
    count, rows, cols, dtype = SERIES[folder]
    found = read_series(shared_data / folder)
    assert found.failures == []
    assert len(found.series) == 1
    series = found.series[0]
    assert len(series) == count and series.shape == (count, rows, cols)
    assert not any(image.is_loaded for image in series.images)  # headers only until asked
    positions = np.array(series.positions, dtype=float)
    steps = np.diff(positions)
    assert np.all(steps > 0) or np.all(steps < 0)
    assert series.spec.bits_stored in (12, 16) and not series.rescale_varies
    stack = series.pixels()
    assert stack.shape == (count, rows, cols) and stack.dtype == np.dtype(dtype)
    assert series.spec.min_value <= stack.min() and stack.max() <= series.spec.max_value
    for index in (0, count // 2, count - 1):
        np.testing.assert_array_equal(stack[index], read_image(series.images[index].path).pixels[0])
    assert not any(image.is_loaded for image in series.images)  # pixels() does not cache per image


def test_series_iter_frames_streams_the_same_frames(shared_data: Path) -> None:
    series = read_series(shared_data / "mr_head_ge_signa_t1_ctk").series[0]
    stack = series.pixels()
    for index, frame in enumerate(series.iter_frames()):
        np.testing.assert_array_equal(frame, stack[index])
    assert index == len(series) - 1


#: Files that repeat another file's SOP Instance UID (the same instance in another form): reported
#: as duplicates, not merged into a series (issue 10 item 9); the first in input order is kept.
DUPLICATES = {
    "singles/mr_384x384_12bit_unsigned.dcm",  # = mr_384x384_12bit_signed_dirty_high_bits.dcm
    "singles/mr_384x384_12bit_unsigned_dirty_high_bits.dcm",
    "singles/mr_MR1_small_64x64_signed16_big_endian.dcm",  # = mr_MR1_small_64x64_signed16.dcm
}


def test_reading_the_whole_data_set_collects_only_colour_failures_and_duplicates(shared_data: Path) -> None:
    found = read_series(shared_data)
    failed = {Path(path).relative_to(shared_data).as_posix(): exc for path, exc in found.failures}
    assert set(failed) == set(COLOUR) | DUPLICATES
    assert all(isinstance(failed[name], UnsupportedImageError) for name in COLOUR)
    assert all("duplicate SOP Instance UID" in str(failed[name]) for name in DUPLICATES)
    sizes = sorted(len(s) for s in found.series)
    assert sizes[-3:] == [64, 100, 140]
    kept = sum(v[0] for name, v in GRAYSCALE.items() if name not in DUPLICATES)
    assert sum(s.n_frames for s in found.series) == 140 + 64 + 100 + kept


def test_bytes_and_file_like_sources(shared_data: Path) -> None:
    path = shared_data / "transfer_syntaxes_mr/mr_384x384_jpegls_lossless_dcmtk.dcm"
    expected = read_image(path).pixels
    from_bytes = read_image(path.read_bytes())
    assert from_bytes.path == "<bytes>"
    np.testing.assert_array_equal(from_bytes.pixels, expected)
    with open(path, "rb") as fh:
        from_file = read_image(fh)
    assert from_file.path == str(path)
    np.testing.assert_array_equal(from_file.pixels, expected)
    lazy = read_image(path, lazy=True)
    assert isinstance(lazy, DicomImage) and not lazy.is_loaded
    np.testing.assert_array_equal(lazy.pixels, expected)
    assert lazy.is_loaded
    lazy.release()
    assert not lazy.is_loaded


def test_pydicom_validation_warnings_on_identifiers_are_handled(shared_data: Path) -> None:
    """This file's SOP Instance UID is a 64-character hash: read it as it is, without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_image(shared_data / "singles/ct_512x512_12bit_jpeg_lossless.dcm")
    assert image.sop_instance_uid == "dccc9599087131742838cc1162a630fea87ba9bf61ac09bfda90d4adfa5ddaed"


def test_deflated_explicit_vr_le_image_is_read() -> None:
    """Deflated Explicit VR Little Endian (pydicom's ``image_dfl.dcm``): the header was read, the
    pixels were not (``pixel_array`` on the raw file finds no Pixel Data in the deflated stream),
    so ingest passed such images through uncoded until 2026-12-01."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("image_dfl.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pydicom.dcmread(path).pixel_array
        image = read_image(path)
        from_bytes = read_image(Path(path).read_bytes())
    assert image.spec.extra["transfer_syntax_uid"] == "1.2.840.10008.1.2.1.99"
    np.testing.assert_array_equal(image.pixels[0], expected)
    np.testing.assert_array_equal(from_bytes.pixels[0], expected)
