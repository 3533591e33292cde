"""Every peer adapter round-trips real frames: shapes and dtypes, lossless exactly, lossy bounded.

Frames are read with pydicom directly (not through medcodec) and cropped to keep the test fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.errors import InvalidInputError
from medcodec.evaluate import metrics as M
from medcodec.evaluate.peers import (
    ADAPTERS,
    DEFAULT_CODECS,
    OPT_IN,
    PEER_NAMES,
    BaseAdapter,
    Jpeg12Peer,
    Jpeg2000Peer,
    JpeglsPeer,
    MedcodecAdapter,
    ZlibPeer,
    from_unsigned,
    get_adapter,
    to_unsigned,
)
from medcodec.spec import PixelSpec, storage_dtype

pytestmark = pytest.mark.realdata

CHEST = "ct_chest_lungpetctdx_A0001_philips"


def _read(path: Path) -> tuple[np.ndarray, PixelSpec]:
    ds = pydicom.dcmread(path)
    spec = PixelSpec(
        bits_stored=int(ds.BitsStored),
        signed=bool(ds.PixelRepresentation),
        rescale_slope=float(getattr(ds, "RescaleSlope", 1.0)),
        rescale_intercept=float(getattr(ds, "RescaleIntercept", 0.0)),
    )
    return np.asarray(ds.pixel_array), spec


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> dict[str, tuple[np.ndarray, PixelSpec]]:
    ct, ct_spec = _read(sorted((shared_data / CHEST).glob("*.dcm"))[32])
    ct1, ct1_spec = _read(shared_data / "singles" / "ct_CT1_small_128x128_signed16.dcm")
    mr, mr_spec = _read(sorted((shared_data / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))[50])
    us, us_spec = _read(shared_data / "singles" / "us_768x1024_8bit_jpeg_lossless.dcm")
    return {
        # 12-bit unsigned CT in uint16, a crop through the body with odd size
        "ct.u2.b12": (np.ascontiguousarray(ct[180:261, 120:221]), ct_spec),
        # the same crop as 12-bit signed (shift by -2048): exercises the unsigned mapping
        "ct.i2.b12": (np.ascontiguousarray(ct[180:261, 120:221].astype(np.int16) - 2048), ct_spec.replace(signed=True)),
        # 16-bit signed CT (NEMA CT1, values down to -2000)
        "ct.i2.b16": (np.ascontiguousarray(ct1[:96, :96]), ct1_spec),
        # 16-bit signed MR
        "mr.i2.b16": (np.ascontiguousarray(mr[64:160, 64:160]), mr_spec),
        # 8-bit grey ultrasound
        "us.u1.b8": (np.ascontiguousarray(us[300:380, 400:500]), us_spec),
    }


def _mid(adapter: BaseAdapter) -> float:
    k = adapter.knob
    assert k is not None
    if k.name == "near":
        return 3.0
    return float(np.sqrt(k.low * k.high)) if k.log_scale else round((k.low + k.high) / 2)


@pytest.mark.parametrize("case", ["ct.u2.b12", "ct.i2.b12", "ct.i2.b16", "mr.i2.b16", "us.u1.b8"])
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_round_trip(name: str, case: str, frames: dict[str, Any]) -> None:
    frame, spec = frames[case]
    adapter = get_adapter(name)
    if not adapter.is_available():
        pytest.skip(adapter.why_unavailable or name)
    why = adapter.supports(spec)
    if why is not None:
        assert name in why and str(spec.bits_stored) in why
        return
    dtype = storage_dtype(spec.bits_stored, spec.signed)
    raw = M.raw_size(frame.size, spec.bits_stored)
    if adapter.lossless:
        data = adapter.encode(frame, spec, target=None)
        out = adapter.decode(data, spec, shape=frame.shape)
        assert out.shape == frame.shape and out.dtype == dtype
        np.testing.assert_array_equal(out, frame)
    if adapter.knob is not None:
        data = adapter.encode(frame, spec, target=_mid(adapter))
        out = adapter.decode(data, spec, shape=frame.shape)
        assert out.shape == frame.shape and out.dtype == dtype
        assert spec.min_value <= int(out.min()) and int(out.max()) <= spec.max_value
        assert len(data) < raw
        # lossy but recognisably the same image
        assert M.psnr(frame, out, bits_stored=spec.bits_stored) > 25.0


@pytest.mark.parametrize("near", [1, 4, 10])
def test_jpegls_near_bounds_the_error(near: int, frames: dict[str, Any]) -> None:
    frame, spec = frames["ct.i2.b12"]
    peer = JpeglsPeer()
    out = peer.decode(peer.encode(frame, spec, target=near), spec)
    assert M.max_abs_error(frame, out) <= near


def test_jpeg2000_knob_is_psnr_with_our_peak(shared_data: Path) -> None:
    frame, spec = _read(sorted((shared_data / CHEST).glob("*.dcm"))[32])
    peer = Jpeg2000Peer()
    for target in (40.0, 48.0):
        out = peer.decode(peer.encode(frame, spec, target=target), spec)
        # OpenJPEG fixed quality stops at the first truncation point at or above the target
        assert M.psnr(frame, out, bits_stored=12) == pytest.approx(target, abs=1.0)


def test_jpeg12_declares_its_bit_depth_limit(frames: dict[str, Any]) -> None:
    peer = Jpeg12Peer()
    msg = peer.supports(PixelSpec(bits_stored=16, signed=True))
    assert msg is not None and "jpeg12 skipped" in msg and "bits_stored=16" in msg
    assert peer.supports(PixelSpec(bits_stored=12)) is None


def test_zlib_decode_needs_the_shape(frames: dict[str, Any]) -> None:
    frame, spec = frames["ct.u2.b12"]
    peer = ZlibPeer()
    with pytest.raises(InvalidInputError, match="shape"):
        peer.decode(peer.encode(frame, spec), spec)


# --------------------------------------------------------------------------- sample mapping


def test_unsigned_mapping_round_trips_the_extremes() -> None:
    for bits in (8, 12, 16):
        spec = PixelSpec(bits_stored=bits, signed=True)
        a = np.array([[spec.min_value, -1, 0, spec.max_value]], dtype=storage_dtype(bits, True))
        u, offset = to_unsigned(a, spec)
        assert offset == 1 << (bits - 1)
        assert u.dtype == storage_dtype(bits, False)
        assert u.tolist() == [[0, offset - 1, offset, (1 << bits) - 1]]
        np.testing.assert_array_equal(from_unsigned(u, spec, offset), a)
    spec = PixelSpec(bits_stored=12)
    a = np.array([[0, 4095]], dtype=np.uint16)
    assert to_unsigned(a, spec)[1] == 0


def test_unsigned_mapping_checks_range_and_clips_decoder_overshoot() -> None:
    with pytest.raises(InvalidInputError, match="outside"):
        to_unsigned(np.array([[4096]], dtype=np.uint16), PixelSpec(bits_stored=12))
    spec = PixelSpec(bits_stored=12, signed=True)
    decoded = np.array([[0, 4100]], dtype=np.uint16)  # a wide decoder overshooting 4095
    assert from_unsigned(decoded, spec, 2048).tolist() == [[-2048, 2047]]


# --------------------------------------------------------------------------- availability


class _Missing(ZlibPeer):
    name = "fake"

    def _probe(self) -> str | None:
        return "libfake is not installed (pip install fake)"


def test_unavailable_peer_says_why() -> None:
    peer = _Missing()
    assert not peer.is_available()
    assert peer.why_unavailable == "fake skipped: libfake is not installed (pip install fake)"


def test_unknown_codec_name() -> None:
    with pytest.raises(InvalidInputError, match="unknown codec"):
        get_adapter("jpeg3000")
    assert set(PEER_NAMES) == {"jpeg2000", "htj2k", "jpegls", "jpegxl", "jpeg12", "avif", "zlib"}
    assert {"medcodec", "medcodec-jpeg"} <= set(ADAPTERS)


def test_avif_is_opt_in_for_default_runs() -> None:
    """AVIF stays available by name, but default evaluate / bench runs leave it out (slow)."""
    assert OPT_IN == ("avif",) and "avif" not in DEFAULT_CODECS
    assert list(DEFAULT_CODECS) == [n for n in ADAPTERS if n != "avif"]  # report order kept
    assert get_adapter("avif").name == "avif"
    from click.testing import CliRunner

    from medcodec.cli.evaluate import evaluate

    help_text = CliRunner().invoke(evaluate, ["--help"]).output
    assert "all but avif" in " ".join(help_text.split())


# --------------------------------------------------------------------------- medcodec


def test_medcodec_adapter_calls_the_public_api(monkeypatch: pytest.MonkeyPatch, frames: dict[str, Any]) -> None:
    frame, spec = frames["ct.u2.b12"]
    calls: list[dict[str, Any]] = []

    def fake_encode(pixels: np.ndarray, /, **kwargs: Any) -> bytes:
        calls.append(kwargs)
        return pixels.tobytes()

    monkeypatch.setattr(medcodec, "encode", fake_encode, raising=False)
    monkeypatch.setattr(medcodec, "decode", lambda data, /: np.frombuffer(data, np.uint16).reshape(frame.shape),
                        raising=False)  # fmt: skip
    adapter = MedcodecAdapter()
    out = adapter.decode(adapter.encode(frame, spec, target=63.4), spec)
    np.testing.assert_array_equal(out, frame)
    assert calls[-1] == {"bits_stored": 12, "signed": False, "quality": 63, "format": "mdc"}


def test_medcodec_adapter_round_trip(frames: dict[str, Any]) -> None:
    adapter = MedcodecAdapter()
    if not adapter.is_available():
        pytest.skip(adapter.why_unavailable or "medcodec")
    frame, spec = frames["ct.i2.b12"]
    small = adapter.encode(frame, spec, target=30)
    large = adapter.encode(frame, spec, target=90)
    assert len(small) < len(large)
    out = adapter.decode(large, spec)
    assert out.shape == frame.shape
    assert M.psnr(frame, out, bits_stored=12) > 40


def test_medcodec_arith_adapter_writes_format_2(frames: dict[str, Any]) -> None:
    import medcodec

    frame, spec = frames["ct.u2.b12"]
    adapter = get_adapter("medcodec-arith")
    data = adapter.encode(frame, spec, target=80)
    from medcodec.codec import container, mdc2

    def intra_frames(stream: bytes) -> list[bool]:
        header, index = container.parse_container(stream)
        return [mdc2.read_dct_frame(stream, header, e).intra for e in index]

    # "arith": the multi-symbol coder, no intra frames, in the compact layout of 2.4 (the default layout)
    assert medcodec.read_header(data).version == (2, 4) and not any(intra_frames(data))
    out = adapter.decode(data, spec, shape=frame.shape)
    assert out.shape == frame.shape and M.psnr(frame, out, bits_stored=spec.bits_stored) > 40
    default = get_adapter("medcodec").encode(frame, spec, target=80)
    assert medcodec.read_header(default).version == (2, 12) and all(intra_frames(default))  # intra
    assert len(data) < len(medcodec.encode(frame, bits_stored=spec.bits_stored, quality=80, entropy="huffman"))


def test_medcodec_jpeg_adapter_uses_the_modality_table() -> None:
    """The evaluation codes JPEG as the DICOM writer does: the table trained for the image's modality."""
    import medcodec
    from medcodec.codec import levelshift, quantize
    from medcodec.evaluate.peers import MedcodecJpegAdapter
    from medcodec.spec import PixelSpec

    frame = (np.random.default_rng(5).integers(0, 4096, (32, 48))).astype(np.uint16)
    rbits = levelshift.content_range_bits(frame, int(frame.min()), int(frame.max()), 12)
    for modality, table in (("MR", "mr"), ("CT", "ct")):
        spec = PixelSpec(12, False, extra={"modality": modality})
        data = MedcodecJpegAdapter().encode(frame, spec, target=75)
        q = np.asarray(medcodec.read_header(data).qtables[0]).ravel()
        np.testing.assert_array_equal(q, quantize.quant_table(75, rbits, table=table, max_step=65535).ravel())
