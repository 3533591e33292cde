"""codestream_is_lossy on real files: pydicom's test set and ../shared/data (JPEG 2000, JPEG-LS),
against what their makers wrote, and the presets' use of it for a file whose header omits the flag."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from medcodec.delivery.presets import PRESETS
from medcodec.dicom.codestream import codestream_is_lossy


def _first_frame(ds: pydicom.Dataset) -> bytes:
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


PYDICOM_FILES = {  # name -> what its headers say (None: the 5-3 wavelet, exact unless layers were dropped)
    "JPEG2000.dcm": True,  # 9-7, flagged 01
    "MR_small_jp2klossless.dcm": None,
    "JPEGLSNearLossless_08.dcm": True,  # NEAR > 0, no flag in its header
    "JPEGLSNearLossless_16.dcm": True,
    "MR_small_jpeg_ls_lossless.dcm": False,
    "693_J2KI.dcm": None,  # lossy by its rate, 5-3 wavelet: the headers cannot tell
}


@pytest.mark.parametrize(("name", "expected"), sorted(PYDICOM_FILES.items()))
def test_pydicom_files(name: str, expected: bool | None) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    assert codestream_is_lossy(str(ds.file_meta.TransferSyntaxUID), _first_frame(ds)) is expected


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ct_CT1_512x512_signed16_jpegls_near_lossless.dcm", True),
        ("cr_RG2_2140x1760_10bit_jpegls_lossless.dcm", False),
        ("mr_MR2_1024x1024_12bit_j2k_lossy.dcm", True),
        ("mr_MR2_1024x1024_12bit_j2k_lossless.dcm", None),
    ],
)
def test_shared_files(shared_data: Path, name: str, expected: bool | None) -> None:
    ds = pydicom.dcmread(shared_data / "singles" / name)
    assert codestream_is_lossy(str(ds.file_meta.TransferSyntaxUID), _first_frame(ds)) is expected


def test_other_syntaxes_and_damage_say_nothing() -> None:
    assert codestream_is_lossy("1.2.840.10008.1.2.4.50", b"\xff\xd8") is None
    for damaged in (b"", b"\xff\x4f\xff\x51\x00", b"\xff\x4f\xff\x51\x00\x29" + b"\x00" * 10):
        assert codestream_is_lossy("1.2.840.10008.1.2.4.91", damaged) is None
    for damaged in (b"", b"\xff\xd8\xff\xda", b"\xff\xd8\x00\x00"):
        assert codestream_is_lossy("1.2.840.10008.1.2.4.81", damaged) is None


def test_a_near_lossless_file_without_the_flag_is_treated_as_lossy() -> None:
    """pydicom's JPEG-LS near-lossless file has no (0028,2110): its NEAR says lossy, so the
    lossless preset passes it through labelled lossy instead of a 'lossless' copy of lossy pixels."""
    data = Path(get_testdata_file("JPEGLSNearLossless_16.dcm")).read_bytes()
    assert "LossyImageCompression" not in pydicom.dcmread(io.BytesIO(data))
    out = PRESETS["lossless"].encode_instance(data)
    assert out.entry.passthrough and out.entry.lossy and out.entry.reason.startswith("already lossy-compressed")
    assert out.data == data


# A lossy source whose header says nothing (pydicom's JPEG-LS NEAR=2 files, no (0028,2110)): every
# writer keeps its step on record (PS3.3 C.7.6.1.1.5, once lossy always). An outside audit
# (2026-12-05) found its lossless copies (CLI --to dicom-jpegls, compress() to .90 / .201 / .5, WADO-RS
# lossless answers) labelled lossless, and its lossy ones recording the new step only.

_FLAGLESS = ("JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm")


def _stored_ratio(ds: pydicom.Dataset) -> float:
    from pydicom.encaps import generate_fragments

    fragments = list(generate_fragments(ds.PixelData))[1:]
    raw = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames") or 1) * int(ds.BitsAllocated) // 8
    return raw / sum(len(f) for f in fragments)


@pytest.mark.parametrize("name", _FLAGLESS)
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5",
                                    "1.2.840.10008.1.2.1"])  # fmt: skip
def test_a_lossless_copy_of_a_flagless_lossy_source_says_lossy(name: str, syntax: str) -> None:
    import warnings

    from medcodec.dicom import compress

    ds = pydicom.dcmread(get_testdata_file(name))
    assert "LossyImageCompression" not in ds
    ratio = _stored_ratio(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = compress(ds, syntax)
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == "ISO_14495_1"
    assert float(out.LossyImageCompressionRatio) == pytest.approx(ratio, abs=0.01)


def _values(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, pydicom.multival.MultiValue) else [str(value)]


@pytest.mark.parametrize("name", _FLAGLESS)
def test_a_lossy_copy_of_a_flagless_lossy_source_records_both_steps(name: str) -> None:
    import warnings

    from medcodec.dicom import compress
    from medcodec.errors import LossySourceWarning

    ds = pydicom.dcmread(get_testdata_file(name))
    ratio = _stored_ratio(ds)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = compress(ds, "1.2.840.10008.1.2.4.51")
    assert any(issubclass(w.category, LossySourceWarning) for w in said)
    assert _values(out.LossyImageCompressionMethod) == ["ISO_14495_1", "ISO_10918_1"]
    assert float(_values(out.LossyImageCompressionRatio)[0]) == pytest.approx(ratio, abs=0.01)


@pytest.mark.parametrize("to", ["jpegls", "jpeg"])
def test_the_series_writer_keeps_a_flagless_source_s_step(tmp_path: Path, to: str) -> None:
    """The CLI's path: the series writer reads headers without their pixel data; the first fragment
    and the fragments' size are kept at read time for the test."""
    import warnings

    from medcodec.dicom import read_series
    from medcodec.dicom.lossy import encode_series_to_dicom

    src = get_testdata_file("JPEGLSNearLossless_16.dcm")
    ratio = _stored_ratio(pydicom.dcmread(src))
    (series,) = read_series([src])
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        results = encode_series_to_dicom(series, tmp_path / "out", syntax=to, quality=90)
    assert any("already lossy-compressed" in str(w.message) for w in said)
    out = pydicom.dcmread(results[0].path)
    assert out.LossyImageCompression == "01"
    methods, ratios = _values(out.LossyImageCompressionMethod), _values(out.LossyImageCompressionRatio)
    assert methods == ["ISO_14495_1", "ISO_14495_1" if to == "jpegls" else "ISO_10918_1"]
    assert len(ratios) == 2 and float(ratios[0]) == pytest.approx(ratio, abs=0.01)
