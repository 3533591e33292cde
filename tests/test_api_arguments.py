"""The Python API as a library user calls it: what an outside audit (2026-12-03) found coded silently
wrong or refused with a raw builtin error, each now right or an error of medcodec's own hierarchy."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.errors import InvalidInputError, RateTargetWarning
from medcodec.spec import PixelSpec

CHEST = "ct_chest_lungpetctdx_A0001_philips"


def _ct(shared_data: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sorted((shared_data / CHEST).glob("*.dcm"))[10])


@pytest.mark.realdata
def test_compress_checks_the_frames_and_spec_it_is_given(shared_data: Path) -> None:
    """F1: frames / spec were coded as given: values past Bits Stored decoded as 4095 everywhere, a
    spec of the wrong sign shifted 705 pixels by 4103 HU (a JPEG-LS bound broken unsaid), a shape
    rewrote Rows and Columns. The dataset is left as it was when refused."""
    from pydicom.uid import JPEGExtended12Bit, JPEGLSNearLossless

    from medcodec.dicom import compress, dataset_frames
    from medcodec.dicom.pixel_spec import pixel_spec_from_dataset

    ds = _ct(shared_data)
    spec = pixel_spec_from_dataset(ds)
    frames = dataset_frames(ds, spec)
    before = ds.PixelData
    cases = {
        "outside the 12-bit unsigned range": dict(frames=frames | 0x8000, spec=spec),
        "the dataset holds": dict(frames=frames[:, :256, :256].copy(), spec=spec),
        "(Number of Frames, Rows, Columns)": dict(frames=np.concatenate([frames, frames]), spec=spec),
        "integer numpy array": dict(frames=frames.astype(np.float64), spec=spec),
        "header says 12 bits unsigned": dict(frames=frames, spec=spec.replace(signed=True)),
        "spec= says 10 bits": dict(frames=frames, spec=spec.replace(bits_stored=10)),
        "medcodec.PixelSpec": dict(frames=frames, spec="x"),
    }
    for needle, kwargs in cases.items():
        for ts, target in ((JPEGExtended12Bit, {"quality": 90}), (JPEGLSNearLossless, {"max_error": 2})):
            with pytest.raises(InvalidInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
                compress(ds, ts, **target, **kwargs)
            assert ds.PixelData == before
    out = compress(ds, JPEGExtended12Bit, quality=90, frames=frames, spec=spec)  # the right ones: as before
    assert out.file_meta.TransferSyntaxUID == JPEGExtended12Bit


@pytest.mark.realdata
def test_compress_refuses_wrong_argument_types_with_its_own_errors(shared_data: Path) -> None:
    """F6, F7, F8: a path, None, a string mapping were raw AttributeErrors; generate_instance_uid="no"
    gave a new UID; jobs=np.int64(2) was refused and jobs=True taken as 1."""
    from pydicom.uid import JPEGExtended12Bit

    from medcodec.dicom import compress

    path = str(sorted((shared_data / CHEST).glob("*.dcm"))[10])
    for bad, needle in ((path, "pydicom Dataset"), (None, "pydicom Dataset")):
        with pytest.raises(InvalidInputError, match=needle):
            compress(bad, JPEGExtended12Bit, quality=90)  # type: ignore[arg-type]
    ds = _ct(shared_data)
    uid = ds.SOPInstanceUID
    with pytest.raises(InvalidInputError, match="mapping must be a SeriesMapping"):
        compress(ds, JPEGExtended12Bit, quality=90, mapping="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="generate_instance_uid='no'"):
        compress(ds, JPEGExtended12Bit, quality=90, generate_instance_uid="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="jobs=True"):
        compress(ds, JPEGExtended12Bit, quality=90, jobs=True)
    assert ds.SOPInstanceUID == uid
    compress(ds, JPEGExtended12Bit, quality=90, jobs=np.int64(2))  # type: ignore[arg-type]


def test_numpy_scalars_of_narrow_types_for_bits_stored() -> None:
    """F2: np.uint8(12) computed 1 << 12 in uint8: the range was 0..255 and valid data refused;
    np.int16(16) gave 0..-1."""
    rng = np.random.default_rng(0)
    img12 = rng.integers(0, 4096, (64, 64), dtype=np.uint16)
    img16 = rng.integers(0, 65536, (64, 64), dtype=np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning is gone too
        for bits, img in ((np.uint8(12), img12), (np.int16(16), img16), (np.int8(12), img12)):
            data = medcodec.encode(img, bits_stored=bits, quality=90)
            assert np.abs(medcodec.decode(data).astype(int) - img).max() < 200
        spec = PixelSpec(bits_stored=np.uint8(12))  # type: ignore[arg-type]
        assert (spec.max_value, spec.peak, type(spec.bits_stored)) == (4095, 4095, int)
    with pytest.raises(InvalidInputError, match="signed='False'"):
        PixelSpec(bits_stored=12, signed="False")  # type: ignore[arg-type]


def test_flags_and_jobs_are_checked() -> None:
    """F7, F8: signed="False" coded as signed; strict="no" turned strict mode on; numpy jobs refused."""
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 64
    with pytest.raises(InvalidInputError, match="signed='False'"):
        medcodec.encode(img, bits_stored=6, signed="False", quality=90)  # type: ignore[arg-type]
    data = medcodec.encode(img, bits_stored=6, quality=90, jobs=np.int64(2))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="strict='no'"):
        medcodec.decode(data, strict="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="jobs=True"):
        medcodec.decode(data, jobs=True)
    assert medcodec.decode(data, jobs=np.int64(2)).shape == (64, 64)  # type: ignore[arg-type]


def test_default_jobs_is_every_core_read_once() -> None:
    """``jobs=None`` means every core; the count is read once per process (each ``os.cpu_count()``
    call reads sysfs, ~8 us here: a sixth of a 64x64 JPEG encode)."""
    import os

    from medcodec.codec import framecoder

    assert framecoder.default_jobs(None) == (os.cpu_count() or 1)
    framecoder.default_jobs(None)
    assert framecoder._cores.cache_info().hits >= 1

def test_jpeg_refuses_what_only_mdc_carries() -> None:
    """F4: format="jpeg" dropped ancillary= (embedded DICOM headers) and ignored intra= / compact=."""
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096
    for kwargs, needle in (({"ancillary": {"dcmh": b"x"}}, "ancillary applies"), ({"intra": True}, "intra applies"),
                           ({"compact": True}, "compact applies")):  # fmt: skip
        with pytest.raises(InvalidInputError, match=needle):
            medcodec.encode(img, bits_stored=12, format="jpeg", quality=90, **kwargs)
    medcodec.encode(img, bits_stored=12, format="jpeg", quality=90, intra=False, ancillary={})  # nothing dropped
    with pytest.raises(InvalidInputError, match="ancillary must be a dict"):
        medcodec.encode(img, bits_stored=12, quality=90, ancillary=[("abcd", b"x")])  # type: ignore[arg-type]


def test_a_ratio_missed_on_the_whole_stack_is_searched_again_on_every_frame() -> None:
    """F3: the ratio search measured 8 sampled frames and never the whole stack: where those were
    smoother than the rest, ratio=10 gave 2.25:1 and the warning blamed the codec's range."""
    rng = np.random.default_rng(1)
    n = 40
    stack = np.empty((n, 64, 64), dtype=np.uint16)
    yy, xx = np.mgrid[:64, :64]
    smooth = (2000 + 10 * yy + 5 * xx).astype(np.uint16)
    from medcodec.ratecontrol import calibration_indices

    sampled = set(calibration_indices(n, 8))
    for i in range(n):  # the frames the search samples are smooth, every other one is noise
        stack[i] = smooth if i in sampled else rng.integers(0, 4096, (64, 64), dtype=np.uint16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = medcodec.encode(stack, bits_stored=12, ratio=10)
    reached = stack.size * 2 / len(data)
    assert reached >= 10 * 0.85 or any(issubclass(w.category, RateTargetWarning) for w in caught), reached
    assert reached > 6, reached  # 2.25:1 before


def test_masked_arrays_with_a_mask_are_refused() -> None:
    """F13: the mask was ignored and masked values coded as data."""
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096
    with pytest.raises(InvalidInputError, match="masked array"):
        medcodec.encode(np.ma.masked_array(img, mask=img > 4000), bits_stored=12, quality=90)
    plain = medcodec.encode(img, bits_stored=12, quality=90)
    assert medcodec.encode(np.ma.masked_array(img, mask=False), bits_stored=12, quality=90) == plain


def test_is_codestream_and_read_series_say_what_is_wrong() -> None:
    """F9, F11: raw TypeErrors for a str, None or a number."""
    from medcodec.dicom import read_series

    stream = medcodec.encode(np.zeros((8, 8), np.uint16), bits_stored=12, quality=90)
    for bad in ("abc", None, 5, np.frombuffer(stream, np.uint8)):  # not what decode reads: False, not raised
        assert medcodec.is_codestream(bad) is False  # type: ignore[arg-type]
    assert medcodec.is_codestream(stream) and medcodec.is_codestream(memoryview(stream))
    for bad in (None, 123):
        with pytest.raises(InvalidInputError, match="inputs must be"):
            read_series(bad)  # type: ignore[arg-type]


@pytest.mark.realdata
def test_encode_series_to_mdc_takes_table_none_and_checks_its_path(shared_data: Path, tmp_path: Path) -> None:
    """F11, F12: a None path was a raw TypeError; table=None (the default of medcodec.encode) was
    refused as a bad custom table."""
    from medcodec.dicom import encode_series_to_mdc, read_series

    (series,) = read_series(sorted((shared_data / CHEST).glob("*.dcm"))[:2]).series
    with pytest.raises(InvalidInputError, match="path must be a file path"):
        encode_series_to_mdc(series, None, quality=80)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="series must be"):
        encode_series_to_mdc("x", tmp_path / "a.mdc", quality=80)  # type: ignore[arg-type]
    encode_series_to_mdc(series, tmp_path / "a.mdc", quality=80, table=None)
    assert medcodec.decode((tmp_path / "a.mdc").read_bytes()).shape[0] == 2


def test_numcodec_config_is_json_with_numpy_targets() -> None:
    """F5: numpy scalar targets stayed numpy in get_config(): zarr could not write its metadata."""
    from medcodec.numcodec import MedcodecCodec

    for q in (np.float32(90), np.int64(90)):
        config = MedcodecCodec(bits_stored=12, quality=q).get_config()
        assert json.loads(json.dumps(config))["quality"] == 90


def test_service_errors_pickle() -> None:
    """F10: RangeNotSatisfiableError (keyword-only size) pickled but did not unpickle: a worker
    process raising it broke multiprocessing / Dask."""
    from medcodec.service.errors import RangeNotSatisfiableError

    back = pickle.loads(pickle.dumps(RangeNotSatisfiableError("past the end", size=10)))
    assert isinstance(back, RangeNotSatisfiableError) and back.size == 10 and str(back) == "past the end"
