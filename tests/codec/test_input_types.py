"""Issue 10 item 13: byte order and numpy scalars at encode's input validation, on a real CT slice.

A big-endian array (as read from an Explicit VR Big Endian file) encodes exactly like the same
values in native order; numpy integer and float scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec


@pytest.fixture(scope="module")
def slice_() -> np.ndarray:
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"))  # ships with pydicom: signed 16-bit, big endian
    return ds.pixel_array


@pytest.mark.parametrize("fmt", ["mdc", "jpeg"])
def test_big_endian_encodes_like_native(fmt: str, slice_: np.ndarray) -> None:
    native = slice_.astype(np.int16)
    if fmt == "jpeg":  # standard JPEG takes unsigned 12-bit samples
        native = (native - native.min()).astype(np.uint16)
        assert native.max() < 4096
    bits = 12 if fmt == "jpeg" else 16
    big = native.astype(native.dtype.newbyteorder(">"))
    assert not big.dtype.isnative and np.array_equal(big, native)
    data = medcodec.encode(big, bits_stored=bits, quality=90, format=fmt)
    assert data == medcodec.encode(native, bits_stored=bits, quality=90, format=fmt)
    assert medcodec.decode(data).shape == native.shape


@pytest.mark.realdata
def test_big_endian_real_ct_series_through_encode_to(shared_data: Path) -> None:
    import io

    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[30:33]
    native = np.stack([pydicom.dcmread(f).pixel_array for f in files]).astype(np.uint16)
    big = native.astype(">u2")
    out_big, out_native = io.BytesIO(), io.BytesIO()
    medcodec.codec.encode_to(out_big, list(big), n_frames=3, bits_stored=12, signed=False, sample=big, quality=80)
    medcodec.codec.encode_to(out_native, list(native), n_frames=3, bits_stored=12, signed=False, sample=native, quality=80)
    assert out_big.getvalue() == out_native.getvalue()
    assert medcodec.encode(big, bits_stored=12, ratio=10) == medcodec.encode(native, bits_stored=12, ratio=10)


@pytest.mark.parametrize(
    "kw", [{"quality": np.int64(90)}, {"quality": np.float32(90)}, {"quality": np.uint8(90)}, {"ratio": np.int32(8)},
           {"psnr": np.float64(45)}, {"psnr": np.int16(45)}],
)  # fmt: skip
def test_numpy_scalars_are_numbers(kw: dict[str, object], slice_: np.ndarray) -> None:
    plain = {k: float(v) for k, v in kw.items()}  # type: ignore[arg-type]
    img = slice_.astype(np.int16)
    assert medcodec.encode(img, bits_stored=16, **kw) == medcodec.encode(img, bits_stored=16, **plain)


@pytest.mark.parametrize("kw", [{"quality": True}, {"quality": np.int64(101)}, {"ratio": np.float64("inf")},
                                {"ratio": np.float64("nan")}, {"psnr": "45"}, {"quality": np.bool_(True)}])  # fmt: skip
def test_bad_numbers_are_invalid_input(kw: dict[str, object], slice_: np.ndarray) -> None:
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.encode(slice_.astype(np.int16), bits_stored=16, **kw)
