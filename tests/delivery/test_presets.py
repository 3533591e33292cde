"""Presets on real images: real DICOM files any decoder opens, lossy attributes, bit-exact lossless."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import CHEST, HEAD, MR, US_PALETTE, US_RGB, US_YBR_JPEG, series_files, store  # noqa: F401 (fixture)

from medcodec import external
from medcodec.delivery import NotAcceptableError
from medcodec.delivery.presets import PRESETS, get_preset, image_class
from medcodec.dicom import read_series
from medcodec.errors import NotDicomError

JPEG12 = "1.2.840.10008.1.2.4.51"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


@pytest.mark.realdata
@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
def test_lossy_presets_write_standard_files_with_lossy_attributes(shared_data: Path, preset: str) -> None:
    path = series_files(shared_data, CHEST)[20]
    source = pydicom.dcmread(path)
    out = PRESETS[preset].encode_instance(path.read_bytes())
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.file_meta.TransferSyntaxUID == JPEG12 == out.entry.transfer_syntax_uid
    assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(ds.LossyImageCompressionRatio) == pytest.approx(out.entry.ratio, abs=0.01)
    assert ds.ImageType[0] == "DERIVED" and ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == out.entry.rendition_sop_instance_uid
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID and ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.PatientID == source.PatientID and ds.BitsStored == 12
    if preset == "preview":
        for text in (ds.DerivationDescription, ds.SeriesDescription, ds.ImageComments):
            assert "NOT FOR DIAGNOSIS" in text
        assert not PRESETS[preset].diagnostic
    else:
        assert "NOT FOR DIAGNOSIS" not in ds.DerivationDescription
    # pydicom (pylibjpeg-libjpeg) decodes it; HU error matches the entry
    err = np.abs(_hu(ds) - _hu(source))
    assert err.max() == pytest.approx(out.entry.max_error_hu, abs=1e-6) and out.entry.max_error_hu > 0
    # the same UIDs every time (live == pre-computed)
    again = PRESETS[preset].encode_instance(path.read_bytes(), measure=False)
    assert again.entry.rendition_sop_instance_uid == out.entry.rendition_sop_instance_uid
    assert again.data == out.data and not again.entry.measured and again.entry.psnr is None


def _dcmtk_decoded(data: bytes, tmp_path: Path, tool: str = "dcmdjpeg") -> pydicom.Dataset:
    """``data`` (a JPEG or, with ``tool="dcmdjpls"``, JPEG-LS DICOM file) decompressed by DCMTK, read back."""
    from delivery_data import require_tool

    src, dst = tmp_path / "coded.dcm", tmp_path / "raw.dcm"
    src.write_bytes(data)
    run = subprocess.run([require_tool(tool), str(src), str(dst)], capture_output=True, text=True, timeout=60,
                         check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    theirs = pydicom.dcmread(dst)
    assert not theirs.file_meta.TransferSyntaxUID.is_compressed
    return theirs


@pytest.mark.realdata
def test_diagnostic_decodes_with_dcmtk_too(shared_data: Path, tmp_path: Path) -> None:
    path = series_files(shared_data, HEAD)[70]
    out = PRESETS["diagnostic"].encode_instance(path.read_bytes())
    theirs = _dcmtk_decoded(out.data, tmp_path)
    err = np.abs(_hu(theirs) - _hu(pydicom.dcmread(path)))
    assert err.max() <= out.entry.max_error_hu + 2  # integer IDCTs differ by 1, rarely 2, at 12 bits


@pytest.mark.realdata
@pytest.mark.parametrize("folder", [CHEST, MR, "singles/ct_CT1_512x512_signed16_jpegls_near_lossless.dcm"])
def test_lossless_is_bit_exact(shared_data: Path, folder: str) -> None:
    target = shared_data / folder
    path = target if target.is_file() else series_files(shared_data, folder)[7]
    source = pydicom.dcmread(path)
    # an original stored lossy already (the near-lossless JPEG-LS) only when asked for (WADO-RS)
    out = PRESETS["lossless"].encode_instance(path.read_bytes(), recode=target.is_file())
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.file_meta.TransferSyntaxUID == HTJ2K_LOSSLESS
    # lossless adds no lossy flag (a source that was lossy already keeps its own)
    assert ds.get("LossyImageCompression") == source.get("LossyImageCompression")
    assert ds.SOPInstanceUID == source.SOPInstanceUID
    assert out.entry.lossy == (source.get("LossyImageCompression") == "01")  # what the file is
    assert np.array_equal(ds.pixel_array, source.pixel_array)  # pydicom + pylibjpeg-openjpeg
    # and with OpenJPH directly on the fragment (a second decoder)
    fragment = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    theirs = external.htj2k_decode(fragment).astype(np.int64)
    assert np.array_equal(theirs, source.pixel_array.astype(np.int64))
    assert out.entry.ratio > 1.5 and out.entry.max_error == 0


JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["head:50", "mr:5", "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm", "693_UNCR.dcm"])
def test_near_lossless_holds_its_bound_in_every_decoder(shared_data: Path, tmp_path: Path, name: str) -> None:
    """``near-lossless``: JPEG-LS .81 whose every value (padding included) is within the bound of the
    original's, as pydicom, CharLS on the bare fragment and DCMTK read it; labelled lossy; smaller
    than the lossless preset's file. Unsigned 12-bit CT, signed 16-bit MR, a 10-bit CR and an
    unseen signed CT with -2000 padding (pydicom-data)."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery.presets import NEAR_LOSSLESS_ERROR

    folder, _, index = name.partition(":")
    if index:
        path = series_files(shared_data, {"head": HEAD, "mr": MR}[folder])[int(index)]
    elif name.startswith("singles/"):
        path = shared_data / name
    else:
        path = Path(get_testdata_file(name))
    source = pydicom.dcmread(path)
    out = PRESETS["near-lossless"].encode_instance(path.read_bytes())
    entry = out.entry
    assert not entry.passthrough and entry.transfer_syntax_uid == JPEG_LS_NEAR, entry.reason
    assert entry.lossy and entry.max_error_bound == NEAR_LOSSLESS_ERROR and entry.quality is None
    assert 0 < entry.max_error <= NEAR_LOSSLESS_ERROR  # measured by decoding: a real bound, really used
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.file_meta.TransferSyntaxUID == JPEG_LS_NEAR and ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_14495_1" and ds.SOPInstanceUID != source.SOPInstanceUID
    assert f"NEAR={NEAR_LOSSLESS_ERROR}" in ds.DerivationDescription and ds.ImageType[0] == "DERIVED"
    slope = float(source.get("RescaleSlope", 1))
    bound = NEAR_LOSSLESS_ERROR * abs(slope) + 1e-6
    ours = _hu(ds)
    assert np.abs(ours - _hu(source)).max() <= bound
    fragment = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    charls = external.jpegls_decode(fragment).astype(np.int64)
    assert np.array_equal(charls, ds.pixel_array.astype(np.int64))
    theirs = _dcmtk_decoded(out.data, tmp_path, "dcmdjpls")
    assert np.abs(_hu(theirs) - _hu(source)).max() <= bound
    lossless = PRESETS["lossless"].encode_instance(path.read_bytes(), measure=False)
    assert len(out.data) < len(lossless.data)


