"""The .mdc v2 predictive mode: guaranteed max error, bit-exact lossless, twins, damaged streams."""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import medcodec
from medcodec.codec import container, lossless, mdc2
from medcodec.codec.arith import Contexts, RangeDecoder, RangeEncoder


def _dtype(bits: int, signed: bool) -> type:
    return (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed else np.uint16)


def _image(shape: tuple[int, ...], bits: int, signed: bool, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = lo + (1 << bits) - 1
    grid = np.indices(shape[-2:]).sum(0)
    arr = lo + (hi - lo) * (0.5 + 0.35 * np.sin(grid / 6.0)) + rng.normal(0, noise * (hi - lo), shape)
    arr.reshape(-1, *shape[-2:])[..., :2, :] = lo  # CT-like padding rows at the minimum
    return np.clip(np.rint(arr), lo, hi).astype(_dtype(bits, signed))


# ---------------------------------------------------------------------------------------- coder


def test_range_coder_roundtrip_skewed_and_uniform_bits() -> None:
    rng = np.random.default_rng(3)
    n = 20000
    ctx = rng.integers(0, 8, n)
    bits = (rng.random(n) < np.where(ctx < 4, 0.02, 0.5)).astype(int)  # skewed and fair contexts
    enc = RangeEncoder(Contexts(8))
    for c, b in zip(ctx, bits):
        enc.encode(int(c), int(b))
    data = enc.finish()
    dec = RangeDecoder(Contexts(8), data)
    assert [dec.decode(int(c)) for c in ctx] == list(bits)
    assert dec.overrun == 0
    # the adaptive model must beat 1 bit per decision on these statistics (entropy ~0.57 bit)
    assert len(data) * 8 < 0.65 * n


# ---------------------------------------------------------------------------------------- twins


@pytest.mark.parametrize("modular", [False, True])
@pytest.mark.parametrize("runs", [False, True])
@pytest.mark.parametrize("predictor", ["med", "blend"])
@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("bits,signed", [(8, False), (12, False), (16, True)])
def test_kernels_match_plain_python_twin(bits: int, signed: bool, k: int, predictor: str, runs: bool,
                                         modular: bool) -> None:  # fmt: skip
    img = _image((13, 17), bits, signed, noise=0.01, seed=bits + k).astype(np.int32)
    if runs or modular:  # flat stretches (runs to the row's end, runs broken mid-row) and burned-in "text"
        img[3:7, 2:15] = img[3, 2]
        img[5, 6:9] = img.max()
        img[9:, :] = img.min()
        img[10:12, 3:5] = img.max()  # jumps across the whole range: modular levels wrap
    params = lossless.FrameParams.for_frame(img, k, lossless.PREDICTORS[predictor], runs=runs, modular=modular)
    fast = lossless.encode_frame(img, params)
    assert fast == lossless.encode_frame_reference(img, params)
    np.testing.assert_array_equal(
        lossless.decode_frame(fast, params, img.shape), lossless.decode_frame_reference(fast, params, img.shape)
    )


# ---------------------------------------------------------------------------------------- run mode


def _text_on_black(seed: int = 5) -> np.ndarray:
    """8-bit, like an ultrasound frame: speckle in a sector, black around it, burned-in labels."""
    rng = np.random.default_rng(seed)
    img = np.zeros((96, 128), np.uint8)
    yy, xx = np.indices(img.shape)
    sector = (np.hypot(yy + 10, xx - 64) < 100) & (np.abs(xx - 64) < (yy + 10) * 0.8)
    img[sector] = np.clip(rng.gamma(2.0, 30.0, sector.sum()), 1, 255).astype(np.uint8)
    for r in (4, 12, 84):  # labels: strokes of a few pixels, repeated glyphs
        for c in range(6, 40, 7):
            img[r : r + 5, c] = 230
            img[r, c : c + 4] = 230
            img[r + 4, c : c + 4] = 230
    return img


@pytest.mark.parametrize("k", [0, 1, 3])
def test_run_mode_is_chosen_per_frame_and_never_loses(k: int) -> None:
    rng = np.random.default_rng(k)
    smooth = _image((64, 80), 12, False, noise=0.003, seed=11).astype(np.int32)  # near-lossless: runs rarely pay
    for img in (_text_on_black().astype(np.int32), smooth, rng.integers(0, 4096, (40, 40)).astype(np.int32)):
        sizes = {}
        for runs in (False, True):
            params = lossless.FrameParams.for_frame(img, k, runs=runs, modular=True)
            sizes[runs] = len(lossless.encode_frame(img, params))
        params, data = lossless.encode_frame_smallest(img, k)
        assert len(data) == min(sizes.values()) and params.runs == (sizes[True] < sizes[False])
        out = lossless.decode_frame(data, params, img.shape)
        assert int(np.abs(out - img).max()) <= k


def test_run_mode_on_real_ultrasound_beats_charls() -> None:
    """pydicom-data's Philips ultrasound (768x1024, 8-bit, 72 % black, burned-in labels): without
    run mode it was 4 % larger than CharLS losslessly; run mode is what such images need."""
    import pydicom
    from pydicom.data import get_testdata_file

    from medcodec import external

    us = pydicom.dcmread(get_testdata_file("JPGLosslessP14SV1_1s_1f_8b.dcm")).pixel_array.astype(np.int32)
    without = len(lossless.encode_frame(us, lossless.FrameParams.for_frame(us, 0, runs=False)))
    params, data = lossless.encode_frame_smallest(us, 0)
    assert params.runs and len(data) < 0.95 * without
    assert len(data) < len(external.jpegls_encode(us.astype(np.uint8)))  # issue 12: no larger than CharLS
    np.testing.assert_array_equal(lossless.decode_frame(data, params, us.shape), us)


def test_run_mode_flag_is_format_27_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdc2, "PREDICTIVE_VERSION", container.VERSION_27)
    img = _text_on_black()
    data = medcodec.encode(img, bits_stored=8, max_error=0)
    header, index = container.parse_container(data)
    assert header.version == container.VERSION_27
    assert mdc2.parse_predictive_frame(data, header, index[0])[1].runs  # this frame took run mode
    np.testing.assert_array_equal(medcodec.decode(data), img)
    off = index[0][0]

    def with_flags(flags: int, version: tuple[int, int] | None = None) -> bytes:
        return _patch(data, off, off + 8 + 5, bytes([flags]), version)  # FRAM: index u32, predictor u8, flags u8

    with pytest.raises(medcodec.CorruptStreamError, match="flags"):
        medcodec.decode(with_flags(3))  # an undefined flag
    with pytest.raises(medcodec.CorruptStreamError, match="flags"):
        medcodec.decode(with_flags(1, (2, 6)))  # run mode in a stream that says 2.6
    with pytest.raises(medcodec.CorruptStreamError, match="flags"):
        medcodec.decode(with_flags(3))  # format 2.8's modular flag in a 2.7 stream
    with pytest.raises(medcodec.UnsupportedFeatureError, match="newer"):
        medcodec.decode(with_flags(1, (2, 13)))  # a future minor version: refused, not misread


