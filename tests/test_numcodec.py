"""medcodec as a numcodecs codec: entry-point lookup, config round trip, zarr storage of a CT volume."""

from __future__ import annotations

from pathlib import Path

import numcodecs
import numpy as np
import pydicom
import pytest

from medcodec.errors import InvalidInputError
from medcodec.metrics import psnr
from medcodec.numcodec import MedcodecCodec

CHEST = "ct_chest_lungpetctdx_A0001_philips"


@pytest.fixture(scope="module")
def volume(shared_data: Path) -> np.ndarray:
    """Eight slices of a real 12-bit CT (uint16, values 0..4000)."""
    return np.stack([pydicom.dcmread(shared_data / CHEST / f"{i:04d}.dcm").pixel_array for i in range(20, 28)])


@pytest.mark.realdata
def test_get_codec_by_id_round_trips_a_ct_slice(volume: np.ndarray) -> None:
    codec = numcodecs.get_codec({"id": "medcodec", "bits_stored": 12, "quality": 90})  # through the entry point
    assert isinstance(codec, MedcodecCodec)
    ct = volume[3]
    data = codec.encode(ct)
    out = codec.decode(data)
    assert out.shape == ct.shape and out.dtype == ct.dtype
    assert psnr(ct, out, bits_stored=12) >= 55.0
    assert ct.nbytes / len(data) >= 3.0
    # into a caller's buffer
    buf = np.empty_like(ct)
    assert codec.decode(data, out=buf) is buf
    np.testing.assert_array_equal(buf, out)


def test_config_round_trips() -> None:
    for config in (
        {"id": "medcodec", "bits_stored": 12, "quality": 90},
        {"id": "medcodec", "bits_stored": 16, "signed": True, "ratio": 12.5, "format": "mdc"},
        {"id": "medcodec", "bits_stored": 12, "psnr": 50.0, "format": "jpeg"},
    ):
        codec = numcodecs.get_codec(dict(config))
        again = type(codec).from_config(codec.get_config())
        assert again == codec and again.get_config() == codec.get_config()
        assert {k: v for k, v in codec.get_config().items() if k != "format"} == {
            k: v for k, v in config.items() if k != "format"
        }


def test_bad_options_raise_invalid_input() -> None:
    for bad in ({"bits_stored": 0}, {"bits_stored": 12, "quality": 90, "ratio": 10}, {"bits_stored": 12, "format": "png"},
                {"bits_stored": 12, "quality": 101}):  # fmt: skip
        with pytest.raises(InvalidInputError):
            MedcodecCodec(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        MedcodecCodec(bits_stored=8).encode(np.zeros((4, 4), np.float32))


def test_signed_stack_and_jpeg_chunk() -> None:
    rng = np.random.default_rng(7)
    stack = (rng.normal(0, 300, (3, 40, 48)).cumsum(axis=2) / 10).astype(np.int16)
    codec = MedcodecCodec(bits_stored=16, quality=95)
    out = codec.decode(codec.encode(stack))
    assert out.shape == stack.shape and out.dtype == np.int16
    assert psnr(stack, out, bits_stored=16) > 70
    jpeg = MedcodecCodec(bits_stored=12, quality=90, format="jpeg")
    chunk = (np.arange(40 * 48, dtype=np.uint16).reshape(1, 40, 48) * 2) % 4096
    data = jpeg.encode(chunk)
    assert data[:2] == b"\xff\xd8"
    assert jpeg.decode(data, out=np.empty_like(chunk)).shape == (1, 40, 48)


@pytest.mark.realdata
def test_zarr_one_chunk_per_slice(volume: np.ndarray, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    codec = MedcodecCodec(bits_stored=12, quality=90)
    store = tmp_path / "ct.zarr"
    z = zarr.create_array(store, shape=volume.shape, chunks=(1, *volume.shape[1:]), dtype=volume.dtype,
                          zarr_format=2, compressors=codec)  # fmt: skip
    z[:] = volume
    chunk_files = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert len(chunk_files) == volume.shape[0]
    # every chunk is a .mdc stream readable without zarr
    from medcodec import decode, is_codestream

    raw = (store / chunk_files[0]).read_bytes()
    assert is_codestream(raw) and decode(raw).shape == (1, *volume.shape[1:])
    reopened = zarr.open_array(store, mode="r")  # the codec comes back from its config (entry point)
    assert isinstance(reopened.compressors[0], MedcodecCodec)
    one = reopened[5]
    assert one.shape == volume.shape[1:] and psnr(volume[5], one, bits_stored=12) >= 55.0
    assert volume.nbytes / reopened.nbytes_stored() >= 3.0