@pytest.mark.realdata
def test_near_lossless_delivers_the_original_when_its_bound_does_not_hold(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound is checked by decoding, not assumed: a coder that breaks it (here: asked for a
    larger NEAR than the preset states) gets the original delivered as stored, and the reason."""
    import medcodec.delivery.presets as presets

    real = presets._compress

    def looser(*args, **kwargs):
        kwargs["max_error"] = kwargs["max_error"] + 6
        return real(*args, **kwargs)

    monkeypatch.setattr(presets, "_compress", looser)
    data = series_files(shared_data, CHEST)[10].read_bytes()
    out = PRESETS["near-lossless"].encode_instance(data)
    assert out.entry.passthrough and out.data == data and "the bound is 2" in out.entry.reason


def _ct_dataset(values: np.ndarray, *, bits: int, signed: bool) -> bytes:
    """A CT Image Storage file holding ``values`` as stored (for values no real image has)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "EDGE"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = values.astype(np.int16 if signed else np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(("bits", "signed"), [(16, True), (12, True), (16, False)])
def test_near_lossless_bound_holds_at_the_ends_of_the_range_and_across_the_sign(bits: int, signed: bool) -> None:
    """JPEG-LS knows no sign: a NEAR error at the top of a two's complement range would wrap to the
    bottom. The series mapping codes signed values as unsigned ones, so the bound holds everywhere,
    the extremes and the values around zero included."""
    from medcodec.delivery.presets import NEAR_LOSSLESS_ERROR

    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(bits + signed)
    values = rng.integers(lo, hi + 1, size=(64, 64))
    values[:8] = rng.integers(-6, 7, size=(8, 64)).clip(lo, hi)  # noise around zero (the sign boundary)
    values[8:16] = rng.choice([lo, lo + 1, hi - 1, hi], size=(8, 64))  # the extremes
    values[16:24] = np.linspace(lo, hi, 64 * 8).round().reshape(8, 64)  # a ramp over the whole range
    data = _ct_dataset(values, bits=bits, signed=signed)
    out = PRESETS["near-lossless"].encode_instance(data)
    assert out.entry.transfer_syntax_uid == JPEG_LS_NEAR and not out.entry.passthrough, out.entry.reason
    ds = pydicom.dcmread(io.BytesIO(out.data))
    decoded = _hu(ds)
    assert np.abs(decoded - values).max() <= NEAR_LOSSLESS_ERROR
    assert out.entry.max_error <= NEAR_LOSSLESS_ERROR


@pytest.mark.realdata
def test_what_a_preset_cannot_code_passes_through_unchanged(shared_data: Path) -> None:
    """An SR and a palette-colour US under every preset; colour under original and near-lossless
    (``lossless`` codes it since 2026-12-02: ``test_colour_is_coded_losslessly``)."""
    from pydicom.data import get_testdata_file

    cases = [(p, list(PRESETS)) for p in (shared_data / US_PALETTE, Path(get_testdata_file("test-SR.dcm")))]
    for path, names in [*cases, (shared_data / US_RGB, ["original", "near-lossless"])]:
        data = path.read_bytes()
        for name in names:
            out = PRESETS[name].encode_instance(data)
            assert out.data == data and out.entry.passthrough and out.entry.reason
            assert out.entry.bytes == len(data) and out.entry.ratio is None
    out = PRESETS["original"].encode_instance((shared_data / US_RGB).read_bytes())
    assert out.entry.rendition_sop_instance_uid == out.entry.sop_instance_uid


@pytest.mark.realdata
@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"])
def test_colour_is_coded_losslessly(shared_data: Path, ts: str) -> None:
    """``lossless`` codes 8-bit colour (until 2026-12-02 it kept it as stored): the shared RGB
    ultrasound in HTJ2K (its default), JPEG 2000 and JPEG-LS, bit-exact RGB as pydicom reads it,
    the Photometric Interpretation the codestream holds (the reversible colour transform: YBR_RCT),
    Planar Configuration 0, the same SOP Instance UID, not labelled lossy, at least 2:1."""
    data = (shared_data / US_RGB).read_bytes()
    src = pydicom.dcmread(io.BytesIO(data))
    out = PRESETS["lossless"].encode_instance(data, syntax=None if ts.endswith(".201") else ts)
    assert not out.entry.passthrough and not out.entry.lossy and out.entry.measured and out.entry.max_error == 0
    assert out.entry.transfer_syntax_uid == ts and out.entry.ratio > 2 and len(out.data) < len(data) / 2
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.file_meta.TransferSyntaxUID == ts and ds.SOPInstanceUID == src.SOPInstanceUID
    assert ds.PhotometricInterpretation == ("RGB" if ts.endswith(".80") else "YBR_RCT") and ds.PlanarConfiguration == 0
    assert ds.get("LossyImageCompression", "00") == "00"
    assert np.array_equal(_rgb(ds), _rgb(src))


@pytest.mark.realdata
def test_stored_ycbcr_colour_is_kept_by_lossless(shared_data: Path) -> None:
    """An uncompressed YBR_FULL image: its lossless copy would hold pydicom's RGB conversion, which
    rounds the stored samples (an outside audit: 9.7 % changed, by up to 3, under a lossless label):
    passed through with the reason, which the staleness rule takes as final; the diagnostic preset
    still codes it (lossy, labelled so)."""
    from pydicom.pixels import convert_color_space

    from medcodec.delivery.precompute import rendition_fresh

    ds = pydicom.dcmread(shared_data / US_RGB)
    ds.PixelData = convert_color_space(ds.pixel_array, "RGB", "YBR_FULL").tobytes()
    ds.PhotometricInterpretation = "YBR_FULL"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    for syntax in (None, "1.2.840.10008.1.2.4.90"):
        out = PRESETS["lossless"].encode_instance(data, syntax=syntax)
        assert out.entry.passthrough and out.data == data and "YCbCr samples would round" in out.entry.reason
    record = type("Record", (), {"samples_per_pixel": 3, "bits_allocated": 8, "bits_stored": 8,
                                 "photometric": "YBR_FULL"})()  # fmt: skip
    assert rendition_fresh(out.entry.to_json(), None, record, "lossless")
    assert not PRESETS["diagnostic"].encode_instance(data).entry.passthrough


@pytest.mark.realdata
def test_a_coded_file_names_medcodec_as_its_writer(shared_data: Path) -> None:
    """PS3.10 §7.1: the Implementation Class UID and Version Name name the implementation that wrote
    the file; a transcoded file kept its source's ("GDCM 2.8.4") until 2026-12-02."""
    from medcodec.dicom.write import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    for path in (shared_data / US_RGB, series_files(shared_data, CHEST, 1)[0]):
        ds = pydicom.dcmread(path)
        ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.2.1143.107.104.103.115.2.8.4"
        ds.file_meta.ImplementationVersionName = "GDCM 2.8.4"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        for name in ("lossless", "diagnostic"):
            out = pydicom.dcmread(io.BytesIO(PRESETS[name].encode_instance(buffer.getvalue()).data))
            assert out.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID, (path.name, name)
            assert out.file_meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
        original = PRESETS["original"].encode_instance(buffer.getvalue()).data
        assert pydicom.dcmread(io.BytesIO(original)).file_meta.ImplementationVersionName == "GDCM 2.8.4"


def test_colour_of_more_than_8_bits_says_why_it_goes_as_stored() -> None:
    """A 16-bit RGB image passes through every preset with its own reason (it said "medcodec
    compresses grayscale only" until 2026-12-02, untrue once lossless codes 8-bit colour)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "OT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(8 * 8 * 3, dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    for name in ("lossless", "near-lossless", "diagnostic", "preview"):
        out = PRESETS[name].encode_instance(buffer.getvalue())
        assert out.entry.passthrough and out.data == buffer.getvalue()
        assert out.entry.reason == "colour (RGB, 16 bits per sample): only 8-bit colour is coded; delivered as stored"


def _rgb(ds: pydicom.Dataset) -> np.ndarray:
    from pydicom.pixels import pixel_array

    return np.asarray(pixel_array(ds)).astype(np.int64)  # RGB whatever the photometric (pydicom's as_rgb)


@pytest.mark.realdata
@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
@pytest.mark.parametrize("name", [US_RGB, US_YBR_JPEG])
def test_colour_images_are_coded_as_baseline_jpeg(shared_data: Path, tmp_path: Path, preset: str, name: str) -> None:
    """8-bit colour (RGB, or YBR_FULL from a lossy JPEG) under the lossy presets: baseline JPEG
    (.50) as PS3.5 §8.2.1 describes it, the lossy attributes (appended to the source's), new UIDs,
    a PSNR and max error libjpeg-turbo's decode of the fragments reproduces and pydicom's and
    DCMTK's decodes of the file come within 0.5 dB of."""
    path = shared_data / name
    source = pydicom.dcmread(path)
    # the YBR one is a lossy JPEG already, which the presets deliver as stored unless asked (WADO-RS)
    out = PRESETS[preset].encode_instance(path.read_bytes(), recode=True)
    e = out.entry
    assert not e.passthrough and e.lossy and e.measured and e.transfer_syntax_uid == "1.2.840.10008.1.2.4.50"
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.file_meta.TransferSyntaxUID == e.transfer_syntax_uid
    assert (ds.SamplesPerPixel, ds.PlanarConfiguration, ds.BitsAllocated, ds.BitsStored) == (3, 0, 8, 8)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"  # the US Image IOD's JPEG colour (dciodvfy)

    def values(d: pydicom.Dataset) -> list[float]:
        v = d.get("LossyImageCompressionRatio")
        return [] if v is None else [float(x) for x in (v if isinstance(v, pydicom.multival.MultiValue) else [v])]

    earlier, ratios = values(source), values(ds)
    assert ds.LossyImageCompression == "01" and ratios[:-1] == pytest.approx(earlier)
    assert ratios[-1] == pytest.approx(e.ratio, abs=0.01) and e.ratio > (4 if preset == "diagnostic" else 20)
    assert ds.ImageType[0] == "DERIVED" and ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == e.rendition_sop_instance_uid
    assert "JPEG baseline" in ds.DerivationDescription and ds.StudyInstanceUID == source.StudyInstanceUID
    assert ("NOT FOR DIAGNOSIS" in str(ds.get("ImageComments", ""))) == (preset == "preview")
    # the error the entry states is libjpeg-turbo's decode of the fragments; pydicom's own decode
    # (another upsampling of the chroma) gives the same PSNR within a few tenths of a dB
    from pydicom.encaps import generate_frames

    frames = int(ds.get("NumberOfFrames", 1) or 1)
    ours = np.stack([external.jpeg8_decode(f) for f in generate_frames(ds.PixelData, number_of_frames=frames)])
    original = _rgb(source).reshape(ours.shape)
    diff = ours.astype(np.int64) - original
    assert np.abs(diff).max() == e.max_error > 0
    assert 10 * math.log10(255**2 / np.mean(diff.astype(float) ** 2)) == pytest.approx(e.psnr, abs=1e-6)
    assert e.psnr > (34 if preset == "diagnostic" else 28)

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * math.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))

    assert ds.pixel_array.shape == source.pixel_array.shape
    assert psnr(_rgb(ds).reshape(ours.shape), original) == pytest.approx(e.psnr, abs=0.5)
    # DCMTK decodes it (to RGB or YBR_FULL: pydicom reads either as RGB)
    theirs = _dcmtk_decoded(out.data, tmp_path)
    assert psnr(_rgb(theirs).reshape(ours.shape), original) == pytest.approx(e.psnr, abs=0.5)
    # the same file every time (live == pre-computed)
    again = PRESETS[preset].encode_instance(path.read_bytes(), measure=False, recode=True)
    assert again.data == out.data and not again.entry.measured


@pytest.mark.realdata
def test_image_class_reads_the_header(shared_data: Path) -> None:
    assert image_class(pydicom.dcmread(series_files(shared_data, CHEST)[0], stop_before_pixels=True)) == "CT"
    assert image_class(pydicom.dcmread(series_files(shared_data, HEAD)[0], stop_before_pixels=True)) == "CT-neuro"
    assert image_class(pydicom.dcmread(series_files(shared_data, MR)[0], stop_before_pixels=True)) == "MR"


def test_a_head_ct_whose_header_names_no_head_is_neuro_by_its_field(shared_data: Path) -> None:
    """pydicom's 693_UNCR is a head CT ("5/5mm Plain", a 245 mm field): the neuro point, not the
    body one (which gave it 26.5:1 and a 77 HU maximum error). A 431 mm chest stays body; the same
    chest header with a 250 mm field, or no diameter and 512 x 0.45 mm, is neuro (the safe side)."""
    from pydicom.data import get_testdata_file

    head = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))
    assert "HEAD" not in str(head.get("SeriesDescription", "")).upper() and image_class(head) == "CT-neuro"
    entry = PRESETS["diagnostic"].encode_instance(Path(get_testdata_file("693_UNCR.dcm")).read_bytes()).entry
    assert entry.quality == 92 and entry.max_error_hu is not None and entry.max_error_hu <= 20
    chest = pydicom.dcmread(series_files(shared_data, CHEST)[0], stop_before_pixels=True)
    assert float(chest.ReconstructionDiameter) > 400 and image_class(chest) == "CT"
    chest.ReconstructionDiameter = "250"
    assert image_class(chest) == "CT-neuro"
    del chest.ReconstructionDiameter
    assert image_class(chest) == "CT"  # 512 x 0.84 mm
    chest.PixelSpacing = [0.45, 0.45]
    assert image_class(chest) == "CT-neuro"
    del chest.PixelSpacing
    assert image_class(chest) == "CT"  # no field to read: the header text decides, as before
    with pytest.raises(NotAcceptableError):
        get_preset("ultra")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "preset", "documented"),
    [(CHEST, "diagnostic", 8.1), (HEAD, "diagnostic", 12.7), (MR, "diagnostic", 13.3),
     (CHEST, "preview", 39.2), (HEAD, "preview", 42.1), (MR, "preview", 37.9)],
)  # fmt: skip
def test_operating_points_land_near_their_targets(shared_data: Path, folder: str, preset: str,
                                                  documented: float) -> None:  # fmt: skip
    """The figures in docs/delivery.md, re-measured: whole series, every 2nd slice, series mapping."""
    from medcodec.dicom import plan_series_mapping
    from medcodec.dicom.lossy import get_syntax

    series = read_series(shared_data / folder).series[0]
    mapping = plan_series_mapping(series, bits_stored=12, signed=False)
    from medcodec.registry import SeriesHints

    point = PRESETS[preset].operating_point(series.images[0].dataset)
    syntax = get_syntax(point.syntax)
    # what the preset's writer passes: the series' modality and its one content range
    hints = SeriesHints(modality=series.spec.extra.get("modality"), range_bits=mapping.content_range_bits())
    raw = coded = 0
    for frame in list(series.iter_frames())[::2]:
        mapped, _ = mapping.map(frame)
        coded += len(syntax.encode(mapped, 12, False, point.quality, hints))
        raw += frame.size * 2
    assert raw / coded == pytest.approx(documented, rel=0.05)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "documented"),
    [("cr_RG3_1760x1760_10bit_uncompressed.dcm", (14.9, 109.0)), ("cr_RG2_2140x1760_10bit_jpeg_lossless.dcm", (7.07, 36.6)),
     ("dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm", (4.32, 17.5))],
)  # fmt: skip
def test_radiography_operating_points(shared_data: Path, name: str, documented: tuple[float, float]) -> None:
    """docs/delivery.md's CR/DX figures: ratio of the JPEG codestream to 16-bit raw pixels."""
    data = (shared_data / "singles" / name).read_bytes()
    for preset, expected in zip(("diagnostic", "preview"), documented):
        entry = PRESETS[preset].encode_instance(data, measure=False).entry
        assert entry.quality == {"diagnostic": 74, "preview": 41}[preset]
        assert entry.ratio == pytest.approx(expected, rel=0.05)