def test_format_28_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """2.8: every frame has modular levels, a run-mode frame also run contexts from above; flag 4
    without run mode and undefined bits (8 is 2.9's) are refused."""
    monkeypatch.setattr(mdc2, "PREDICTIVE_VERSION", container.VERSION_28)
    img = _text_on_black()
    data = medcodec.encode(img, bits_stored=8, max_error=0)
    header, index = container.parse_container(data)
    assert header.version == container.VERSION_28
    params = mdc2.parse_predictive_frame(data, header, index[0])[1]
    assert params.runs and params.modular and params.run_above
    np.testing.assert_array_equal(medcodec.decode(data), img)
    off = index[0][0]
    assert data[off + 8 + 5] == 7

    def with_flags(flags: int) -> bytes:
        return _patch(data, off, off + 8 + 5, bytes([flags]))

    for bad in (4, 6, 8, 15):  # run contexts without run mode; bit 3 is not defined
        with pytest.raises(medcodec.CorruptStreamError, match="flags"):
            medcodec.decode(with_flags(bad))
    for other in (0, 1, 2, 3, 5):  # defined combinations decode (to something else: a damaged frame)
        try:
            medcodec.decode(with_flags(other))
        except medcodec.CodecError as exc:  # what a misread frame may raise, never anything else
            assert not isinstance(exc, medcodec.ChecksumMismatchError)


def test_modular_levels_and_run_contexts_pay_on_labels() -> None:
    """Format 2.8's tools on an ultrasound-like frame (labels on black): smaller than 2.7's coding,
    identical samples; on smooth CT near-lossless they cost nothing measurable."""
    img = _text_on_black().astype(np.int32)
    old = lossless.encode_frame_smallest(img, 0, modular=False)[1]
    params, new = lossless.encode_frame_smallest(img, 0)
    assert params.modular and len(new) < 0.985 * len(old)
    np.testing.assert_array_equal(lossless.decode_frame(new, params, img.shape), img)
    smooth = _image((64, 80), 12, False, noise=0.003, seed=11).astype(np.int32)
    for k in (0, 3):
        old = lossless.encode_frame_smallest(smooth, k, modular=False)[1]
        params, new = lossless.encode_frame_smallest(smooth, k)
        assert len(new) <= 1.005 * len(old)
        assert int(np.abs(lossless.decode_frame(new, params, smooth.shape) - smooth).max()) <= k


