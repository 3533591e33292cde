"""Conformance of the standard JPEG output and input with independent implementations.

* Our 8-bit (SOF0) and 12-bit (SOF1) streams, restart markers and 16-bit DQT included,
  decode with libjpeg-turbo (imagecodecs), libjpeg (pylibjpeg-libjpeg) and, when the Debian
  tools are installed, DCMTK (``dcmdjpeg``) and GDCM (``gdcmconv --raw``) to the pixels our
  decoder gives, within 1 (they use integer IDCTs, we use the float64 orthonormal one).
* Streams written by libjpeg-turbo (imagecodecs, Pillow with restart markers), DCMTK
  (``dcmcjpeg``) and pydicom's JPEG Extended test file decode with ours to what their own
  decoder gives, within 1; colour streams are refused.

Reference values are never circular: every comparison is between our decoder and a
decoder we did not write.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest

import medcodec
from medcodec.codec import jpeg
from medcodec.errors import UnsupportedFeatureError

imagecodecs = pytest.importorskip("imagecodecs")
libjpeg = pytest.importorskip("libjpeg")
pydicom = pytest.importorskip("pydicom")

from test_jpeg import image  # noqa: E402  (tests/codec is on sys.path: pytest's prepend import mode)


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def _assert_close(ours: np.ndarray, theirs: np.ndarray, decoder: str) -> None:
    """Within 1 everywhere. libjpeg (pylibjpeg-libjpeg) is allowed 3 on at most 1e-4 of the
    pixels: its integer IDCT differs from libjpeg-turbo's by up to 3 on libjpeg-turbo's own 12-bit
    streams (on ~1e-5 of the chest CT's pixels, next to bright structures at the top of the range;
    ``test_libjpeg_differs_on_our_streams_as_on_libjpeg_turbos``), so that is its own rounding."""
    diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    assert ours.shape == theirs.shape
    if decoder == "libjpeg":
        assert diff.max() <= 3 and np.count_nonzero(diff > 1) <= 1e-4 * diff.size, (diff.max(), np.count_nonzero(diff > 1))
    else:
        assert diff.max() <= 1


# --------------------------------------------------------------------------------------
# Independent decoders
# --------------------------------------------------------------------------------------


from medcodec.testing.tools import require_tool as _tool  # noqa: E402  (one rule for external tools)


def _dicom(rows: int, cols: int, bits: int, *, compressed: bytes | None = None, pixels: np.ndarray | None = None):
    """A minimal Secondary Capture dataset holding one JPEG stream (or raw pixels)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    if compressed is None:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg.parse_jpeg(compressed).P == 8 else JPEGExtended12Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Conformance^Test", "0", "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if compressed is None:
        assert pixels is not None
        ds.PixelData = pixels.astype(np.uint8 if bits <= 8 else "<u2").tobytes()
    else:
        ds.PixelData = encapsulate([compressed])
        ds["PixelData"].VR = "OB"
    return ds


def _via_dicom_tool(tool: list[str], stream: bytes, tmp_path: Path) -> np.ndarray:
    jf = jpeg.parse_jpeg(stream)
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    _dicom(jf.sof.Y, jf.sof.X, jf.P, compressed=stream).save_as(src, enforce_file_format=True)
    subprocess.run([*tool, str(src), str(dst)], check=True, capture_output=True, timeout=60)
    ds = pydicom.dcmread(dst)
    assert not ds.file_meta.TransferSyntaxUID.is_compressed
    return ds.pixel_array


def decode_libjpeg_turbo(stream: bytes, tmp_path: Path) -> np.ndarray:
    return imagecodecs.jpeg8_decode(stream)


def decode_libjpeg(stream: bytes, tmp_path: Path) -> np.ndarray:
    return libjpeg.decode(stream)


def decode_dcmtk(stream: bytes, tmp_path: Path) -> np.ndarray:
    return _via_dicom_tool([_tool("dcmdjpeg")], stream, tmp_path)


def decode_gdcm(stream: bytes, tmp_path: Path) -> np.ndarray:
    return _via_dicom_tool([_tool("gdcmconv"), "--raw"], stream, tmp_path)