@pytest.mark.realdata
def test_series_mapping_comes_from_the_catalog_and_is_shared(shared_data: Path, store) -> None:
    files = series_files(shared_data, MR)[::10]
    report = store.ingest(files, precompress=False)
    series_uid = report.outcomes[0].series_uid
    mapping = store.series_mapping(series_uid, "diagnostic")
    whole = read_series(files).series[0]
    from medcodec.dicom import plan_series_mapping

    assert mapping == plan_series_mapping(whole, bits_stored=12, signed=False)
    assert store.series_mapping(series_uid, "lossless") is None and store.series_mapping(series_uid, "original") is None
    descriptions = set()
    for path in files[:3]:
        out = PRESETS["diagnostic"].encode_instance(path.read_bytes(), mapping=mapping)
        ds = pydicom.dcmread(io.BytesIO(out.data), stop_before_pixels=True)
        descriptions.add((float(ds.RescaleSlope), float(ds.RescaleIntercept), out.entry.mapping))
        assert math.isfinite(out.entry.psnr)
    assert len(descriptions) == 1  # one rescale for the whole series


@pytest.mark.realdata
@pytest.mark.parametrize("preset", ["diagnostic", "preview", "near-lossless"])
def test_dciodvfy_finds_no_new_error(shared_data: Path, tmp_path: Path, preset: str) -> None:
    """dicom3tools checks the IOD of our files: no error the original did not already have."""
    from delivery_data import require_tool

    tool = require_tool("dciodvfy")

    def errors(path: Path) -> set[str]:
        run = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True, timeout=60)
        return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}

    for source in (series_files(shared_data, HEAD)[50], series_files(shared_data, MR)[3], series_files(shared_data, CHEST)[5],
                   shared_data / "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm", shared_data / US_RGB):  # fmt: skip
        out = tmp_path / f"{preset}_{source.parent.name}_{source.name}"
        out.write_bytes(PRESETS[preset].encode_instance(source.read_bytes(), measure=False).data)
        assert errors(out) <= errors(source), source