def test_format_28_on_real_ultrasound_and_segmentation_beats_charls() -> None:
    """pydicom's Philips OB ultrasound (palette indices, 600x800, 8-bit: black around a sector of
    speckle, white label bands, burned-in text) was 3.5 % larger than CharLS losslessly under 2.7's
    coding, and its 1-bit liver segmentation 6 %; format 2.8's modular levels and run contexts from
    the row above make both smaller (issue 12: lossless no larger than CharLS), whole streams
    against whole JPEG-LS streams."""
    import pydicom
    from pydicom.data import get_testdata_file

    from medcodec import external

    for name, bits in (("OBXXXX1A.dcm", 8), ("liver.dcm", 1)):
        arr = pydicom.dcmread(get_testdata_file(name)).pixel_array
        frames = arr if arr.ndim == 3 else arr[None]
        data = medcodec.encode(frames, bits_stored=bits, max_error=0)
        np.testing.assert_array_equal(medcodec.decode(data), frames)
        charls = sum(len(external.jpegls_encode(np.ascontiguousarray(f, dtype=np.uint8))) for f in frames)
        assert len(data) < charls, (name, len(data), charls)


def test_older_predictive_tools_write_their_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdc2, "PREDICTIVE_VERSION", container.VERSION_2)
    data = medcodec.encode(_text_on_black(), bits_stored=8, max_error=0)
    header, index = container.parse_container(data)
    assert header.version == (2, 0) and not mdc2.parse_predictive_frame(data, header, index[0])[1].runs


# ---------------------------------------------------------------------------------------- bound


@pytest.mark.parametrize("bits,signed", [(8, False), (8, True), (10, False), (12, False), (12, True), (16, False), (16, True)])
@pytest.mark.parametrize("k", [0, 1, 3, 10])
def test_max_error_holds_signed_and_unsigned(bits: int, signed: bool, k: int) -> None:
    img = _image((2, 37, 45), bits, signed, noise=0.02, seed=bits * 7 + k)
    data = medcodec.encode(img, bits_stored=bits, signed=signed, max_error=k)
    out = medcodec.decode(data)
    assert out.dtype == img.dtype and out.shape == img.shape
    err = int(np.abs(out.astype(np.int64) - img).max())
    assert err <= k
    if k == 0:
        np.testing.assert_array_equal(out, img)
    header = medcodec.read_header(data)
    assert header.version == container.VERSION_210 and header.compact  # the compact layout (§20) by default
    assert header.max_error == k and header.transform == container.TRANSFORM_PREDICTIVE


def test_bound_is_used_not_just_respected() -> None:
    # near-lossless must actually spend the allowance: smaller streams, errors reaching k
    img = _image((64, 64), 12, False, noise=0.01)
    sizes = [len(medcodec.encode(img, bits_stored=12, max_error=k)) for k in (0, 1, 4, 16)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.6 * sizes[0]
    out = medcodec.decode(medcodec.encode(img, bits_stored=12, max_error=4))
    assert int(np.abs(out.astype(int) - img).max()) == 4


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((1, 1), np.uint16),
        np.full((5, 1), 4095, np.uint16),
        np.arange(9, dtype=np.uint16).reshape(1, 9),
        np.tile(np.array([[0, 65535], [65535, 0]], np.uint16), (8, 8)),  # largest residuals 16-bit data has
        np.tile(np.array([[-32768, 32767], [32767, -32768]], np.int16), (5, 9)),
        np.full((64, 64), -1024, np.int16),
    ],
    ids=["1x1", "column", "row", "u16-checker", "i16-checker", "constant"],
)
def test_edge_shapes_and_extreme_values_lossless(img: np.ndarray) -> None:
    data = medcodec.encode(img, bits_stored=16, max_error=0)
    np.testing.assert_array_equal(medcodec.decode(data), img)


def test_constant_frame_is_tiny_yet_within_the_bomb_limit() -> None:
    img = np.full((512, 512), 7, np.uint16)
    data = medcodec.encode(img, bits_stored=12, max_error=0)
    header, index = container.parse_container(data)
    _, _, start, end = mdc2.parse_predictive_frame(data, header, index[0])
    assert end - start < 512  # ~0.006 bit per sample
    assert 512 * 512 <= mdc2.MIN_PIXELS_PER_BYTE * (end - start)