DECODERS = {
    "libjpeg-turbo": decode_libjpeg_turbo,
    "libjpeg": decode_libjpeg,
    "dcmtk": decode_dcmtk,
    "gdcm": decode_gdcm,
}

OUR_CASES = [
    # bits, rows, cols, quality, restart interval, table
    (8, 1, 1, 75, 0, "medical"),
    (8, 7, 13, 90, 1, "medical"),
    (8, 61, 35, 20, 3, "annex-k"),
    (8, 64, 64, 1, 0, "flat"),  # steps capped at 255
    (12, 1, 1, 75, 0, "medical"),
    (12, 7, 13, 95, 2, "medical"),
    (12, 61, 35, 60, 7, "flat"),
    (12, 40, 72, 3, 0, "annex-k"),  # 16-bit DQT (Pq=1)
    (10, 33, 17, 100, 4, "medical"),
    (12, 40, 48, 100, 0, "flat"),  # quality 100: steps of 1 on 12-bit noise, AC categories up to 14
]


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("case", OUR_CASES, ids=lambda c: f"{c[0]}bit-{c[1]}x{c[2]}-q{c[3]}-ri{c[4]}-{c[5]}")
def test_our_streams_decode_elsewhere(decoder, case, tmp_path):
    bits, rows, cols, quality, restart, table = case
    img = image(rows, cols, bits, seed=rows * cols, noise=0.03)
    stream = medcodec.encode(img, bits_stored=bits, format="jpeg", quality=quality, restart_interval=restart, table=table)
    if (bits, quality) == (12, 3):
        assert jpeg.parse_jpeg(stream).qtable.Pq == 1
    ours = medcodec.decode(stream)
    _assert_close(ours, DECODERS[decoder](stream, tmp_path), decoder)


@pytest.mark.parametrize("decoder", ["libjpeg-turbo", "libjpeg"])
@pytest.mark.parametrize("rdo", ["none", "threshold", "trellis"])
def test_rdo_streams_decode_elsewhere(decoder, rdo, tmp_path):
    img = image(48, 80, 12, noise=0.05)
    stream = jpeg.encode_jpeg(img, bits_stored=12, quality=55, rdo=rdo, restart_interval=6)
    _assert_close(jpeg.decode_jpeg(stream), DECODERS[decoder](stream, tmp_path), decoder)


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize(("bits", "quality"), [(12, 30), (8, 30), (8, 33)])
def test_clipped_dc_levels_decode_elsewhere(decoder, bits, quality, tmp_path):
    """The default encoder codes flat black (and white) blocks one DC level beyond the sample range
    when the level shift is not a whole number of steps (the decoder clips them back): every
    decoder reads them within 1, and black stays black."""
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    img = np.clip(top * 0.4 + top * 0.05 * rng.standard_normal((48, 96)), 0, top)
    img[:, :32] = 0
    img[:, 64:] = top
    img = img.astype(np.uint8 if bits == 8 else np.uint16)
    stream = jpeg.encode_jpeg(img, bits_stored=bits, quality=quality, range_bits=bits)
    jf = jpeg.parse_jpeg(stream)
    step = int(np.ravel(jf.qtable.natural())[0])
    assert ((8 << (jf.P - 1)) / step) % 1 < 0.5  # black's rounded DC level would decode inside the range
    from medcodec.codec import entropy

    levels = entropy.decode_scan(stream, 6 * 12, jf.dc_table, jf.ac_table, size_bits=4, bits_stored=jf.P,
                                 start=jf.scan_start, end=jf.scan_end, stuffed=True)  # fmt: skip
    dc = levels[:, 0] * step / 8 + (1 << (jf.P - 1))  # each block's decoded mean before clipping
    assert dc.min() < 0 and dc.max() > top  # levels beyond both ends were coded (rounding: black at +0.5)
    ours = jpeg.decode_jpeg(stream)
    assert np.all(ours[:, :32] == 0) and np.all(ours[:, 64:] == top)
    theirs = DECODERS[decoder](stream, tmp_path)
    _assert_close(ours, theirs, decoder)
    assert np.all(theirs[:, :32] <= 1)