@pytest.mark.realdata
def test_a_damaged_image_is_delivered_as_stored_not_an_error(shared_data: Path, store) -> None:
    """A preset given a file whose pixel data is cut short passes it through with the reason. Ingest
    refuses such a file (since 2026-12-04: stored, it made the complete file a conflict)."""
    data = series_files(shared_data, CHEST)[3].read_bytes()
    cut = data[: len(data) - 5000]  # pixel data cut short (a broken transfer)
    with pytest.raises(NotDicomError, match="incomplete DICOM file"):
        store.ingest_bytes(cut, source="truncated")
    for name in ("diagnostic", "lossless", "preview"):
        out = PRESETS[name].encode_instance(cut)
        assert out.data == cut and out.entry.passthrough and out.entry.reason


@pytest.mark.realdata
def test_padding_stays_padding_through_the_store(shared_data: Path, store) -> None:
    """CT1 declares Pixel Padding Value -2000: the store's series mapping (from catalog statistics and
    the first header) keeps every padding voxel inside the declared padding, and no tissue voxel in it."""
    source = shared_data / "singles" / "ct_CT1_512x512_signed16_jpegls_near_lossless.dcm"
    report = store.ingest([source], precompress=False)
    series_uid = report.outcomes[0].series_uid
    mapping = store.series_mapping(series_uid, "diagnostic")
    assert mapping is not None and mapping.padding == (-2000, -2000)
    original = pydicom.dcmread(source)
    before = original.pixel_array.astype(np.int32)
    out = PRESETS["diagnostic"].encode_instance(source.read_bytes(), mapping=mapping)
    ds = pydicom.dcmread(io.BytesIO(out.data))
    after = ds.pixel_array.astype(np.int32)
    low = int(ds.PixelPaddingValue)
    high = int(ds.get("PixelPaddingRangeLimit", low))
    low, high = min(low, high), max(low, high)
    is_padding = before == -2000
    assert is_padding.any()
    inside = (after >= low) & (after <= high)
    assert inside[is_padding].all()
    assert not inside[~is_padding].any()


