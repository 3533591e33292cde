"""Lossy DICOM series: one mapping per series, HU kept, standard transfer syntaxes, CLI, validators.

Reference values come from decoding the written files with pydicom's own plugins (pylibjpeg /
Pillow), independent of the encoders (medcodec JPEG, OpenJPEG, OpenJPH, CharLS via imagecodecs);
dciodvfy (dicom3tools) and dcmdjpeg / dcmdjpls (DCMTK) check the files when installed.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_fragments, parse_basic_offsets

from medcodec.cli.main import main
from medcodec.dicom import (
    SYNTAXES,
    FileResult,
    SeriesMapping,
    SeriesStats,
    encode_series_to_dicom,
    get_syntax,
    plan_series_mapping,
    read_series,
)
from medcodec.errors import DepthReducedWarning, InvalidInputError
from medcodec.spec import PixelSpec, storage_dtype

CHEST = "ct_chest_lungpetctdx_A0001_philips"
CT1_PADDED = "singles/ct_CT1_512x512_signed16_jpegls_near_lossless.dcm"  # -3028 HU padding, PixelPaddingValue -2000
CT_SIGNED = "singles/ct_512x512_signed16_j2k_lossless.dcm"  # -1024..1186 HU, signed
MR_HEAD = "mr_head_ge_signa_t1_ctk"  # 16-bit signed, 0..5888 (slices 70-87 exceed 4095)
ENHANCED_CT = "singles/ct_enhanced_multiframe_2f_512x512.dcm"
UIDS = {"jpeg": "1.2.840.10008.1.2.4.51", "j2k": "1.2.840.10008.1.2.4.91", "htj2k": "1.2.840.10008.1.2.4.203",
        "jpegls": "1.2.840.10008.1.2.4.81"}  # fmt: skip
METHODS = {"jpeg": "ISO_10918_1", "j2k": "ISO_15444_1", "htj2k": "ISO_15444_15", "jpegls": "ISO_14495_1"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _stats(mn: int, mx: int, *, bits: int = 16, signed: bool = True, ct: bool = True, tissue_min: int | None = None,
           below: int = 0) -> SeriesStats:  # fmt: skip
    spec = PixelSpec(bits, signed, rescale_type="HU" if ct else "")
    return SeriesStats(spec=spec, n_images=1, n_frames=1, n_voxels=100, min=mn, max=mx, is_ct=ct,
                       tissue_min=tissue_min, tissue_max=mx if tissue_min is not None else None,
                       n_below_floor=below)  # fmt: skip


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


# --------------------------------------------------------------------------- the mapping rule (no data needed)


@pytest.mark.parametrize(
    ("stats", "bits", "signed", "rule", "offset", "scale", "clip_low"),
    [
        (_stats(0, 4000, bits=12, signed=False), 12, False, "identity", 0, 1, 0),  # 12-bit CT as it is
        (_stats(-1024, 3071), 12, False, "offset", -1024, 1, -1024),  # signed CT, 4096 values
        (_stats(-3024, 3000, tissue_min=-1024, below=7), 12, False, "clip+offset", -1024, 1, -1024),
        (_stats(-2000, 2278, tissue_min=0, below=7), 12, False, "clip+offset", 0, 1, 0),  # CT1: intercept -1024
        (_stats(-1024, 6000, tissue_min=-1024), 12, False, "scale", -1024, 2, -1024),  # metal: range needs 2
        (_stats(-3024, 6000, tissue_min=-1024, below=3), 12, False, "clip+scale", -1024, 2, -1024),
        (_stats(0, 5888, ct=False), 12, False, "scale", 0, 2, 0),  # 16-bit MR into 12 bits
        (_stats(-3024, 5000, ct=False), 12, False, "scale", -3024, 2, -3024),  # no HU: nothing is padding
        (_stats(-2004, 2278), 16, False, "offset", -2004, 1, -2004),  # JPEG-LS: unsigned only
        (_stats(-2004, 2278), 16, True, "identity", 0, 1, -32768),  # JPEG 2000 / HTJ2K: as it is
    ],
)
def test_plan_series_mapping_rules(stats: SeriesStats, bits: int, signed: bool, rule: str, offset: int, scale: int,
                                   clip_low: int) -> None:  # fmt: skip
    m = plan_series_mapping(stats, bits_stored=bits, signed=signed)
    assert (m.rule, m.offset, m.scale, m.clip_low) == (rule, offset, scale, clip_low)
    values = np.arange(stats.min, stats.max + 1, dtype=np.int32).reshape(1, -1)
    mapped, clipped = m.map(values)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    assert mapped.min() >= lo and mapped.max() <= hi
    kept = m.kept(values)
    assert clipped == int((~kept).sum())
    assert clipped == (values < (stats.tissue_min if "clip" in rule else stats.min)).sum()
    # HU = stored' * slope' + intercept' equals the original HU: exactly at scale 1
    slope, intercept = m.rescale(1.0, -1024.0)
    hu_new = mapped.astype(np.float64) * slope + intercept
    hu_old = values.astype(np.float64) - 1024.0
    assert np.abs(hu_new - hu_old)[kept].max() <= scale // 2
    assert np.abs(m.unmap(mapped) - values)[kept].max() <= scale // 2
    # clipped voxels land on the lowest kept value
    assert (m.unmap(mapped)[~kept] == m.clip_low).all()


def test_mapping_refuses_an_impossible_range_and_describes_itself() -> None:
    with pytest.raises(InvalidInputError):
        SeriesMapping(offset=0, scale=1, bits_stored=12, signed=False, clip_low=-5, clip_high=10,
                      source_bits_stored=16, source_signed=True)  # fmt: skip
    m = plan_series_mapping(_stats(-3024, 3000, tissue_min=-1024, below=1), bits_stored=12, signed=False)
    assert m.describe() == "clip+offset: stored' = stored + 1024 (stored -1024..3071 kept); encoded as 12-bit unsigned"
    assert m.map_value(-3024) is None and m.map_value(-1024) == 0


def _map_by_formula(m: SeriesMapping, frame: np.ndarray) -> tuple[np.ndarray, int]:
    """The mapping written out as the module docstring states it, in int64 (no padding)."""
    a = frame.astype(np.int64)
    clipped = int(np.count_nonzero((a < m.clip_low) | (a > m.clip_high)))
    out = (np.clip(a, m.clip_low, m.clip_high) - m.offset + m.scale // 2) // m.scale
    lo, hi = (-(1 << (m.bits_stored - 1)), (1 << (m.bits_stored - 1)) - 1) if m.signed else (0, (1 << m.bits_stored) - 1)
    return np.clip(out, lo, hi), clipped


def test_mapping_kernels_match_their_numpy_twins() -> None:
    # the one-pass kernels of SeriesMapping.map and declare_padding against their NumPy twins, on
    # random frames: padding inside and outside the clip range, scales 1-5, signed and unsigned
    from medcodec.dicom._mapping_kernels import (
        map_frame,
        map_frame_reference,
        padding_extent,
        padding_extent_reference,
        padding_scan,
        padding_scan_reference,
    )

    rng = np.random.default_rng(11)
    for _ in range(400):
        src_dtype = rng.choice([np.int16, np.uint16, np.int32])
        dst_dtype = np.dtype(rng.choice([np.uint16, np.int16]))
        info = np.iinfo(src_dtype)
        frame = rng.integers(max(info.min, -5000), min(info.max, 9000), size=(3, 7, 5)).astype(src_dtype)
        clip_low = int(rng.integers(-3000, 500))
        clip_high = clip_low + int(rng.integers(0, 9000))
        scale, offset = int(rng.integers(1, 6)), int(rng.integers(-3000, 3000))
        lo_t, hi_t = (-2048, 2047) if dst_dtype == np.int16 else (0, 4095)
        pad_lo = int(rng.choice(frame.reshape(-1)))
        pad_hi = pad_lo + int(rng.integers(0, 3))
        has_pad, pad_code = bool(rng.random() < 0.6), int(rng.integers(lo_t, hi_t + 1))
        args = (clip_low, clip_high, offset, scale, lo_t, hi_t, pad_lo, pad_hi, pad_code, has_pad)
        out = np.empty(frame.shape, dst_dtype)
        clipped = map_frame(frame, out, *args)
        want, want_clipped = map_frame_reference(frame, dst_dtype, *args)
        assert out.tolist() == want.tolist() and clipped == want_clipped
        decoded = want.astype(dst_dtype)
        pad = (frame >= pad_lo) & (frame <= pad_hi) if has_pad else np.zeros(frame.shape, bool)
        tissue = ~pad & (rng.random(frame.shape) < 0.8)
        assert tuple(padding_extent(decoded, pad, tissue)) == padding_extent_reference(decoded, pad, tissue)
        floor = int(rng.choice([-(1 << 62), int(rng.integers(-3000, 3000))]))
        scan = (frame, pad_lo, pad_hi, has_pad, pad_lo - scale, pad_hi + scale, floor)
        assert tuple(padding_scan(*scan)) == padding_scan_reference(*scan)


def test_mapping_gives_the_formula_whether_or_not_anything_is_clipped() -> None:
    # map() takes a shortcut when nothing is clipped (two passes for the range, two to shift,
    # the shift modulo the storage type); both paths must give the formula's values and count
    rng = np.random.default_rng(7)
    checked = {True: 0, False: 0}
    for _ in range(1500):
        bits, signed, scale = int(rng.choice([8, 12, 16])), bool(rng.random() < 0.3), int(rng.choice([1, 1, 2, 3, 4]))
        dtype = rng.choice([np.int16, np.uint16, np.int32, np.uint8])
        clip_low = int(rng.integers(-4000, 100))
        clip_high = clip_low + int(rng.integers(0, ((1 << bits) - 1) * scale))
        offset = clip_low - (-(1 << (bits - 1)) if signed else 0) * scale + int(rng.integers(-2, 3)) * scale
        try:
            m = SeriesMapping(offset=offset, scale=scale, bits_stored=bits, signed=signed, clip_low=clip_low,
                              clip_high=clip_high, source_bits_stored=16, source_signed=True, rule="scale")  # fmt: skip
        except InvalidInputError:
            continue
        info = np.iinfo(dtype)
        low, high = max(info.min, clip_low), min(info.max, clip_high)
        if low > high:
            continue
        centre, span = int(rng.integers(low, high + 1)), int(rng.choice([2, 40, 5000, 70000]))
        frame = np.clip(rng.integers(centre - span, centre + span, size=(9, 11)), info.min, info.max).astype(dtype)
        got, clipped = m.map(frame)
        want, want_clipped = _map_by_formula(m, frame)
        assert got.dtype == storage_dtype(bits, signed)
        assert got.astype(np.int64).tolist() == want.tolist() and clipped == want_clipped
        checked[clipped == 0] += 1
    assert checked[True] > 200 and checked[False] > 200  # both paths exercised


def test_syntax_registry_is_the_one_place() -> None:
    assert sorted(SYNTAXES) == ["htj2k", "j2k", "jpeg", "jpegls"]
    for name, syntax in SYNTAXES.items():
        assert get_syntax(f"dicom-{name}") is syntax and syntax.method == METHODS[name]
    assert get_syntax("jpeg").uid(8) == "1.2.840.10008.1.2.4.50" and get_syntax("jpeg").uid(12) == UIDS["jpeg"]
    assert get_syntax("jpeg").target(16, True) == (12, False) and get_syntax("j2k").target(16, True) == (16, True)
    assert get_syntax("htj2k").target(12, False) == (16, False) and get_syntax("jpegls").target(16, True) == (16, False)
    with pytest.raises(InvalidInputError, match="unknown"):
        get_syntax("webp")


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def chest(shared_data: Path):
    """Three slices of a 12-bit unsigned chest CT (intercept -1024)."""
    return read_series([shared_data / CHEST / f"{i:04d}.dcm" for i in (20, 30, 40)]).series[0]


@pytest.fixture(scope="module")
def chest_out(chest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[FileResult]]:
    """The chest slices at ratio 10 in every syntax, written once for the tests below."""
    root = tmp_path_factory.mktemp("chest")
    return {name: encode_series_to_dicom(chest, root / name, syntax=name, ratio=10) for name in SYNTAXES}


def _check_file(result: FileResult, source: pydicom.Dataset, syntax: str) -> pydicom.Dataset:
    """Structure and attributes every written file must have."""
    ds = pydicom.dcmread(result.path)
    assert ds.file_meta.TransferSyntaxUID == (UIDS[syntax] if ds.BitsStored > 8 else "1.2.840.10008.1.2.4.50")
    # identity: new SOP Instance UID in dataset and file meta, new series, everything else kept
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == result.sop_instance_uid
    assert ds.SOPInstanceUID != source.SOPInstanceUID and ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == source.PatientID
    for keyword in ("ImagePositionPatient", "PixelSpacing", "SliceThickness", "WindowCenter"):
        assert ds.get(keyword) == source.get(keyword)
    # lossy attributes: appended to the source's
    assert ds.LossyImageCompression == "01"
    ratios = [str(v) for v in np.atleast_1d(ds.LossyImageCompressionRatio)]
    methods = [str(v) for v in np.atleast_1d(ds.LossyImageCompressionMethod)]
    before = [str(v) for v in np.atleast_1d(source.get("LossyImageCompressionRatio") or [])]
    assert ratios[:-1] == before and abs(float(ratios[-1]) - result.ratio) < 0.01
    assert methods[-1] == METHODS[syntax]
    assert ds.ImageType[0] == "DERIVED"
    assert "medcodec" in ds.DerivationDescription and ds.DerivationCodeSequence[-1].CodeValue == "113040"
    # pixel module consistent with the codestream; one fragment per frame after a Basic Offset Table
    assert ds.HighBit == ds.BitsStored - 1 and ds.BitsAllocated == (8 if ds.BitsStored <= 8 else 16)
    assert ds["PixelData"].is_undefined_length
    n_frames = int(ds.get("NumberOfFrames", 1))
    fragments = list(generate_fragments(ds.PixelData))
    assert len(fragments) == n_frames + 1  # BOT item + one per frame
    offsets = parse_basic_offsets(ds.PixelData)
    assert len(offsets) == n_frames and offsets[0] == 0
    assert sum(len(f) for f in fragments[1:]) == result.nbytes
    return ds


def _check_hu(result: FileResult, ds: pydicom.Dataset, source: pydicom.Dataset, tissue_above: float = -1000.0) -> None:
    hu_in, hu_out = _hu(source), _hu(ds)
    tissue = hu_in > tissue_above
    assert np.abs(hu_out - hu_in)[tissue].max() <= result.max_error_hu + 1e-9


@pytest.mark.realdata
@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
def test_each_syntax_on_real_ct(chest, chest_out, syntax: str) -> None:
    results = chest_out[syntax]
    assert [Path(r.source).name for r in results] == [Path(im.path).name for im in chest.images]
    assert len({r.mapping for r in results}) == 1 and results[0].mapping.is_identity
    raw = sum(r.nbytes * r.ratio for r in results)
    assert raw / sum(r.nbytes for r in results) == pytest.approx(10, rel=0.03)  # one knob for the series
    new_series = set()
    for r in results:
        source = pydicom.dcmread(r.source)
        ds = _check_file(r, source, syntax)
        _check_hu(r, ds, source)
        assert r.n_clipped == 0 and r.ratio == pytest.approx(10, rel=0.1)
        assert 40 < r.psnr < 60 and 0 < r.max_error_hu < 200
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        new_series.add(ds.SeriesInstanceUID)
    assert len(new_series) == 1


@pytest.mark.filterwarnings("ignore::medcodec.errors.LossySourceWarning")  # CT1 is a lossy source
@pytest.mark.realdata
@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
def test_signed_ct_with_padding_keeps_hu_in_tissue(shared_data: Path, tmp_path: Path, syntax: str) -> None:
    source = pydicom.dcmread(shared_data / CT1_PADDED)
    hu_in = _hu(source)
    padding = int((hu_in < -1024).sum())
    assert padding > 50_000  # the -3024 HU ring outside the scan field
    series = read_series(shared_data / CT1_PADDED).series[0]
    (r,) = encode_series_to_dicom(series, tmp_path, syntax=syntax, ratio=8)
    ds = _check_file(r, source, syntax)
    _check_hu(r, ds, source)
    assert r.max_error_hu < 100 and r.ratio == pytest.approx(8, rel=0.05)
    stored_in = source.pixel_array
    is_pad, tissue = stored_in == int(source.PixelPaddingValue), hu_in >= -1024
    # padding stays padding (issue 10 item 2): the declared range holds every padding voxel, no tissue voxel
    lo, hi = sorted((int(ds.PixelPaddingValue), int(ds.get("PixelPaddingRangeLimit", ds.PixelPaddingValue))))
    declared = (ds.pixel_array >= lo) & (ds.pixel_array <= hi)
    assert declared[is_pad].all() and not declared[tissue].any()
    if syntax == "jpeg":  # 12 bits cannot hold -3028..1254 HU: padding gets its own slot below the tissue
        assert r.mapping.rule == "clip+offset" and r.mapping.padding_code == 0
        assert r.n_clipped == padding - int(is_pad.sum())  # only the non-padding voxels below -1024 HU
        assert (ds.BitsStored, ds.PixelRepresentation) == (12, 0)
        assert np.abs(_hu(ds)[tissue] - hu_in[tissue]).max() <= r.max_error_hu
    else:  # 16-bit codestreams hold every value: nothing clipped
        assert r.n_clipped == 0
        np.testing.assert_array_less(np.abs(_hu(ds) - hu_in), r.max_error_hu + 1e-9)
        if syntax == "jpegls":  # unsigned only: offset +2004, intercept -1024 - 2004
            assert (ds.PixelRepresentation, float(ds.RescaleIntercept)) == (0, -3028.0)
        else:
            assert (ds.PixelRepresentation, float(ds.RescaleIntercept)) == (1, -1024.0)


@pytest.mark.realdata
def test_signed_ct_gets_an_offset_into_12_bits(shared_data: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(shared_data / CT_SIGNED)
    (r,) = encode_series_to_dicom(read_series(shared_data / CT_SIGNED).series[0], tmp_path, syntax="jpeg", quality=90)
    ds = _check_file(r, source, "jpeg")
    assert r.mapping.rule == "offset" and r.n_clipped == 0
    assert (ds.PixelRepresentation, float(ds.RescaleIntercept)) == (0, float(source.RescaleIntercept) - 1024)
    hu_in = _hu(source)
    assert np.abs(_hu(ds) - hu_in).max() <= r.max_error_hu
    assert np.abs(_hu(ds) - hu_in).mean() < 10 and r.psnr > 70  # peak 2^16-1


@pytest.mark.filterwarnings("ignore::medcodec.errors.PaddingWarning")  # MR: PPV 0 inside its own range
@pytest.mark.realdata
def test_16_bit_mr_one_scale_for_the_whole_series(shared_data: Path, tmp_path: Path) -> None:
    files = [shared_data / MR_HEAD / f"{i:04d}.dcm" for i in (60, 80)]  # 80 reaches 5888, 60 stays below 4096
    series = read_series(files).series[0]
    import warnings

    from medcodec.errors import DepthReducedWarning, PaddingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = encode_series_to_dicom(series, tmp_path / "jpeg", syntax="jpeg", quality=90)
    # 16 bits into 12: divided by 2, said so; Pixel Padding Value 0 sits at the edge of the MR's own
    # values (background 1, 2, ...): no range can separate them after coding, so it is removed, said so
    assert {w.category for w in caught} == {DepthReducedWarning, PaddingWarning}
    assert "PixelPaddingValue" not in pydicom.dcmread(results[0].path)
    assert len({r.mapping for r in results}) == 1 and results[0].mapping.scale == 2
    rescales = set()
    for r in results:
        source = pydicom.dcmread(r.source)
        ds = _check_file(r, source, "jpeg")
        rescales.add((ds.RescaleSlope, ds.RescaleIntercept))
        _check_hu(r, ds, source, tissue_above=-1)
    assert rescales == {(2.0, 0.0)}  # never a per-image rescale
    for syntax in ("htj2k", "jpegls"):  # 16-bit codestreams: the values as they are
        (r, _) = encode_series_to_dicom(series, tmp_path / syntax, syntax=syntax, ratio=12)
        assert r.mapping.is_identity and r.n_clipped == 0


@pytest.mark.realdata
@pytest.mark.parametrize("syntax", ["j2k", "jpegls", "jpeg"])
def test_psnr_target_reached_by_every_file(chest, tmp_path: Path, syntax: str) -> None:
    series = chest if syntax != "jpeg" else read_series(chest.images[0].path).series[0]
    results = encode_series_to_dicom(series, tmp_path, syntax=syntax, psnr=52)
    assert all(r.psnr >= 52 - 0.05 for r in results)
    assert all(r.psnr < 56 for r in results)  # and not far above: the smallest stream that reaches it


@pytest.mark.realdata
def test_multiframe_image_one_fragment_per_frame(shared_data: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(shared_data / ENHANCED_CT)
    (r,) = encode_series_to_dicom(read_series(shared_data / ENHANCED_CT).series[0], tmp_path, syntax="j2k", ratio=6)
    ds = _check_file(r, source, "j2k")
    assert int(ds.NumberOfFrames) == 2 == r.frames
    assert np.abs(ds.pixel_array.astype(int) - source.pixel_array).max() == r.max_error


@pytest.mark.filterwarnings("ignore::medcodec.errors.LossySourceWarning")  # CT1 is a lossy source
@pytest.mark.realdata
def test_batch_goes_on_and_never_overwrites(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(shared_data / CT1_PADDED, folder / "a.dcm")
    bad = pydicom.dcmread(shared_data / CT1_PADDED)  # same series; a Modality LUT the 12-bit mapping cannot carry
    bad.SOPInstanceUID = pydicom.uid.generate_uid()
    bad.ImagePositionPatient = [0, 0, 5]
    lut = pydicom.Dataset()
    lut.add_new(0x00283002, "US", [2, 0, 16])  # LUT Descriptor
    lut.add_new(0x00283006, "US", [0, 1])  # LUT Data
    lut.ModalityLUTType = "HU"
    bad.ModalityLUTSequence = pydicom.Sequence([lut])
    bad.save_as(folder / "b.dcm")
    series = read_series(folder).series[0]
    failures: list = []
    results = encode_series_to_dicom(series, tmp_path / "out", syntax="jpeg", quality=80, failures=failures)
    assert [r.path.name for r in results] == ["a.dcm"] and len(failures) == 1
    assert "Modality LUT" in str(failures[0][1])
    with pytest.raises(InvalidInputError, match="exists"):
        encode_series_to_dicom(read_series(folder / "a.dcm").series[0], tmp_path / "out", syntax="jpeg")
    with pytest.raises(InvalidInputError, match="input"):
        encode_series_to_dicom(read_series(folder / "a.dcm").series[0], folder, syntax="j2k", overwrite=True)
    with pytest.raises(InvalidInputError, match="one of"):
        encode_series_to_dicom(series, tmp_path / "x", syntax="j2k", ratio=5, psnr=40)


@pytest.mark.filterwarnings("ignore::medcodec.errors.LossySourceWarning")  # CT1 is a lossy source
@pytest.mark.realdata
def test_cli_encode_to_dicom(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in (20, 21):
        shutil.copy(shared_data / CHEST / f"{i:04d}.dcm", folder / f"{i:04d}.dcm")
    shutil.copy(shared_data / CT1_PADDED, folder / "padded.dcm")
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    out = tmp_path / "out"
    code = main(["encode", str(folder), "-o", str(out), "--to", "dicom-htj2k", "--ratio", "8", "--no-progress"])
    assert code == 1  # the broken file is reported, the rest written
    captured = capsys.readouterr()
    assert "broken.dcm" in captured.err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert len(written) == 3 and len({Path(p).parent for p in written}) == 2  # a folder per series
    assert "series: 2 file(s)" in captured.out and "mapping (one for the series)" in captured.out
    assert "PSNR dB" in captured.out and "clipped" in captured.out
    for path in out.rglob("*.dcm"):
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == UIDS["htj2k"]
    assert main(["encode", str(folder / "padded.dcm"), "-o", str(tmp_path / "x.dcm"), "--to", "dicom-jpeg"]) == 2


# --------------------------------------------------------------------------- independent validators


from medcodec.testing.tools import require_tool as _tool  # noqa: E402  (one rule for external tools)


def _errors(tool: str, path: Path) -> set[str]:
    run = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True, timeout=60)
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}


@pytest.mark.filterwarnings("ignore::medcodec.errors.LossySourceWarning")  # CT1 is a lossy source
@pytest.mark.realdata
@pytest.mark.parametrize("syntax", ["jpeg", "jpegls", "j2k"])  # dicom3tools 2022 predates the HTJ2K UIDs
def test_dciodvfy_finds_no_new_error(shared_data: Path, chest_out, syntax: str, tmp_path: Path) -> None:
    tool = _tool("dciodvfy")
    if syntax == "jpeg":  # also the signed, padded CT
        (extra,) = encode_series_to_dicom(read_series(shared_data / CT1_PADDED).series[0], tmp_path, syntax="jpeg")
        assert _errors(tool, extra.path) <= _errors(tool, shared_data / CT1_PADDED)
    for r in chest_out[syntax]:
        assert _errors(tool, r.path) <= _errors(tool, Path(r.source)), r.path


@pytest.mark.realdata
@pytest.mark.parametrize(("syntax", "tool_name"), [("jpeg", "dcmdjpeg"), ("jpegls", "dcmdjpls")])
def test_dcmtk_decodes_to_the_same_pixels(chest_out, syntax: str, tool_name: str, tmp_path: Path) -> None:
    tool = _tool(tool_name)
    for r in chest_out[syntax]:
        out = tmp_path / r.path.name
        run = subprocess.run([tool, str(r.path), str(out)], check=False, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        ours, theirs = pydicom.dcmread(r.path), pydicom.dcmread(out)
        assert not theirs.file_meta.TransferSyntaxUID.is_compressed
        diff = np.abs(theirs.pixel_array.astype(int) - ours.pixel_array)
        if syntax == "jpeg":  # integer IDCTs differ (IJG islow vs libjpeg): by 1, rarely 2, at 12 bits
            assert diff.max() <= 2 and (diff > 1).mean() < 1e-4 and diff.mean() < 0.1
        else:  # JPEG-LS decoding is exact
            assert diff.max() == 0
        hu = _hu(theirs) - _hu(pydicom.dcmread(r.source))
        assert np.abs(hu).max() <= r.max_error_hu + 1 and not math.isnan(hu.mean())


@pytest.mark.realdata
def test_jpeg_series_one_table_for_all_slices_trained_for_the_modality(shared_data: Path, tmp_path: Path) -> None:
    """Issue 11: one quality gives the same DQT on every slice (the series' content range, not each
    slice's), and the table trained for the series' modality (MR here, not the CT default)."""
    from medcodec.codec import levelshift, quantize, read_header

    files = [shared_data / MR_HEAD / f"{i:04d}.dcm" for i in (20, 60, 80)]
    series = read_series(files).series[0]
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # slice 80 reaches 5888: 16 bits into JPEG's 12
        warnings.simplefilter("always")
        results = encode_series_to_dicom(series, tmp_path, syntax="jpeg", quality=75)
    assert DepthReducedWarning in {w.category for w in caught}
    mapping = results[0].mapping
    rbits = mapping.content_range_bits()
    own_bits = set()
    tables = set()
    for r in results:
        ds = pydicom.dcmread(r.path)
        stream = list(generate_fragments(ds.PixelData))[1]  # after the Basic Offset Table item
        (q,) = read_header(stream).qtables
        tables.add(np.asarray(q).tobytes())
        mapped = mapping.map(pydicom.dcmread(r.source).pixel_array)[0]
        own_bits.add(levelshift.content_range_bits(mapped, int(mapped.min()), int(mapped.max()), 12))
    assert len(own_bits) > 1  # the slices' own ranges differ: per-slice steps would differ too
    assert len(tables) == 1
    expected = quantize.quant_table(75, rbits, table="mr", max_step=65535)
    np.testing.assert_array_equal(np.frombuffer(tables.pop(), dtype=np.asarray(q).dtype), expected.ravel())
    assert not np.array_equal(expected, quantize.quant_table(75, rbits, table="ct", max_step=65535))