def test_random_access_and_2d_shape() -> None:
    stack = _image((4, 20, 24), 12, False, noise=0.02)
    data = medcodec.encode(stack, bits_stored=12, max_error=1, jobs=2)
    for i in (3, 0, 2):
        assert np.abs(medcodec.decode(data, frames=i).astype(int) - stack[i]).max() <= 1
    one = medcodec.encode(stack[1], bits_stored=12, max_error=0)
    assert medcodec.decode(one).shape == (20, 24)


def test_encode_to_streams_with_max_error(tmp_path) -> None:
    stack = _image((3, 16, 16), 10, False, noise=0.02)
    path = tmp_path / "s.mdc"
    with open(path, "wb") as fh:
        summary = medcodec.codec.encode_to(fh, iter(stack), n_frames=3, bits_stored=10, signed=False, max_error=2)
    data = path.read_bytes()
    assert summary.nbytes == len(data) and summary.frames == 3
    assert np.abs(medcodec.decode(data).astype(int) - stack).max() <= 2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_error=-1),
        dict(max_error=1.5),
        dict(max_error=True),
        dict(max_error=lossless.MAX_ERROR_LIMIT + 1),
        dict(max_error=0, quality=90),
        dict(max_error=0, effort="best"),
        dict(max_error=0, format="jpeg"),
    ],
)
def test_bad_max_error_options(kwargs: dict) -> None:
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.encode(np.zeros((8, 8), np.uint16), bits_stored=12, **kwargs)


def test_values_outside_bits_stored_rejected() -> None:
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.encode(np.full((8, 8), 5000, np.uint16), bits_stored=12, max_error=0)


# ---------------------------------------------------------------------------------------- damage


@pytest.fixture(scope="module")
def v2_stream() -> bytes:
    """A predictive stream in the long layout (§10.1's fixed FRAM fields, which these tests rewrite)."""
    data = medcodec.encode(_image((3, 48, 40), 12, False, noise=0.02), bits_stored=12, max_error=1, compact=False)
    medcodec.decode(data)
    return data


def _decode_raises_codec_error(data: bytes) -> BaseException | None:
    t = time.perf_counter()
    try:
        medcodec.decode(data)
        return None
    except medcodec.CodecError as exc:
        return exc
    finally:
        assert time.perf_counter() - t < 5