@pytest.mark.parametrize("preset", ["diagnostic", "lossless"])
def test_multiframe_instance_codes_its_frames_on_threads(monkeypatch: pytest.MonkeyPatch, preset: str) -> None:
    """``jobs`` (the live encoder processes pass their cores) shares a multi-frame instance's frames
    among threads, with the same bytes as one thread; a single-frame file starts no thread pool."""
    import importlib

    from pydicom.data import get_testdata_file

    compress_module = importlib.import_module("medcodec.dicom.compress")
    seen: list[int] = []
    real = compress_module.map_ordered
    monkeypatch.setattr(compress_module, "map_ordered", lambda fn, items, jobs: seen.append(jobs) or real(fn, items, jobs))
    data = Path(get_testdata_file("emri_small.dcm")).read_bytes()  # 10 frames of a real MR
    one = PRESETS[preset].encode_instance(data, measure=False, jobs=1)
    assert seen and max(seen) == 1
    seen.clear()
    two = PRESETS[preset].encode_instance(data, measure=False, jobs=2)
    assert max(seen) == 2 and one.data == two.data and not one.entry.passthrough
    seen.clear()
    PRESETS[preset].encode_instance(Path(get_testdata_file("CT_small.dcm")).read_bytes(), measure=False, jobs=2)
    assert seen and max(seen) == 1


def test_colour_multiframe_and_tiny_images() -> None:
    """A two-frame RGB secondary capture is coded frame by frame (one fragment each); a 3x3 colour
    image, whose JPEG would outweigh its 27 bytes of pixels, stays as stored and says why."""
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("SC_rgb_2frame.dcm")).read_bytes()
    out = PRESETS["diagnostic"].encode_instance(data)
    ds = pydicom.dcmread(io.BytesIO(out.data))
    source = pydicom.dcmread(io.BytesIO(data))
    assert not out.entry.passthrough and int(ds.NumberOfFrames) == 2 and ds.pixel_array.shape == (2, 100, 100, 3)
    assert np.abs(ds.pixel_array.astype(int) - source.pixel_array.astype(int)).max() <= out.entry.max_error + 16
    tiny = Path(get_testdata_file("SC_rgb_small_odd.dcm")).read_bytes()
    out = PRESETS["diagnostic"].encode_instance(tiny)
    assert out.entry.passthrough and out.data == tiny and "would not be smaller" in out.entry.reason


def test_colour_jpeg_options_and_a_file_pydicom_reads_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full-resolution chroma round-trips closer than 4:2:2; an unknown subsampling is refused; a
    measured file whose pydicom reading disagrees with libjpeg-turbo's is a CodecError, not a row."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery import presets
    from medcodec.errors import CodecError, InvalidInputError

    rgb = pydicom.dcmread(get_testdata_file("color-pl.dcm")).pixel_array  # sharp colour edges
    err = {c: np.abs(external.jpeg8_decode(external.jpeg8_encode_colour(rgb, quality=95, subsampling=c)).astype(int)
                     - rgb.astype(int)).mean() for c in ("444", "422")}  # fmt: skip
    assert err["444"] < err["422"]
    with pytest.raises(InvalidInputError, match="subsampling"):
        external.jpeg8_encode_colour(rgb, quality=95, subsampling="420")
    data = Path(get_testdata_file("SC_rgb.dcm")).read_bytes()
    rgb = pydicom.dcmread(io.BytesIO(data)).pixel_array
    monkeypatch.setattr(presets, "jpeg8_decode", lambda s: np.zeros(rgb.shape, np.uint8))
    with pytest.raises(CodecError, match="pydicom reads another image"):
        PRESETS["diagnostic"].encode_instance(data)
    assert not PRESETS["diagnostic"].encode_instance(data, measure=False).entry.passthrough


@pytest.mark.realdata
def test_mammography_is_lossless_under_diagnostic(shared_data: Path, store, tmp_path: Path) -> None:
    """A mammogram (a real radiograph relabelled MG, Digital Mammography For Presentation) is coded
    bit-exact (HTJ2K lossless) by ``diagnostic``, pre-computed as such in a store, and refused as
    12-bit JPEG by WADO-RS's strict path; ``preview`` still codes it lossy, labelled."""
    from pydicom.uid import generate_uid

    from medcodec.delivery.live import instance_bytes

    ds = pydicom.dcmread(shared_data / "singles" / "cr_RG3_1760x1760_10bit_uncompressed.dcm")
    ds.Modality = "MG"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = tmp_path / "mg.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert image_class(ds) == "MG"
    diagnostic = PRESETS["diagnostic"].encode_instance(path.read_bytes())
    assert diagnostic.entry.transfer_syntax_uid == HTJ2K_LOSSLESS and not diagnostic.entry.lossy
    assert diagnostic.entry.max_error == 0 and not diagnostic.entry.passthrough
    back = pydicom.dcmread(io.BytesIO(diagnostic.data))
    assert np.array_equal(back.pixel_array, ds.pixel_array) and back.get("LossyImageCompression", "00") != "01"
    preview = PRESETS["preview"].encode_instance(path.read_bytes())
    assert preview.entry.lossy and preview.entry.transfer_syntax_uid == JPEG12
    assert "NOT FOR DIAGNOSIS" in str(pydicom.dcmread(io.BytesIO(preview.data)).DerivationDescription)
    report = store.ingest([path], precompress=True)
    assert report.ok
    record = store.instances(str(ds.StudyInstanceUID))[0]
    assert store.rendition(record, "diagnostic").transfer_syntax_uid == HTJ2K_LOSSLESS
    with pytest.raises(NotAcceptableError):
        instance_bytes(store, record, JPEG12, None, True)


ALREADY_LOSSY = [  # (file of ../shared/data/singles, what its header's Lossy Image Compression Ratio says)
    ("ct_CT1_512x512_signed16_jpegls_near_lossless.dcm", "6"),
    ("mr_MR2_1024x1024_12bit_j2k_lossy.dcm", "18"),
    ("nm_NM1_1024x256_12bit_jpeg_extended.dcm", "76"),
    ("us_576x768_ybr_jpeg_extended.dcm", "16.6"),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "ratio"), ALREADY_LOSSY)