# --------------------------------------------------------------------------------------
# Streams from other encoders, decoded by ours
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 12])
@pytest.mark.parametrize("quality", [5, 50, 95, 100])
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (13, 7), (50, 67)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_libjpeg_turbo_streams(bits, quality, optimize, shape):
    img = image(*shape, bits, seed=3, noise=0.05)
    stream = imagecodecs.jpeg8_encode(img, level=quality, bitspersample=bits, optimize=optimize)
    assert jpeg.read_jpeg_header(stream).meta["process"] == ("SOF0" if bits == 8 else "SOF1")
    assert _max_diff(medcodec.decode(stream), imagecodecs.jpeg8_decode(stream)) <= 1


@pytest.mark.parametrize("option", [dict(restart_marker_blocks=1), dict(restart_marker_blocks=5), dict(restart_marker_rows=1)])
@pytest.mark.parametrize("optimize", [False, True])
def test_libjpeg_turbo_restart_streams(option, optimize):
    """8-bit libjpeg-turbo streams with DRI and RSTn, written through Pillow."""
    Image = pytest.importorskip("PIL.Image")
    img = image(45, 70, 8, seed=9, noise=0.05)
    buf = io.BytesIO()
    try:
        Image.fromarray(img).save(buf, format="JPEG", quality=80, optimize=optimize, **option)
    except TypeError:  # Pillow < 11.2 has no restart options
        pytest.skip("this Pillow cannot write restart markers")
    stream = buf.getvalue()
    assert jpeg.read_jpeg_header(stream).meta["restart_interval"] > 0
    theirs = np.asarray(Image.open(io.BytesIO(stream)))
    assert _max_diff(medcodec.decode(stream), theirs) <= 1


def test_libjpeg_turbo_12bit_with_restarts_rewritten():
    """libjpeg-turbo's own 12-bit levels and tables, re-wrapped with restart markers, decode the same."""
    from medcodec.codec import entropy

    img = image(40, 56, 12, noise=0.05)
    stream = imagecodecs.jpeg8_encode(img, level=70, bitspersample=12, optimize=True)
    jf = jpeg.parse_jpeg(stream)
    levels = entropy.decode_scan(
        stream, jf.nblocks, jf.dc_table, jf.ac_table, size_bits=4, bits_stored=12, start=jf.scan_start,
        end=jf.scan_end, stuffed=True,
    )  # fmt: skip
    coded, dc, ac = entropy.encode_scan(levels, size_bits=4, stuff=True, restart_interval=3, tables=(jf.dc_table, jf.ac_table))
    rst = jpeg.build_jpeg(
        coded, P=12, Y=40, X=56, steps=jf.qtable.natural(), dc_table=dc, ac_table=ac, restart_interval=3
    )
    want = imagecodecs.jpeg8_decode(stream)
    assert _max_diff(imagecodecs.jpeg8_decode(rst), want) == 0
    assert _max_diff(medcodec.decode(rst), want) <= 1
    _assert_close(medcodec.decode(rst), libjpeg.decode(rst), "libjpeg")


@pytest.mark.parametrize("bits, option", [(8, "+eb"), (8, "+ee"), (12, "+ee")])
def test_dcmtk_streams(bits, option, tmp_path):
    tool = _tool("dcmcjpeg")
    img = image(37, 53, bits, seed=4, noise=0.03)
    src, dst = tmp_path / "raw.dcm", tmp_path / "jpeg.dcm"
    _dicom(37, 53, bits, pixels=img).save_as(src, enforce_file_format=True)
    subprocess.run([tool, option, "+q", "85", str(src), str(dst)], check=True, capture_output=True, timeout=60)
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(dst)
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert jpeg.read_jpeg_header(stream).bits_stored == (8 if bits == 8 else 12)
    theirs = decode_dcmtk(stream, tmp_path)
    ours = medcodec.decode(stream)
    assert _max_diff(ours, theirs) <= 1
    assert _max_diff(ours, img) < (1 << bits) // 8


# --------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------


def _frame_of(path: Path) -> bytes:
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    return next(generate_frames(ds.PixelData, number_of_frames=int(getattr(ds, "NumberOfFrames", 1) or 1)))