def test_v2_truncation_sweep(v2_stream: bytes) -> None:
    for n in list(range(0, 300)) + [len(v2_stream) * j // 40 for j in range(40)]:
        assert _decode_raises_codec_error(v2_stream[:n]) is not None, n


def _patch(data: bytes, frame_off: int, at: int, new: bytes, version: tuple[int, int] | None = None) -> bytes:
    """``data`` with ``new`` written at ``at``, the CRC of the FRAM at ``frame_off`` made right again
    and, with ``version``, HEAD's version rewritten (its CRC too)."""
    out = bytearray(data)
    out[at : at + len(new)] = new
    _refresh_crc(out, frame_off)
    if version is not None:
        struct.pack_into("<HH", out, 8 + 8, *version)
        _refresh_crc(out, 8)
    return bytes(out)


def _refresh_crc(data: bytearray, seg_offset: int) -> None:
    (length,) = struct.unpack_from("<I", data, seg_offset)
    crc = zlib.crc32(bytes(data[seg_offset + 4 : seg_offset + 8 + length]))
    struct.pack_into("<I", data, seg_offset + 8 + length, crc)


def test_v2_coded_bytes_garbage_gives_codec_error_or_in_range_pixels(v2_stream: bytes) -> None:
    # damage inside FRAM payloads with the CRC made valid again: the range decoder must stay
    # bounded and in range (arbitrary bytes are a valid code for *some* image) or report an error
    _, index = container.parse_container(v2_stream)
    rng = np.random.default_rng(5)
    for trial in range(150):
        data = bytearray(v2_stream)
        off, size = index[trial % len(index)]
        for _ in range(1 + trial % 4):
            pos = off + 8 + int(rng.integers(0, size - 12))
            data[pos] = int(rng.integers(0, 256))
        _refresh_crc(data, off)
        exc = None
        t = time.perf_counter()
        try:
            out = medcodec.decode(bytes(data))
        except medcodec.CodecError as e:
            exc = e
        assert time.perf_counter() - t < 5
        if exc is None:
            assert out.dtype == np.uint16 and int(out.max()) <= 4095


def test_v2_header_fields_checked(v2_stream: bytes) -> None:
    _, index = container.parse_container(v2_stream)
    off = index[0][0]
    payload_at = off + 8

    def tampered(field_offset: int, fmt: str, value: int) -> bytes:
        data = bytearray(v2_stream)
        struct.pack_into(fmt, data, payload_at + field_offset, value)
        _refresh_crc(data, off)
        return bytes(data)

    with pytest.raises(medcodec.CorruptStreamError, match="value range"):
        medcodec.decode(tampered(12, "<i", 5000))  # vmax beyond 12 bits
    with pytest.raises(medcodec.CorruptStreamError, match="predictor"):
        medcodec.decode(tampered(4, "<B", 9))
    with pytest.raises(medcodec.CorruptStreamError, match="thresholds"):
        medcodec.decode(tampered(16, "<H", 0))
    with pytest.raises(medcodec.CorruptStreamError, match="coded length"):
        medcodec.decode(tampered(22, "<I", 1))
    with pytest.raises(medcodec.CorruptStreamError, match="points at frame"):
        medcodec.decode(tampered(0, "<I", 2))


def test_v2_head_transform_and_version_checked(v2_stream: bytes) -> None:
    def head(field_offset: int, fmt: str, value: int) -> bytes:
        data = bytearray(v2_stream)
        struct.pack_into(fmt, data, 8 + 8 + field_offset, value)
        _refresh_crc(data, 8)
        return bytes(data)

    with pytest.raises(medcodec.CorruptStreamError, match="QTAB"):
        medcodec.decode(head(19, "<B", 0))  # relabelled as range-coded DCT: no quantization tables
    with pytest.raises(medcodec.UnsupportedFeatureError):
        medcodec.decode(head(20, "<B", 0))  # Huffman coding does not exist in version 2
    with pytest.raises(medcodec.UnsupportedFeatureError):
        medcodec.decode(head(0, "<H", 1))  # predictive coding in a 1.x stream
    with pytest.raises(medcodec.UnsupportedFeatureError):
        medcodec.decode(head(0, "<H", 3))


def test_v2_bomb_limit() -> None:
    # a 4-byte coded frame may not claim 512x512 samples
    data = medcodec.encode(np.zeros((512, 512), np.uint16), bits_stored=12, max_error=0, compact=False)
    header, index = container.parse_container(data)
    off, size = index[0]
    payload = bytearray(data[off + 8 : off + size - 4])
    head = mdc2.FRAM2_HEAD.unpack_from(payload)
    small = mdc2.FRAM2_HEAD.pack(*head[:-1], 4) + b"\0\0\0\0"
    seg = container._segment(b"FRAM", small)
    fidx_at = [s for s in header.segments if s.type == "FIDX"][0].offset
    rebuilt = bytearray(data[:off]) + seg + container._segment(b"MEND", b"")
    struct.pack_into("<I", rebuilt, fidx_at + 8 + 4 + 8, len(seg))
    _refresh_crc(rebuilt, fidx_at)
    with pytest.raises(medcodec.CorruptStreamError, match="shorter than the"):
        medcodec.decode(bytes(rebuilt))  # the FIDX entry is refused before any frame is read
    with pytest.raises(medcodec.CorruptStreamError, match="samples per byte"):
        mdc2.parse_predictive_frame(bytes(rebuilt), header, (off, len(seg)))  # and the FRAM itself


def test_padding_with_v2_coding_is_refused_or_exact() -> None:
    """Predictive and 2.0 DCT frames carry no padding mask: encode(padding=...) refuses the modes
    that could move a padding voxel, and max_error=0 keeps it exactly (bit-exact); the default
    DCT coder (format 2.3) restores it."""
    img = np.full((32, 40), 100, np.int16)
    img[:, :8] = -2000  # padding
    img[8:20, 10:30] = np.arange(20, dtype=np.int16) * 7
    for kwargs in ({"max_error": 2}, {"quality": 80, "entropy": "arith-binary"}):
        with pytest.raises(medcodec.UnsupportedFeatureError, match="padding"):
            medcodec.encode(img, bits_stored=16, padding=(-2000, -2000), **kwargs)
    for kwargs in ({"quality": 20}, {"quality": 20, "intra": True}):
        coded = medcodec.encode(img, bits_stored=16, padding=(-2000, -2000), **kwargs)
        assert medcodec.read_header(coded).version == (2, 12)  # 2.6 intra frames with 2.11's level contexts; padding in the compact HEAD
        long = medcodec.encode(img, bits_stored=16, padding=(-2000, -2000), compact=False, **kwargs)
        assert medcodec.read_header(long).version == (2, 12) and not medcodec.read_header(long).compact
        np.testing.assert_array_equal(medcodec.decode(long), medcodec.decode(coded))
        out = medcodec.decode(coded)
        assert (out[:, :8] == -2000).all() and not (out[:, 8:] == -2000).any()
    data = medcodec.encode(img, bits_stored=16, padding=(-2000, -2000), max_error=0)
    np.testing.assert_array_equal(medcodec.decode(data), img)
    assert "padding" not in medcodec.read_header(data).meta


# ---------------------------------------------------------------------------------------- property


@st.composite
def _frames_with_extremes(draw: st.DrawFn) -> tuple[np.ndarray, int, bool, int]:
    """Small frames of any depth whose samples jump between the ends of the range (labels on
    black: modular levels wrap), flat stretches (runs) and noise, with a bound k."""
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 16))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    palette = draw(st.lists(st.sampled_from([lo, hi, lo + 1, hi - 1, (lo + hi) // 2]), min_size=1, max_size=4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    img = rng.choice(np.array(palette, dtype=np.int64), size=(rows, cols))
    noisy = rng.random((rows, cols)) < draw(st.sampled_from([0.0, 0.2, 0.7]))
    img[noisy] = rng.integers(lo, hi + 1, int(noisy.sum()))
    k = draw(st.sampled_from([0, 0, 1, 2, 5, 255]))
    return img.astype(np.int32), bits, signed, k


@settings(max_examples=150, deadline=None, derandomize=True)
@given(_frames_with_extremes())
def test_modular_levels_keep_the_bound_and_match_the_twin(case: tuple[np.ndarray, int, bool, int]) -> None:
    """Format 2.8 on frames that jump across the whole range: the bound holds through the public
    API, and the kernels agree with the plain-Python twin byte for byte, with and without runs."""
    img, bits, signed, k = case
    data = medcodec.encode(img, bits_stored=bits, signed=signed, max_error=k)
    assert int(np.abs(medcodec.decode(data).astype(np.int64) - img).max()) <= k
    for runs in (False, True):
        params = lossless.FrameParams.for_frame(img, k, runs=runs, modular=True)
        coded = lossless.encode_frame(img, params)
        assert coded == lossless.encode_frame_reference(img, params)
        np.testing.assert_array_equal(
            lossless.decode_frame(coded, params, img.shape), lossless.decode_frame_reference(coded, params, img.shape)
        )


# ---------------------------------------------------------------------------------------- packed frames


def _sparse(shape: tuple[int, int] = (40, 56), seed: int = 3) -> np.ndarray:
    """12-bit values on every 5th level plus a few odd ones: a contrast-stretched radiograph's histogram."""
    img = _image(shape, 10, False, noise=0.02, seed=seed).astype(np.int32) * 4
    img[::7, ::5] += 1
    return np.clip(img, 0, 4095)


@pytest.mark.parametrize("runs", [False, True])
def test_packed_frames_match_the_twin_and_decode_exactly(runs: bool) -> None:
    img = _sparse()
    params = lossless.FrameParams.for_frame(img, 0, runs=runs, modular=True, packed=True)
    assert params.values == lossless.distinct_values(img) and (params.vmin, params.vmax) == (0, len(params.values) - 1)
    coded = lossless.encode_frame(img, params)
    assert coded == lossless.encode_frame_reference(img, params)
    np.testing.assert_array_equal(lossless.decode_frame(coded, params, img.shape), img)
    np.testing.assert_array_equal(lossless.decode_frame_reference(coded, params, img.shape), img)
    with pytest.raises(medcodec.InvalidInputError, match="table"):
        lossless.encode_frame(img + 2, params)  # values the table does not hold


def test_packing_is_chosen_where_it_pays() -> None:
    """Format 2.9: a frame whose histogram is sparse is coded as indices (smaller, same samples);
    a dense one is not packed (no table to pay for); near-lossless never is."""
    sparse = _sparse((64, 80))
    params, data = lossless.encode_frame_smallest(sparse, 0, packing=True)
    unpacked = lossless.encode_frame_smallest(sparse, 0)[1]
    assert params.values is not None and len(data) < 0.9 * len(unpacked)
    dense = (np.add.outer(np.arange(64), np.arange(80)) % 61 + 100).astype(np.int32)  # every value of 100..160
    dense_values = lossless.distinct_values(dense)
    assert len(dense_values) == dense_values[-1] - dense_values[0] + 1
    assert lossless.encode_frame_smallest(dense, 0, packing=True)[0].values is None
    # near-lossless: a packed frame is exact, so it is a candidate too; the smaller is kept
    for k in (1, 2):
        params, data = lossless.encode_frame_smallest(sparse, k, packing=True)
        plain_k = lossless.encode_frame_smallest(sparse, k)[1]
        assert len(data) <= min(len(plain_k), len(lossless.encode_frame_smallest(sparse, 0, packing=True)[1]))
        out = lossless.decode_frame(data, params, sparse.shape)
        assert int(np.abs(out - sparse).max()) <= (0 if params.values is not None else k)


@pytest.mark.realdata
def test_packed_dx_chest_is_far_smaller_than_charls(shared_data) -> None:
    """The shared DX chest (12-bit, 823 of 4096 values used: a processed radiograph) was 0.987 of
    CharLS losslessly; packed, its indices code ~28 % smaller (JPEG XL's palette reaches 0.73)."""
    import pydicom

    from medcodec import external

    img = pydicom.dcmread(shared_data / "singles" / "dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm").pixel_array
    crop = np.ascontiguousarray(img[600:1112, 700:1212])  # 512 x 512 of the lungs and mediastinum
    data = medcodec.encode(crop, bits_stored=12, max_error=0)
    header, index = container.parse_container(data)
    assert header.version == container.VERSION_210 and mdc2.parse_predictive_frame(data, header, index[0])[1].values
    np.testing.assert_array_equal(medcodec.decode(data), crop)
    assert len(data) < 0.85 * len(external.jpegls_encode(crop, near=0))
    near = medcodec.encode(crop, bits_stored=12, max_error=1)  # before 2.9: larger than lossless here
    assert len(near) <= len(data) and int(np.abs(medcodec.decode(near).astype(int) - crop).max()) <= 1


def test_packed_table_is_checked() -> None:
    img = _sparse((64, 80))
    data = medcodec.encode(img.astype(np.uint16), bits_stored=12, max_error=0, compact=False)  # §10.1's offsets
    header, index = container.parse_container(data)
    off, _size = index[0]
    params = mdc2.parse_predictive_frame(data, header, index[0])[1]
    assert params.values is not None and data[off + 8 + 5] & mdc2.PRED_FLAG_PACKED
    np.testing.assert_array_equal(medcodec.decode(data), img)
    table_at = off + 8 + mdc2.FRAM2_HEAD.size

    def patched(pos: int, new: bytes, version: tuple[int, int] | None = None) -> bytes:
        return _patch(data, off, pos, new, version)

    with pytest.raises(medcodec.CorruptStreamError, match="flags"):
        medcodec.decode(patched(off, b"", (2, 8)))  # a packed frame in a stream that says 2.8
    with pytest.raises(medcodec.CorruptStreamError):
        medcodec.decode(patched(table_at, b"\x00"))  # a count of 0
    with pytest.raises(medcodec.CorruptStreamError):
        medcodec.decode(patched(table_at, b"\x01\xfe\x7f"))  # one value, 8191: beyond 12 bits
    head = bytearray()
    container.put_varint(head, len(params.values))
    container.put_svarint(head, params.values[0])
    k_at = table_at + len(head)  # the count and the first value, then the Rice parameter of the gaps
    for k_byte in (b"\x11", b"\x00"):  # a Rice parameter > 16; k = 0: the gaps misread, the values change
        try:
            out = medcodec.decode(patched(k_at, k_byte))
        except medcodec.CodecError as exc:
            assert isinstance(exc, (medcodec.CorruptStreamError, medcodec.TruncatedStreamError))
        else:
            assert not np.array_equal(out, img)


# ---------------------------------------------------------------- the compact layout (format 2.10, §20)


@pytest.mark.parametrize(("shape", "bits", "signed", "k"), [((45, 10), 8, False, 0), ((2, 37, 45), 16, True, 3),
                                                            ((3, 24, 40), 12, False, 0), ((1, 1), 1, False, 0)])  # fmt: skip
def test_compact_predictive_layout_decodes_as_the_long_one(shape: tuple[int, ...], bits: int, signed: bool,
                                                           k: int) -> None:  # fmt: skip
    """The default predictive stream is 2.10's compact layout: the same frames, ~105 bytes less
    (a 64-byte HEAD, the meta segment, FIDX entries and 26-byte FRAM headers made short)."""
    img = _image(shape, bits, signed, noise=0.02, seed=bits + k)
    compact = medcodec.encode(img, bits_stored=bits, signed=signed, max_error=k)
    long = medcodec.encode(img, bits_stored=bits, signed=signed, max_error=k, compact=False)
    header = medcodec.read_header(compact)
    assert header.version == container.VERSION_210 and header.compact
    assert medcodec.read_header(long).version == container.VERSION_29 and not medcodec.read_header(long).compact
    out = medcodec.decode(compact)
    np.testing.assert_array_equal(out, medcodec.decode(long))
    assert out.shape == img.shape and int(np.abs(out.astype(np.int64) - img).max()) <= k
    frames = 1 if len(shape) == 2 else shape[0]
    # HEAD 51 bytes, FIDX 4 + 8 a frame, FRAM headers ~18 a frame, the meta segment (2-D) 23
    assert len(long) - len(compact) >= 50 + 20 * frames + (20 if len(shape) == 2 else 0)


def test_compact_predictive_fields_are_checked() -> None:
    """Every field of a compact predictive FRAM is refused as a CorruptStreamError when damaged
    (the CRC made right again): flags beyond bit 4, VMIN / VMAX beyond the header's range,
    thresholds 0 or beyond 65535, an index that is not the frame's, varints cut off."""
    img = _text_on_black()
    data = medcodec.encode(img, bits_stored=8, max_error=0)
    header, index = container.parse_container(data)
    assert header.compact and mdc2.parse_predictive_frame(data, header, index[0])[1].runs
    off = index[0][0]
    at = off + 8  # the payload: index, flags, VMIN, span (VMAX - VMIN: 255, two bytes), T1, T2 - T1, T3 - T2
    assert data[at] == 0 and data[at + 1] & mdc2.PRED_COMPACT_BLEND and data[at + 2 : at + 5] == b"\x00\xff\x01"

    def patched(pos: int, new: bytes, version: tuple[int, int] | None = None) -> bytes:
        return _patch(data, off, pos, new, version)

    for pos, new, match in [
        (at + 1, bytes([data[at + 1] | 32]), "flags"),  # a bit beyond the blend flag
        (at + 1, bytes([data[at + 1] & ~1 | 4]), "flags"),  # run contexts from above without run mode
        (at, b"\x01", "frame 1"),  # the frame index
        (at + 2, b"\x80", "value range"),  # VMIN's varint runs into the span's bytes: beyond 8 bits
        (at + 2, b"\x01", "value range"),  # VMIN = -1 (zigzag 1) below an unsigned range
        (at + 3, b"\xff\x03", "value range"),  # VMAX = VMIN + 511: beyond 8 bits
        (at + 5, b"\x00", "threshold"),  # T1 = 0
    ]:
        with pytest.raises(medcodec.CorruptStreamError, match=match):
            medcodec.decode(patched(pos, new))
    with pytest.raises(medcodec.UnsupportedFeatureError, match="compact"):
        medcodec.decode(patched(at, data[at : at + 1], (2, 9)))  # a compact predictive HEAD of 2.9
    long = medcodec.encode(img, bits_stored=8, max_error=0, compact=False)
    with pytest.raises(medcodec.CorruptStreamError):  # the long layout's bytes read as compact fields
        medcodec.decode(_relabel_compact(long))


def _relabel_compact(long: bytes) -> bytes:
    """A long-layout predictive stream whose HEAD is swapped for a compact one (same fields): its FIDX
    and FRAM payloads are then read as §20's and must be refused, not misread."""
    header, _ = container.parse_container(long)
    head = container._compact_head_payload(replace(header, version=container.VERSION_210, compact=True), header.meta)
    seg = container._segment(b"HEAD", head)
    head_end = header.segments[0].end
    return long[:8] + seg + long[head_end:]


def test_compact_predictive_bomb_limit() -> None:
    """A compact FIDX entry shorter than the fields and coded bytes a frame of its size needs
    (1 byte per 4096 samples) is refused before the frame is read."""
    data = medcodec.encode(np.zeros((512, 512), np.uint16), bits_stored=12, max_error=0)
    header, index = container.parse_container(data)
    need = container.compact_frame_min_size(512, 512, container.TRANSFORM_PREDICTIVE)
    assert index[0][1] >= need == 12 + 7 + 64
    fidx = next(s for s in header.segments if s.type == "FIDX")
    short = bytearray(data)
    struct.pack_into("<I", short, fidx.offset + 8, need - 1)
    _refresh_crc(short, fidx.offset)
    with pytest.raises(medcodec.CorruptStreamError, match="shorter than the"):
        medcodec.decode(bytes(short))