def test_an_original_stored_lossy_is_not_coded_a_second_time(shared_data: Path, name: str, ratio: str) -> None:
    """lossless and diagnostic deliver it as stored (a second generation adds error, a lossless copy
    of lossy pixels only bytes), said so and labelled lossy; preview codes it only when smaller;
    recode (a WADO-RS client asking for the syntax) codes it all the same."""
    data = (shared_data / "singles" / name).read_bytes()
    source = pydicom.dcmread(io.BytesIO(data))
    for preset in ("lossless", "diagnostic"):
        out = PRESETS[preset].encode_instance(data)
        assert out.data == data, preset
        entry = out.entry
        assert entry.passthrough and entry.lossy and entry.psnr is None and entry.max_error is None
        assert entry.transfer_syntax_uid == source.file_meta.TransferSyntaxUID
        assert entry.reason.startswith("already lossy-compressed (") and f"{ratio}:1" in entry.reason, entry.reason
    out = PRESETS["preview"].encode_instance(data)
    if out.entry.passthrough:
        assert out.data == data and out.entry.lossy and "would not be smaller" in out.entry.reason
    else:
        assert len(out.data) < len(data) and out.entry.lossy
        ds = pydicom.dcmread(io.BytesIO(out.data))
        assert ds.LossyImageCompression == "01" and len(ds.LossyImageCompressionRatio) == 2  # both generations
    coded = PRESETS["diagnostic"].encode_instance(data, recode=True)
    assert not coded.entry.passthrough and coded.entry.lossy
    assert coded.entry.transfer_syntax_uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
    assert pydicom.dcmread(io.BytesIO(coded.data)).pixel_array.shape == source.pixel_array.shape


@pytest.mark.realdata
def test_a_decompressed_lossy_original_is_coded_and_says_both_generations(shared_data: Path) -> None:
    """Stored uncompressed, a once-lossy image is what coding makes small: coded, both ratios kept."""
    source = pydicom.dcmread(shared_data / "singles" / "mr_MR2_1024x1024_12bit_j2k_lossy.dcm")
    source.decompress()
    buffer = io.BytesIO()
    source.save_as(buffer, enforce_file_format=True)
    out = PRESETS["diagnostic"].encode_instance(buffer.getvalue())
    assert not out.entry.passthrough and out.entry.lossy
    ds = pydicom.dcmread(io.BytesIO(out.data))
    assert ds.LossyImageCompression == "01"
    assert [float(r) for r in ds.LossyImageCompressionRatio][0] == 18.0 and len(ds.LossyImageCompressionRatio) == 2



def test_a_compressed_original_smaller_than_the_lossy_file_is_delivered_as_stored() -> None:
    """pydicom's Deflated secondary capture (a flat synthetic image, 4.6 kB): the diagnostic JPEG
    would be ~10x larger, so the lossy presets deliver the exact, smaller original, said so;
    ``recode`` (a WADO-RS client asking for the syntax) still gets the JPEG."""
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("image_dfl.dcm")).read_bytes()
    for preset in ("diagnostic", "preview", "lossless"):
        out = PRESETS[preset].encode_instance(data)
        assert out.data == data and out.entry.passthrough and not out.entry.lossy
        assert out.entry.reason.startswith("the stored file is smaller (4637 bytes, Deflated"), out.entry.reason
        coded = PRESETS[preset].encode_instance(data, recode=True)
        assert not coded.entry.passthrough and coded.entry.lossy == (preset != "lossless")
        assert len(coded.data) > len(data)
        assert f"({len(coded.data)} bytes)" in out.entry.reason


def test_the_reason_gives_the_header_ratios_readably() -> None:
    """pydicom's JPEG 2000 files say 2097:1 and 338.687...:1: written as such, not 2.1e+03."""
    from pydicom.data import get_testdata_file

    for name, ratio in (("JPEG2000.dcm", "2097:1"), ("693_J2KI.dcm", "339:1")):
        entry = PRESETS["diagnostic"].encode_instance(Path(get_testdata_file(name)).read_bytes()).entry
        assert entry.passthrough and entry.lossy and f"Compression, {ratio})" in entry.reason, entry.reason


def test_no_preset_delivers_a_file_larger_than_the_stored_one() -> None:
    """A 16x16 uncompressed CT (pydicom's DICOMDIR test images, 3.9 kB): its JPEG and lossy
    attributes outweighed its pixels (4.2 kB "diagnostic"); JPEG 2000 lossless originals that
    HTJ2K codes a few per cent larger. The stored file goes instead, exact and said so."""
    from pydicom.data import get_testdata_file

    tiny = (Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT2N/6293").read_bytes()
    for preset in ("diagnostic", "preview"):
        out = PRESETS[preset].encode_instance(tiny)
        assert out.data == tiny and out.entry.passthrough and not out.entry.lossy
        assert out.entry.reason.startswith("the stored file is smaller (3920 bytes, Explicit VR Little Endian)")
        assert len(PRESETS[preset].encode_instance(tiny, recode=True).data) > len(tiny)
    for name in ("MR_small_jp2klossless.dcm", "MR2_J2KR.dcm"):
        data = Path(get_testdata_file(name)).read_bytes()
        out = PRESETS["lossless"].encode_instance(data)
        assert out.data == data and out.entry.passthrough and not out.entry.lossy, out.entry.reason
        forced = PRESETS["lossless"].encode_instance(data, syntax="1.2.840.10008.1.2.4.201")  # a client asked
        assert forced.entry.transfer_syntax_uid == "1.2.840.10008.1.2.4.201" and len(forced.data) >= len(data)


@pytest.mark.parametrize(
    "name, ratios, methods",
    [
        ("RG1_J2KI.dcm", 10.0, "ISO_15444_1"),  # a ratio, no method: the method is the stored syntax's
        ("SC_rgb_jpeg_app14_dcmd.dcm", None, "ISO_10918_1"),  # a method, no ratio: measured from the file
        ("examples_ybr_color.dcm", 19.0, "ISO_10918_1"),
    ],
)
def test_every_lossy_ratio_has_its_method_in_order(name: str, ratios: float | None, methods: str) -> None:
    """PS3.3 C.7.6.1.1.5: (0028,2112) and (0028,2114) pair up, step by step. Sources that give one
    without the other had ours appended to lists of different lengths (RG1_J2KI: [10, 51] / [ISO_10918_1])."""
    from pydicom.data import get_testdata_file

    from medcodec.dicom.codestream import stored_lossy_step

    data = Path(get_testdata_file(name)).read_bytes()
    source = pydicom.dcmread(io.BytesIO(data))
    for preset in ("preview", "diagnostic"):
        out = PRESETS[preset].encode_instance(data, recode=True)
        ds = pydicom.dcmread(io.BytesIO(out.data), stop_before_pixels=True)
        got_ratios = [float(r) for r in ds.LossyImageCompressionRatio]
        got_methods = list(ds.LossyImageCompressionMethod)
        assert len(got_ratios) == len(got_methods) == 2, (got_ratios, got_methods)
        assert got_methods[0] == methods and got_methods[1] == "ISO_10918_1" and got_ratios[1] == pytest.approx(out.entry.ratio, rel=0.01)
        if ratios is not None:
            assert got_ratios[0] == ratios
        else:
            measured = stored_lossy_step(source, source.file_meta.TransferSyntaxUID)[1]
            assert measured is not None and got_ratios[0] == pytest.approx(measured, rel=1e-3)


def test_a_dataset_read_with_another_vr_than_its_meta_says_is_still_written() -> None:
    """pydicom's SC_rgb_jpeg.dcm: the meta says explicit VR, the dataset is implicit; the fast
    writer met raw elements without a VR ("TypeError: encoding without a string argument") and
    the preset passed the image through, that message as the reason."""
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("SC_rgb_jpeg.dcm")).read_bytes()
    out = PRESETS["preview"].encode_instance(data)
    assert not out.entry.passthrough and out.entry.lossy and len(out.data) < len(data), out.entry.reason
    source, ds = pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(io.BytesIO(out.data))
    assert ds.ContentDate == source.ContentDate and ds.pixel_array.shape == source.pixel_array.shape