@pytest.mark.realdata
def test_pydicom_jpeg_extended_12bit(shared_data):
    path = shared_data / "singles" / "nm_NM1_1024x256_12bit_jpeg_extended.dcm"
    stream = _frame_of(path)
    header = jpeg.read_jpeg_header(stream)
    assert (header.meta["process"], header.bits_stored, header.rows, header.cols) == ("SOF1", 12, 1024, 256)
    ours = medcodec.decode(stream)
    ref = pydicom.dcmread(path).pixel_array
    assert _max_diff(ours, ref) <= 1
    assert _max_diff(ours, imagecodecs.jpeg8_decode(stream)) <= 1


@pytest.mark.realdata
def test_pydicom_jpeg_extended_colour_refused(shared_data):
    stream = _frame_of(shared_data / "singles" / "us_576x768_ybr_jpeg_extended.dcm")
    with pytest.raises(UnsupportedFeatureError, match="Nf=3"):
        medcodec.decode(stream)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["cr_RG2_2140x1760_10bit_jpeg_lossless.dcm", "mr_MR2_1024x1024_12bit_jpeg_lossless_p14.dcm"])
def test_pydicom_jpeg_lossless_refused(shared_data, name):
    with pytest.raises(UnsupportedFeatureError, match="lossless"):
        medcodec.decode(_frame_of(shared_data / "singles" / name))


@pytest.mark.realdata
@pytest.mark.parametrize("series", ["ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity"])
def test_real_ct(series, shared_data, tmp_path):
    files = sorted((shared_data / series).glob("*.dcm"))
    img = pydicom.dcmread(files[len(files) // 2]).pixel_array.astype(np.uint16)
    for kw in (dict(quality=70), dict(ratio=10, restart_interval=64)):
        ours_stream = medcodec.encode(img, bits_stored=12, format="jpeg", **kw)
        ours = medcodec.decode(ours_stream)
        for decoder in ("libjpeg-turbo", "libjpeg"):
            _assert_close(ours, DECODERS[decoder](ours_stream, tmp_path), decoder)
    turbo = imagecodecs.jpeg8_encode(img, level=80, bitspersample=12, optimize=True)
    assert _max_diff(medcodec.decode(turbo), imagecodecs.jpeg8_decode(turbo)) <= 1


@pytest.mark.realdata
def test_libjpeg_differs_on_our_streams_as_on_libjpeg_turbos(shared_data):
    """libjpeg (pylibjpeg-libjpeg) against the decoder of the stream's writer, over the whole chest
    CT at one quality: on our default streams (against our decoder) no more often and by no more
    than on libjpeg-turbo's streams of the same slices (against libjpeg-turbo's decoder). Its
    deviation reaches 3 on both (found when Orthanc's copy of a .51 series decoded within 1 of
    libjpeg-turbo, DCMTK being its decoder, and pydicom's libjpeg plugin by 3)."""
    stats = {"ours": [0, 0], "turbo": [0, 0]}
    npix = 0
    for path in sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm")):
        img = pydicom.dcmread(path).pixel_array.astype(np.uint16)
        npix += img.size
        ours = medcodec.encode(img, bits_stored=12, format="jpeg", quality=50)
        turbo = imagecodecs.jpeg8_encode(img, level=50, bitspersample=12, optimize=True)
        for who, stream, own in (("ours", ours, jpeg.decode_jpeg), ("turbo", turbo, imagecodecs.jpeg8_decode)):
            diff = np.abs(libjpeg.decode(stream).astype(np.int64) - own(stream).astype(np.int64))
            stats[who][0] = max(stats[who][0], int(diff.max()))
            stats[who][1] += int(np.count_nonzero(diff > 1))
    (ours_max, ours_n), (turbo_max, turbo_n) = stats["ours"], stats["turbo"]
    assert turbo_max >= 2 and turbo_n > 0  # libjpeg's own deviation shows on this series
    assert ours_max <= turbo_max and ours_n <= 1.5 * turbo_n + 10, stats
    assert ours_n <= 1e-4 * npix, stats