@pytest.mark.realdata
def test_a_406_says_what_the_preset_does_with_the_image(shared_data: Path, store) -> None:
    """A 12-bit CT asked as 8-bit baseline JPEG (.50): the diagnostic preset codes it as .51, and
    the 406 says so (it said 'passed through' until 2026-12-02: an outside audit). 8-bit
    grayscale asked as .51 is answered (its baseline frames as SOF1, since 2026-12-02)."""
    from medcodec.delivery.live import instance_bytes

    ct = shared_data / "ct_chest_lungpetctdx_A0001_philips" / "0001.dcm"
    assert store.ingest([ct], precompress=False).ok
    (record,) = store.instances(str(pydicom.dcmread(ct, stop_before_pixels=True).StudyInstanceUID))
    with pytest.raises(NotAcceptableError, match=r"codes this image as 1\.2\.840\.10008\.1\.2\.4\.51"):
        instance_bytes(store, record, "1.2.840.10008.1.2.4.50", "diagnostic", True)
    path = shared_data / "singles" / "us_768x1024_8bit_jpeg_lossless.dcm"
    assert pydicom.dcmread(path, stop_before_pixels=True).BitsStored == 8
    assert store.ingest([path], precompress=False).ok
    (record,) = store.instances(str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID))
    assert instance_bytes(store, record, JPEG12, None, True)[1] == JPEG12
    data, got = instance_bytes(store, record, "1.2.840.10008.1.2.4.50", None, True)
    assert got == "1.2.840.10008.1.2.4.50" and pydicom.dcmread(io.BytesIO(data)).BitsStored == 8


@pytest.mark.realdata
def test_mr_padding_far_below_the_content_gets_a_slot_through_the_store(shared_data: Path, store,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    """The store's series mapping (catalog statistics: ingest records each instance's content
    range outside the declared padding) gives an MR with Pixel Padding Value -32768 a padding slot,
    not a scale of 9, and the coded tissue keeps its error; a series with a record made before
    the content range was kept (NULL) keeps the mapping it had, so its archives stay valid."""
    import sqlalchemy as sa

    from medcodec.delivery.catalog import instances as instances_table

    paths = []
    for k in (40, 44, 48):
        ds = pydicom.dcmread(shared_data / MR / f"{k:04d}.dcm")
        a = ds.pixel_array.astype(np.int32)
        yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
        a[(yy - 128) ** 2 + (xx - 128) ** 2 > 110**2] = -32768
        ds.PixelData = a.astype("<i2").tobytes()
        ds.PixelPaddingValue = -32768
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.77"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{k}"
        paths.append(tmp_path / f"{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    assert store.ingest(paths, precompress=False).ok
    mapping = store.series_mapping("1.2.826.0.1.3680043.8.498.77", "diagnostic")
    assert mapping is not None and mapping.rule == "padding+offset" and mapping.scale == 1, mapping.describe()
    out = PRESETS["diagnostic"].encode_instance(paths[1].read_bytes(), mapping=mapping)
    coded = pydicom.dcmread(io.BytesIO(out.data))
    before = pydicom.dcmread(paths[1]).pixel_array.astype(np.float64)
    tissue = before != -32768
    after = coded.pixel_array * float(coded.RescaleSlope) + float(coded.RescaleIntercept)
    assert float(np.sqrt(((after - before)[tissue] ** 2).mean())) < 12  # scale 9 gave 47
    with store.catalog.engine.begin() as conn:  # one record as medcodec wrote it before: no content range
        conn.execute(sa.update(instances_table).where(instances_table.c.sop_uid == "1.2.826.0.1.3680043.8.498.77.40")
                     .values(px_tissue_min=None, px_tissue_max=None))  # fmt: skip
    assert store.series_mapping("1.2.826.0.1.3680043.8.498.77", "diagnostic").rule == "scale"


@pytest.mark.realdata
def test_a_series_mixing_pixel_representations_plans_from_one_kind(shared_data: Path, store, tmp_path: Path) -> None:
    """A chest CT whose slices alternate between unsigned 12-bit (intercept -1024) and signed
    16-bit stored HU: their stored values are different units, so the series mapping is planned
    from the statistics of the first instance's kind only (an offset or identity, scale 1); the
    other kind plans its own. Until 2026-12-02 the pooled range (-1024 of one, 4000 of the other)
    forced a needless scale of 2 (an outside audit, F5)."""
    series_uid = "1.2.826.0.1.3680043.8.498.78"
    paths = []
    for k, index in enumerate((20, 21, 22, 23)):
        ds = pydicom.dcmread(shared_data / CHEST / f"{index:04d}.dcm")
        a = ds.pixel_array.astype(np.int32)
        if k % 2:
            ds.PixelRepresentation, ds.BitsStored, ds.HighBit, ds.RescaleIntercept = 1, 16, 15, "0"
            a = a + int(float(pydicom.dcmread(shared_data / CHEST / f"{index:04d}.dcm").RescaleIntercept))
            ds.PixelData = a.astype("<i2").tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = f"{series_uid}.{k + 1}"
        paths.append(tmp_path / f"{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    assert store.ingest(paths, precompress=False).ok
    mapping = store.series_mapping(series_uid, "diagnostic")
    assert mapping is not None and mapping.scale == 1, mapping.describe()
    assert store.catalog.series_stats(series_uid)["n_kinds"] == 2
    for path in paths:  # every slice codes, the other kind under a mapping of its own
        out = PRESETS["diagnostic"].encode_instance(path.read_bytes(), mapping=mapping)
        assert out.entry.transfer_syntax_uid == "1.2.840.10008.1.2.4.51" and out.entry.max_error_hu < 200


@pytest.mark.realdata
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("preset", ["lossless", "diagnostic"])
def test_text_invalid_in_its_character_set_is_passed_through_as_it_was(
    shared_data: Path, preset: str, implicit: bool
) -> None:
    """A CT declaring ISO_IR 192 (UTF-8) with Latin-1 bytes in its Study Description: the preset
    reads the descriptions to choose the operating point, and the element decoded for that came
    out of the derived file with U+FFFD (the lossless file keeps the SOP Instance UID). An outside
    audit, 2026-12-02: now every such element is written with the bytes it had. From an implicit VR
    original pydicom's writer converted every element, names and sequence items included, until
    ``write.keep_text_bytes``."""
    ds = pydicom.dcmread(series_files(shared_data, CHEST)[10])
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDescription = "Schädel"
    ds.SeriesDescription = "Thorax ÄÖÜ\\Lunge ß"  # two values
    ds.PatientName = "Müller^Jörg"
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D3000", "SRT", "Brustkorb ä"
    ds.AnatomicRegionSequence = pydicom.Sequence([code])
    syntax = pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=implicit)
    data = buf.getvalue().replace(b"ISO_IR 100", b"ISO_IR 192")  # the bytes stay Latin-1
    out = PRESETS[preset].encode_instance(data)
    written, source = pydicom.dcmread(io.BytesIO(out.data)), pydicom.dcmread(io.BytesIO(data))
    assert written.SpecificCharacterSet == "ISO_IR 192"
    for tag in (0x00081030, 0x0008103E, 0x00100010):  # Study and Series Description, Patient's Name
        assert written.get_item(tag).value == source.get_item(tag).value, (tag, written.get_item(tag).value)
    item, source_item = written.AnatomicRegionSequence[0], source.AnatomicRegionSequence[0]
    assert item.get_item(0x00080104).value == source_item.get_item(0x00080104).value == b"Brustkorb \xe4 "


def _padded_chest(shared_data: Path, tmp_path: Path, *, full_range: bool) -> tuple[Path, int]:
    """A chest CT slice with a declared Pixel Padding Value -2000 outside a disc; ``full_range``:
    one voxel at 3071 HU too, so that the tissue fills all 4096 codes of a 12-bit JPEG."""
    (path,) = series_files(shared_data, CHEST, 1)
    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)  # HU
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    outside = (yy - 256) ** 2 + (xx - 256) ** 2 > 240**2
    a = np.clip(a, -1024, 2000)  # room for a padding slot below the tissue ...
    a[outside] = -2000 - 1024  # stored -2000 below
    if full_range:
        a[256, 256] = 3071  # ... unless one voxel fills the 12-bit range
    ds.PixelRepresentation, ds.BitsStored, ds.BitsAllocated, ds.HighBit = 1, 16, 16, 15
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = (a + 1024).astype("<i2").tobytes()
    ds.add_new(0x00280120, "SS", -2000)  # Pixel Padding Value
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()  # one series each: the mapping is the series'
    out = tmp_path / f"padded_{full_range}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out, int(outside.sum())


@pytest.mark.realdata
def test_padding_without_a_code_of_its_own_is_said_and_counted(shared_data: Path, store, tmp_path: Path) -> None:
    """An outside audit (2026-12-04, TCIA RIDER CT): tissue filling all 4096 codes leaves the declared
    padding no value of its own; it is set to -1024 HU with the clipped voxels, and the labels now say
    so (Derivation Description, the manifest's mapping) and count it as clipped. With a free code the
    padding keeps its slot and nothing is counted."""
    for full_range in (True, False):
        path, n_padding = _padded_chest(shared_data, tmp_path, full_range=full_range)
        report = store.ingest([path], precompress=False)
        mapping = store.series_mapping(report.outcomes[0].series_uid, "diagnostic")
        assert mapping is not None and mapping.padding == (-2000, -2000)
        out = PRESETS["diagnostic"].encode_instance(path.read_bytes(), mapping=mapping)
        coded = pydicom.dcmread(io.BytesIO(out.data))
        said = "declared padding (stored -2000) has no value of its own"
        if full_range:
            assert mapping.padding_code is None
            assert out.entry.n_clipped == n_padding
            live = PRESETS["diagnostic"].encode_instance(path.read_bytes(), mapping=mapping, measure=False)
            assert live.entry.n_clipped in (n_padding, None)  # known, or said unknown: never 0 (it was)
            assert said in out.entry.mapping and said in str(coded.DerivationDescription)
            assert "PixelPaddingValue" not in coded
        else:
            assert mapping.padding_code is not None and out.entry.n_clipped == 0
            assert said not in out.entry.mapping and "PixelPaddingValue" in coded


def test_padding_inside_the_kept_range_is_not_counted_as_clipped(store, tmp_path: Path) -> None:
    """An outside audit (2026-12-04): an MR whose Pixel Padding Value lies inside its own values, mapped
    as it is (identity), reported every padding voxel as clipped in the manifest."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    a = ds.pixel_array.copy()
    a[:8, :] = 0  # a band of padding
    ds.PixelData = a.astype("<i2").tobytes()
    ds.add_new(0x00280120, "SS", 0)  # Pixel Padding Value
    path = tmp_path / "mr_padding.dcm"
    ds.save_as(path, enforce_file_format=True)
    report = store.ingest([path], precompress=False)
    mapping = store.series_mapping(report.outcomes[0].series_uid, "diagnostic")
    assert mapping is not None and mapping.is_identity
    out = PRESETS["diagnostic"].encode_instance(path.read_bytes(), mapping=mapping)
    assert out.entry.n_clipped == 0


@pytest.mark.realdata
def test_a_copy_coded_with_another_mapping_has_other_uids(shared_data: Path, store) -> None:
    """A lossy copy's UIDs were named by the preset and the original's UID alone: a series re-coded
    with a wider mapping (an instance with a wider range arrived) kept them, one SOP Instance UID
    then had two images, and a PACS that had fetched the first kept it silently (an outside audit
    with Orthanc, 2026-12-05). The mapping, the quality and the coding revision are in the name now:
    the same coding gives the same UIDs (live == pre-computed), another gives others."""
    from pydicom.uid import generate_uid

    files = series_files(shared_data, MR)[:4]
    series = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    store.ingest(files, precompress=False)
    before = store.series_mapping(series, "diagnostic")
    wide = pydicom.dcmread(files[1])
    wide.SOPInstanceUID = generate_uid()
    wide.file_meta.MediaStorageSOPInstanceUID = wide.SOPInstanceUID
    bits = int(wide.BitsStored)
    top = (1 << (bits - 1)) - 1 if wide.PixelRepresentation else (1 << bits) - 1
    wide.PixelData = np.clip(wide.pixel_array.astype(np.int64) * 16, None, top).astype(wide.pixel_array.dtype).tobytes()
    buf = io.BytesIO()
    wide.save_as(buf, enforce_file_format=True)
    assert store.ingest_bytes(buf.getvalue()).status == "stored"
    after = store.series_mapping(series, "diagnostic")
    assert after != before
    data = files[0].read_bytes()
    uids = {}
    for name, mapping in (("before", before), ("again", before), ("after", after)):
        ds = pydicom.dcmread(io.BytesIO(PRESETS["diagnostic"].encode_instance(data, mapping=mapping).data))
        uids[name] = (ds.SOPInstanceUID, ds.SeriesInstanceUID)
    assert uids["before"] == uids["again"]
    assert uids["after"][0] != uids["before"][0] and uids["after"][1] != uids["before"][1]
