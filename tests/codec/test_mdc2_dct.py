"""The .mdc v2 DCT streams: the v1 levels, range-coded with contexts (``entropy="arith"``)."""

from __future__ import annotations

import itertools
import struct
import time
import zlib
from dataclasses import replace

import numpy as np
import pytest

import medcodec
from medcodec.codec import container, mdc, mdc2, quantize, transform


def _image(shape: tuple[int, ...], bits: int = 12, signed: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = lo + (1 << bits) - 1
    y, x = np.indices(shape[-2:])
    arr = lo + (hi - lo) * (0.45 + 0.3 * np.sin(x / 7.0) * np.cos(y / 9.0)) + rng.normal(0, (hi - lo) * 0.01, shape)
    arr.reshape(-1, *shape[-2:])[..., :5, :] = lo
    dtype = (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed else np.uint16)
    return np.clip(np.rint(arr), lo, hi).astype(dtype)


@pytest.mark.parametrize("bits,signed", [(8, False), (12, False), (16, True), (16, False)])
@pytest.mark.parametrize("quality", [20, 75, 100])
def test_arith_same_levels_and_bound(bits: int, signed: bool, quality: int) -> None:
    img = _image((2, 45, 61), bits, signed, seed=quality)
    expect = {"arith-binary": ((2, 0), container.ENTROPY_ARITH), "arith-multi": ((2, 1), container.ENTROPY_MULTI)}
    expect["arith"] = expect[mdc2.DEFAULT_ARITH]
    for effort, entropy in itertools.product(("best", "fast"), expect):
        v1 = medcodec.encode(img, bits_stored=bits, signed=signed, quality=quality, effort=effort, entropy="huffman")
        v2 = medcodec.encode(img, bits_stored=bits, signed=signed, quality=quality, effort=effort, entropy=entropy, intra=False, compact=False)
        h = medcodec.read_header(v2)
        assert (h.version, h.entropy) == expect[entropy] and h.transform == container.TRANSFORM_DCT8
        np.testing.assert_array_equal(h.qtables[0], medcodec.read_header(v1).qtables[0])
        # same levels; offsets (fast) and deblocking (chosen by the encoder only when it helps)
        # must not cost error, and the bound that includes them holds
        d1 = medcodec.decode(v1).astype(np.int64) - img
        d2 = medcodec.decode(v2).astype(np.int64) - img
        assert np.abs(d2).max() <= min(mdc2.stream_error_bound(v2))
        assert np.mean(d2.astype(float) ** 2) <= np.mean(d1.astype(float) ** 2) * 1.01


def test_deblocking_is_chosen_on_smooth_images_and_only_helps() -> None:
    y, x = np.mgrid[0:96, 0:96]
    smooth = (2000 + 900 * np.sin(x / 23.0) * np.cos(y / 17.0)).astype(np.uint16)
    data = medcodec.encode(smooth, bits_stored=12, quality=30, entropy="arith", intra=False, compact=False)
    header, index = container.parse_container(data)
    deblock = mdc2.read_dct_frame(data, header, index[0]).deblock
    assert deblock is not None and deblock[2] >= 1
    v1 = medcodec.decode(medcodec.encode(smooth, bits_stored=12, quality=30, entropy="huffman")).astype(float)
    v2 = medcodec.decode(data).astype(float)
    assert np.mean((v2 - smooth) ** 2) < np.mean((v1 - smooth) ** 2)


def test_offsets_move_levels_toward_zero_and_raise_psnr() -> None:
    img = _image((1, 128, 128), 12)[0]
    coder_q = quantize.quant_table(60, 12)
    from medcodec.codec.framecoder import FrameCoder

    coder = FrameCoder.for_table(coder_q, 12, False)
    levels, scaled = coder.levels(img), coder.scaled(img)
    off = mdc2.reconstruction_offsets(levels, scaled)
    assert off.shape == (63,) and off.max() <= mdc2.MAX_OFFSET and off.sum() > 0
    zero = mdc2.reconstruct_with_offsets(coder, levels, np.zeros(63, np.uint8), *img.shape)
    np.testing.assert_array_equal(zero, coder.reconstruct(levels, *img.shape))  # exact with no offsets
    moved = mdc2.reconstruct_with_offsets(coder, levels, off, *img.shape)
    mse = lambda d: float(np.mean((d.astype(float) - img) ** 2))  # noqa: E731
    assert mse(moved) < mse(zero)


@pytest.mark.parametrize("coder", [container.ENTROPY_ARITH, container.ENTROPY_MULTI])
def test_levels_roundtrip_extremes(coder: int) -> None:
    rng = np.random.default_rng(4)
    levels = np.zeros((35, 64), np.int32)
    levels[:, 0] = rng.integers(-(1 << 18), 1 << 18, 35)  # DC differences of 16-bit data
    levels[3, 63] = (1 << 18) - 1
    levels[4, 1:] = rng.integers(-300, 300, 63)
    levels[7, 5] = -1
    coded = mdc2.encode_levels(levels, 5, coder)
    back = mdc2.decode_levels(np.frombuffer(coded, np.uint8), 0, len(coded), 35, 5, coder=coder)
    np.testing.assert_array_equal(back, levels)


def test_arith_is_smaller_on_ct_like_data() -> None:
    img = _image((2, 128, 128), 12)
    for q in (40, 80):
        v1 = len(medcodec.encode(img, bits_stored=12, quality=q, entropy="huffman"))
        v2 = len(medcodec.encode(img, bits_stored=12, quality=q, entropy="arith", intra=False, compact=False))
        assert v2 < 0.97 * v1, (q, v1, v2)


def test_ratio_target_uses_the_arith_sizes() -> None:
    img = _image((3, 96, 96), 12)
    data = medcodec.encode(img, bits_stored=12, ratio=12, entropy="arith", intra=False, compact=False)
    assert abs(img.size * 2 / len(data) / 12 - 1) < 0.05


def test_arith_random_access_and_effort_best() -> None:
    img = _image((3, 40, 40), 12)
    data = medcodec.encode(img, bits_stored=12, quality=70, entropy="arith", intra=False, effort="best")
    full = medcodec.decode(data)
    for i in (2, 0):
        np.testing.assert_array_equal(medcodec.decode(data, frames=i), full[i])


def test_unknown_entropy_rejected() -> None:
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.encode(np.zeros((8, 8), np.uint16), bits_stored=12, entropy="cabac")
    with pytest.raises(medcodec.InvalidInputError):
        medcodec.encode(np.zeros((8, 8), np.uint16), bits_stored=12, entropy="arith", format="jpeg")


@pytest.fixture(scope="module", params=["arith-binary", "arith-multi"])
def arith_stream(request: pytest.FixtureRequest) -> bytes:
    data = medcodec.encode(_image((3, 40, 48), 12), bits_stored=12, quality=80, entropy=request.param, intra=False, compact=False)
    medcodec.decode(data)
    return data


def _refresh_crc(data: bytearray, seg_offset: int) -> None:
    (length,) = struct.unpack_from("<I", data, seg_offset)
    struct.pack_into("<I", data, seg_offset + 8 + length, zlib.crc32(bytes(data[seg_offset + 4 : seg_offset + 8 + length])))


def test_arith_truncation_sweep(arith_stream: bytes) -> None:
    for n in list(range(0, 400, 3)) + [len(arith_stream) * j // 30 for j in range(30)]:
        with pytest.raises(medcodec.CodecError):
            medcodec.decode(arith_stream[:n])


def test_arith_garbage_levels_give_codec_error_or_in_range_pixels(arith_stream: bytes) -> None:
    _, index = container.parse_container(arith_stream)
    rng = np.random.default_rng(9)
    for trial in range(150):
        data = bytearray(arith_stream)
        off, size = index[trial % 3]
        for _ in range(1 + trial % 5):
            data[off + 8 + int(rng.integers(0, size - 12))] = int(rng.integers(0, 256))
        _refresh_crc(data, off)
        t = time.perf_counter()
        try:
            out = medcodec.decode(bytes(data))
            assert out.dtype == np.uint16 and int(out.max()) <= 4095
        except medcodec.CodecError:
            pass
        assert time.perf_counter() - t < 5


def test_arith_fram_fields_checked(arith_stream: bytes) -> None:
    header, index = container.parse_container(arith_stream)
    off = index[0][0]

    def tampered(at: int, fmt: str, value: int) -> bytes:
        data = bytearray(arith_stream)
        struct.pack_into(fmt, data, off + 8 + at, value)
        _refresh_crc(data, off)
        return bytes(data)

    with pytest.raises(medcodec.CorruptStreamError, match="QTAB has"):
        medcodec.decode(tampered(4, "<B", 3))
    with pytest.raises(medcodec.CorruptStreamError, match="points at frame"):
        medcodec.decode(tampered(0, "<I", 1))
    flags = arith_stream[off + 8 + 5]
    ncoded_at = 8 + (63 if flags & mdc2.FLAG_OFFSETS else 0) + (6 if flags & mdc2.FLAG_DEBLOCK else 0)
    restoration = mdc2.read_dct_frame(arith_stream, header, index[0]).restoration
    ncoded_at += len(restoration.to_bytes()) if restoration is not None else 0
    with pytest.raises(medcodec.CorruptStreamError, match="coded length"):
        medcodec.decode(tampered(ncoded_at, "<I", 5))
    with pytest.raises(medcodec.CorruptStreamError, match="offset"):
        medcodec.decode(tampered(8, "<B", 200))
    with pytest.raises(medcodec.CorruptStreamError, match="flags"):
        medcodec.decode(tampered(5, "<B", 9))


def test_arith_bomb_limit() -> None:
    data = medcodec.encode(np.zeros((2048, 2048), np.uint16), bits_stored=12, quality=50, entropy="arith", intra=False, compact=False)
    header, index = container.parse_container(data)
    off, _ = index[0]
    frame = mdc2.read_dct_frame(data, header, index[0])
    start, end = frame.start, frame.end
    ncoded = end - start
    by, bx = transform.blocks_shape(2048, 2048)
    assert by * bx <= mdc2.MAX_BLOCKS_PER_BYTE * ncoded  # a real constant frame passes the limit
    # the same frame header with 1 coded byte claims 65536 blocks: refused before decoding
    small = mdc2.FRAM2_DCT_HEAD.pack(0, 0, 0) + struct.pack("<I", 1) + b"\0"
    seg = container._segment(b"FRAM", small)
    fidx_at = [s for s in header.segments if s.type == "FIDX"][0].offset
    rebuilt = bytearray(data[:off]) + seg + container._segment(b"MEND", b"")
    struct.pack_into("<I", rebuilt, fidx_at + 8 + 4 + 8, len(seg))
    _refresh_crc(rebuilt, fidx_at)
    with pytest.raises(medcodec.CorruptStreamError, match="shorter than the"):
        medcodec.decode(bytes(rebuilt))  # the FIDX entry is refused before any frame is read
    with pytest.raises(medcodec.CorruptStreamError, match="blocks per byte"):
        mdc2.read_dct_frame(bytes(rebuilt), header, (off, len(seg)))  # and the FRAM itself


def _slices(n: int = 3, rows: int = 48, cols: int = 56) -> list[np.ndarray]:
    """16-bit signed MR-like slices whose spans differ: 0..~250 (an end slice) up to 0..~5900."""
    rng = np.random.default_rng(7)
    y, x = np.indices((rows, cols))
    blob = np.exp(-((x - cols / 2) ** 2 + (y - rows / 2) ** 2) / (2 * (rows / 4) ** 2))
    return [np.clip(np.rint(peak * blob + rng.normal(0, 3, blob.shape)), 0, None).astype(np.int16)
            for peak in np.geomspace(250, 5900, n)]  # fmt: skip


def test_arith_steps_do_not_follow_a_sparse_slice() -> None:
    """Format 2.0: a slice spanning 8 bits of a 16-bit series gets the steps of one spanning 12
    (the floor bits_stored - 4), not 16x finer ones; format 1.0 keeps its own (pinned) rule."""
    thin, _, wide = _slices()
    assert int(thin.max()).bit_length() == 8 and int(wide.max()).bit_length() == 13
    h_thin = medcodec.read_header(medcodec.encode(thin, bits_stored=16, signed=True, quality=60, entropy="arith", intra=False, compact=False))
    h_mid = medcodec.read_header(
        medcodec.encode(np.minimum(wide, 4000).astype(np.int16), bits_stored=16, signed=True, quality=60,
                        entropy="arith", intra=False, compact=False)
    )  # fmt: skip
    assert h_thin.range_bits == 12 == h_mid.range_bits
    np.testing.assert_array_equal(h_thin.qtables[0], h_mid.qtables[0])
    h_v1 = medcodec.read_header(medcodec.encode(thin, bits_stored=16, signed=True, quality=60, entropy="huffman"))
    assert h_v1.range_bits == 8
    np.testing.assert_array_equal(h_v1.qtables[0], quantize.quant_table(60, 8, table=quantize.MDC_DEFAULT_TABLE))
    np.testing.assert_array_equal(h_thin.qtables[0], quantize.quant_table(60, 12, table=quantize.MDC_DEFAULT_TABLE))
    # data up to 12 bits get the steps of their bits_stored (levelshift.default_range_bits), so every
    # slice of a 12-bit series coded on its own gets the same steps; range_bits= still sets a span
    ct = (np.indices((40, 40)).sum(0) * 20).astype(np.uint16)  # spans 0..1560: 11 bits
    assert medcodec.read_header(medcodec.encode(ct, bits_stored=12, quality=60, entropy="arith", intra=False, compact=False)).range_bits == 12
    assert medcodec.read_header(medcodec.encode(ct, bits_stored=12, quality=60, entropy="arith", intra=False, compact=False, range_bits=11)).range_bits == 11


def test_range_bits_for_mdc() -> None:
    """``range_bits=`` (one value per series) sets the steps of .mdc streams of both versions."""
    thin = _slices()[0]
    for entropy in (None, "arith"):
        data = medcodec.encode(thin, bits_stored=16, signed=True, quality=60, entropy=entropy, intra=False, range_bits=13)
        h = medcodec.read_header(data)
        assert h.range_bits == 13
        np.testing.assert_array_equal(h.qtables[0], quantize.quant_table(60, 13, table=quantize.MDC_DEFAULT_TABLE))
        if entropy:
            assert np.abs(medcodec.decode(data).astype(np.int64) - thin).max() <= max(mdc2.stream_error_bound(data))
    for bad in (7, 17, True, 12.5):
        with pytest.raises(medcodec.InvalidInputError, match="range_bits"):
            medcodec.encode(thin, bits_stored=16, signed=True, quality=60, range_bits=bad)
    with pytest.raises(medcodec.InvalidInputError, match="range_bits"):
        medcodec.encode(thin, bits_stored=16, signed=True, max_error=0, range_bits=12)


def test_arith_sparse_slice_rate_distortion() -> None:
    """The point of the floor: over slices coded one by one, steps that follow each slice's span
    (16x finer on the thin slice) give more total squared error than the floor's steps at the
    highest quality that spends no more bytes."""
    slices = _slices(4, 64, 64)

    def total(quality: float, own: bool) -> tuple[int, float]:
        nbytes, se = 0, 0.0
        for s in slices:
            rb = max(8, int(s.max()).bit_length()) if own else None
            data = medcodec.encode(s, bits_stored=16, signed=True, quality=quality, entropy="arith", intra=False, range_bits=rb)
            nbytes += len(data)
            se += float(np.sum((medcodec.decode(data).astype(np.float64) - s) ** 2))
        return nbytes, se

    b_own, e_own = total(45, own=True)
    fits = [(q, *total(q, own=False)) for q in range(45, 101, 5)]
    fits = [(q, b, e) for q, b, e in fits if b <= b_own]
    assert fits, "even quality 45 with the floor spends more bytes than the per-slice steps"
    e_floor = fits[-1][2]
    assert e_floor < e_own


#: The phantom's values span 11 bits; its tests were made with steps for that span (what a series
#: writer passes), not the coarser ones of its 12-bit depth.
SMOOTH_SPAN = 11
#: A low rate on the smooth phantom where the default table's steps make the restoration filter pay
#: (quality 30 with the "medical" table, the .mdc default until 2026-12-04; 20 with "near-flat")
RESTORATION_QUALITY = 20


def _smooth_phantom(rows: int = 192, cols: int = 160, seed: int = 3) -> np.ndarray:
    """A smooth 12-bit phantom with sharp-edged inserts and a little noise (where 8x8 DCT rings)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((rows, cols))
    img = 1000 + 600 * np.exp(-((x - cols / 2) ** 2 + (y - rows / 2) ** 2) / (2 * (rows / 3) ** 2))
    img = img + 900 * (((x - 50) ** 2 + (y - 60) ** 2) < 400) + 500 * ((abs(x - 110) < 15) & (abs(y - 120) < 25))
    return np.clip(np.rint(img + rng.normal(0, 2, img.shape)), 0, 4095).astype(np.uint16)


def _restore_reference(img: np.ndarray, flt: mdc2.RestorationFilter, lo: int, hi: int) -> np.ndarray:
    """Plain NumPy twin of the restoration filter (docs/format.md §12.3 step 4)."""
    p = img.astype(np.int64)
    rows, cols = p.shape
    pad = np.pad(p, 2, mode="edge")

    def at(dy: int, dx: int) -> np.ndarray:
        return pad[2 + dy : 2 + dy + rows, 2 + dx : 2 + dx + cols]

    lap = np.abs(2 * p - at(0, -1) - at(0, 1)) + np.abs(2 * p - at(-1, 0) - at(1, 0))
    lpad = np.pad(lap, 1, mode="edge")
    act = sum(lpad[1 + dy : 1 + dy + rows, 1 + dx : 1 + dx + cols] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    cls = np.searchsorted(np.asarray(flt.thresholds, np.int64), act, side="right")
    acc = np.zeros_like(p)
    for j, (dy, dx) in enumerate([(0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0)]):
        acc += np.asarray(flt.weights, np.int64)[cls, j] * (at(dy, dx) + at(-dy, -dx) - 2 * p)
    delta = np.sign(acc) * ((np.abs(acc) + 128) // 256)
    return np.clip(p + np.clip(delta, -flt.clip, flt.clip), lo, hi)


def test_restoration_kernel_matches_reference() -> None:
    rng = np.random.default_rng(11)
    for shape, ncls in (((37, 29), 1), ((64, 72), 4), ((3, 5), 2), ((1, 1), 3)):
        img = rng.integers(0, 4096, shape).astype(np.uint16)
        thr = np.sort(rng.integers(0, 40000, ncls - 1)).astype(np.int64)
        weights = rng.integers(-32768, 32768, (ncls, 6)).astype(np.int64)
        for clip in (1, 37, 65535):
            flt = mdc2.RestorationFilter(thr, weights, clip)
            got = flt.apply(img, 0, 4095)
            np.testing.assert_array_equal(got, _restore_reference(img, flt, 0, 4095))
            assert np.abs(got.astype(np.int64) - img).max() <= clip


def test_restoration_filter_chosen_and_pays() -> None:
    """On a smooth phantom at a low rate the encoder signals the filter; the decoder output is the
    filter applied to the deblocked frame; it lowers the error by more than its bytes cost (at the
    rate's slope, 2 ln 2 x MSE per bit), and the printed bound (which adds the filter's clip) holds.
    Fast encoding fits one class; with the activity classes of effort="best" the fit lowers the
    error by 3 %."""
    img = _smooth_phantom()
    data = medcodec.encode(img, bits_stored=12, quality=RESTORATION_QUALITY, entropy="arith", intra=False,
                           compact=False, range_bits=SMOOTH_SPAN)
    header, index = container.parse_container(data)
    frame = mdc2.read_dct_frame(data, header, index[0])
    assert frame.restoration is not None and frame.restoration.weights.any()
    assert len(frame.restoration.weights) == 1  # mdc2.FAST_FILTER_CLASSES
    coder = mdc2.FrameCoder.for_table(header.qtables[0], 12, False)
    by, bx = transform.blocks_shape(*img.shape)
    levels = mdc2.decode_levels(np.frombuffer(data, np.uint8), frame.start, frame.end, by * bx, bx,
                                coder=header.entropy)  # fmt: skip
    before = mdc2.decoded_before_restoration(coder, levels, frame.offsets, frame.deblock, *img.shape)
    out = medcodec.decode(data)
    np.testing.assert_array_equal(out, _restore_reference(before, frame.restoration, 0, 4095))
    err_before = float(np.sum((before.astype(np.float64) - img) ** 2))
    err_after = float(np.sum((out.astype(np.float64) - img) ** 2))
    nbytes = len(frame.restoration.to_bytes())
    assert err_before - err_after > 2 * np.log(2) * err_before / img.size * 8 * nbytes
    assert np.abs(out.astype(np.int64) - img).max() <= max(mdc2.stream_error_bound(data))
    multi = mdc2.choose_restoration(coder, before, img, mdc2.FILTER_CLASS_CANDIDATES)
    assert multi is not None and len(multi.weights) > 1
    err_multi = float(np.sum((multi.apply(before, 0, 4095).astype(np.float64) - img) ** 2))
    assert err_multi < err_before * 0.97


def test_restoration_filter_keeps_texture() -> None:
    """On noise-like texture the filter may not take out more high-frequency energy than coding did."""
    rng = np.random.default_rng(5)
    img = np.clip(np.rint(2000 + rng.normal(0, 25, (128, 128))), 0, 4095).astype(np.uint16)
    coder = mdc2.FrameCoder.for_table(quantize.quant_table(55, 12), 12, False)
    levels = coder.levels(img)
    decoded = mdc2.decoded_before_restoration(coder, levels, None, None, *img.shape)
    for classes in (mdc2.FILTER_CLASS_CANDIDATES, mdc2.FAST_FILTER_CLASSES):
        flt = mdc2.choose_restoration(coder, decoded, img, classes)
        if flt is None:
            continue
        # allowed only where it keeps the energy
        cls = np.searchsorted(flt.thresholds, mdc2.K.filter_activity(decoded, np.empty(img.shape, np.int64)).ravel(),
                              side="right")  # fmt: skip
        n = len(flt.weights)
        kept = mdc2._laplacian_energy(flt.apply(decoded, 0, 4095), cls, n)
        floor = np.minimum(mdc2._laplacian_energy(decoded, cls, n), mdc2._laplacian_energy(img, cls, n))
        assert np.all(kept >= mdc2.TEXTURE_KEEP * floor)


def test_restoration_fields_checked() -> None:
    img = _smooth_phantom()
    data = medcodec.encode(img, bits_stored=12, quality=RESTORATION_QUALITY, entropy="arith", intra=False,
                           compact=False, range_bits=SMOOTH_SPAN)
    header, index = container.parse_container(data)
    off = index[0][0]
    frame = mdc2.read_dct_frame(data, header, index[0])
    assert frame.restoration is not None
    flags = data[off + 8 + 5]
    at = 8 + (63 if flags & mdc2.FLAG_OFFSETS else 0) + (6 if flags & mdc2.FLAG_DEBLOCK else 0)

    def tampered(pos: int, fmt: str, value: int) -> bytes:
        buf = bytearray(data)
        struct.pack_into(fmt, buf, off + 8 + pos, value)
        _refresh_crc(buf, off)
        return bytes(buf)

    for classes in (0, mdc2.MAX_FILTER_CLASSES + 1):
        with pytest.raises(medcodec.CorruptStreamError, match="classes"):
            medcodec.decode(tampered(at, "<B", classes))
    if len(frame.restoration.weights) > 2:
        with pytest.raises(medcodec.CorruptStreamError, match="thresholds"):
            medcodec.decode(tampered(at + 3, "<I", 0xFFFFFFFF))
    n = len(frame.restoration.weights)
    with pytest.raises((medcodec.CorruptStreamError, medcodec.TruncatedStreamError)):
        medcodec.decode(tampered(at, "<B", n - 1 if n > 1 else n + 1))  # the filter's bytes no longer fit


def test_arith_range_ignores_a_few_bright_pixels() -> None:
    """Format 2.0 measures a slice's span between its 0.1 and 99.9 % quantiles: 0.05 % of pixels
    at 5900 do not double the steps of an MR slice whose content spans 0..3000 (format 1.0 and an
    explicit ``range_bits`` keep their rules)."""
    rng = np.random.default_rng(2)
    base = np.clip(np.rint(1500 + 700 * rng.standard_normal((128, 128))), 0, 3000).astype(np.int16)
    spiky = base.copy()
    spiky.flat[rng.choice(spiky.size, 8, replace=False)] = 5900  # 0.05 %
    assert int(spiky.max()).bit_length() == 13 and int(base.max()).bit_length() == 12

    def head(img: np.ndarray, **kw: object) -> container.MdcHeader:
        return medcodec.read_header(medcodec.encode(img, bits_stored=16, signed=True, quality=60, **kw))

    assert head(spiky, entropy="arith", intra=False, compact=False).range_bits == head(base, entropy="arith").range_bits == 12
    assert head(spiky, entropy="huffman").range_bits == 13  # format 1.0: the maximum (pinned by its golden files)
    assert head(spiky, entropy="arith", intra=False, range_bits=13).range_bits == 13
    data = medcodec.encode(spiky, bits_stored=16, signed=True, quality=60, entropy="arith", intra=False, compact=False)
    assert np.abs(medcodec.decode(data).astype(np.int64) - spiky).max() <= max(mdc2.stream_error_bound(data))


def test_filter_search_kernels_match_the_whole_frame_ones() -> None:
    """The encoder's cheaper search kernels: activity at the sampled positions only, the filter on
    a band of rows, the Laplacian energy inside a band: the same numbers as the whole-frame kernels."""
    rng = np.random.default_rng(12)
    for shape in ((1, 1), (2, 9), (37, 29), (300, 70)):
        img = rng.integers(0, 4096, shape).astype(np.uint16)
        full = mdc2.K.filter_activity(img, np.empty(shape, np.int64))
        step = mdc2.K.FILTER_SAMPLE
        got = mdc2.K.filter_activity_sampled(img, step, np.empty((-(-shape[0] // step), -(-shape[1] // step)), np.int64))
        np.testing.assert_array_equal(got, full[::step, ::step])
        flt = mdc2.RestorationFilter(np.array([50, 400], np.int64), rng.integers(-300, 300, (3, 6)), 40)
        whole = flt.apply(img, 0, 4095)
        for y0, y1 in ((0, shape[0]), (0, 1), (shape[0] // 3, shape[0] // 2 + 1), (shape[0] - 1, shape[0])):
            band = np.zeros_like(img)
            mdc2.K.restore_rows(img, flt.thresholds, np.asarray(flt.weights, np.int64), flt.clip, 0, 4095, band, y0, y1)
            np.testing.assert_array_equal(band[y0:y1], whole[y0:y1])
            assert not band[:y0].any() and not band[y1:].any()
        bins = rng.integers(0, 3, (-(-shape[0] // step), -(-shape[1] // step))).astype(np.int64)
        if shape[0] >= 4:  # inside a band covering rows 1 .. rows-2 the two agree on the rows they share
            e_band = mdc2.K.band_laplacian_energy(img, bins, np.zeros(3), 0, shape[0])
            masked = bins.copy()
            e_all = np.zeros(4)
            masked[0, :] = 3  # row 0 and the last sampled row (if it is the last frame row) lie outside
            if (shape[0] - 1) % step == 0:
                masked[-1, :] = 3
            mdc2.K.laplacian_energy(img, masked, e_all)
            np.testing.assert_allclose(e_band, e_all[:3])


def test_fast_levels_from_the_scaled_coefficients_are_the_coders_levels() -> None:
    """effort="fast" 2.x encoding takes the DCT once (the offsets need the unrounded values) and
    rounds it as quantize.round_levels does (round_scaled): exactly the levels FrameCoder.levels gives."""
    from medcodec.codec.framecoder import FrameCoder

    for bits, signed, shape in ((12, False, (45, 61)), (16, True, (64, 72)), (8, False, (9, 17))):
        img = _image(shape, bits, signed, seed=bits)
        for q in (5, 50, 95, 100):
            coder = FrameCoder.for_table(quantize.quant_table(q, bits), bits, signed)
            scaled = coder.scaled(img)
            np.testing.assert_array_equal(quantize.round_levels(scaled), coder.levels(img))
            rounded = mdc2.K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))
            np.testing.assert_array_equal(rounded, coder.levels(img))


def test_deblocked_frame_is_the_decoders_frame_and_the_best_candidate() -> None:
    """deblocked_frame returns the candidate with the smallest squared error (or none) and the
    frame the decoder holds after it."""
    from medcodec.codec.framecoder import FrameCoder

    for shape, q in (((45, 61), 30), ((64, 72), 15), ((7, 9), 20), ((96, 40), 60)):
        img = _image(shape, 12, seed=q)
        coder = FrameCoder.for_table(quantize.quant_table(q, 12), 12, False)
        levels, scaled = coder.levels(img), coder.scaled(img)
        for offsets in (None, mdc2.reconstruction_offsets(levels, scaled)):
            params, got = mdc2.deblocked_frame(coder, levels, offsets, img)
            np.testing.assert_array_equal(got, mdc2.decoded_before_restoration(coder, levels, offsets, params, *shape))
            base = mdc2.decoded_before_restoration(coder, levels, offsets, None, *shape)
            errs = {None: mdc2.K.squared_error(base, img)}
            for ma, mt in mdc2.DEBLOCK_CANDIDATES:
                alpha = int(min(65535, round(ma * float(coder.steps[0]))))
                cand = (alpha, alpha // 2 + 1, int(min(65535, max(1, round(mt * float(coder.steps[0]))))))
                trial = mdc2.decoded_before_restoration(coder, levels, offsets, cand, *shape)
                errs[cand] = mdc2.K.squared_error(trial, img)
            assert errs[params] == min(errs.values())


def test_filter_stats_match_a_numpy_reference() -> None:
    """The restoration filter's least-squares statistics against a plain NumPy twin (every second
    row and column, clamped taps): normal equations, counts and Laplacian energies per bin."""
    rng = np.random.default_rng(21)
    step = mdc2.K.FILTER_SAMPLE
    for shape in ((1, 1), (5, 3), (37, 29), (64, 71)):
        dec = rng.integers(0, 4096, shape).astype(np.uint16)
        orig = rng.integers(0, 4096, shape).astype(np.uint16)
        bins = rng.integers(0, 5, (-(-shape[0] // step), -(-shape[1] // step))).astype(np.int64)
        ata, atb, counts = np.zeros((5, 6, 6)), np.zeros((5, 6)), np.zeros(5, np.int64)
        e_dec, e_orig = np.zeros(5), np.zeros(5)
        mdc2.K.filter_stats(dec, orig, bins, 5, ata, atb, counts, e_dec, e_orig)
        rows, cols = shape
        d, q = np.pad(dec.astype(np.int64), 2, mode="edge"), np.pad(orig.astype(np.int64), 2, mode="edge")

        def at(img: np.ndarray, dy: int, dx: int, rows: int = rows, cols: int = cols) -> np.ndarray:
            return img[2 + dy : 2 + dy + rows : step, 2 + dx : 2 + dx + cols : step]

        p = at(d, 0, 0)
        taps = np.stack([at(d, dy, dx) + at(d, -dy, -dx) - 2 * p for dy, dx in mdc2.K.FILTER_PAIRS]).reshape(6, -1)
        t = (at(q, 0, 0) - p).ravel()
        lq = (at(q, 0, 1) + at(q, 0, -1) + at(q, 1, 0) + at(q, -1, 0) - 4 * at(q, 0, 0)).ravel()
        b = bins.ravel()
        for k in range(5):
            m = b == k
            np.testing.assert_array_equal(np.triu(ata[k]), np.triu(taps[:, m] @ taps[:, m].T))
            np.testing.assert_array_equal(atb[k], taps[:, m] @ t[m])
            assert counts[k] == m.sum()
            assert e_dec[k] == float(np.sum((taps[0, m] + taps[1, m]) ** 2))
            assert e_orig[k] == float(np.sum(lq[m] ** 2))


def test_restoration_kernel_with_extreme_thresholds_and_samples() -> None:
    """16-bit extremes (the largest activities) and thresholds up to 2**32 - 1 (what a stream can
    hold): the kernel still matches the NumPy reference."""
    rng = np.random.default_rng(33)
    img = rng.choice(np.array([0, 65535], np.uint16), (40, 33))
    for thr in ([0, 1, 2**21, 2**31 - 1, 2**31, 2**32 - 1], [2**32 - 1], [0]):
        weights = rng.integers(-32768, 32768, (len(thr) + 1, 6)).astype(np.int64)
        flt = mdc2.RestorationFilter(np.array(thr, np.int64), weights, 65535)
        np.testing.assert_array_equal(flt.apply(img, 0, 65535), _restore_reference(img, flt, 0, 65535))


def test_restoration_kernel_int32_path_at_its_widest_range() -> None:
    """The kernel runs in int32 when ``hi - lo <= RESTORE_INT32_SPAN``: at that span, with samples
    at both ends and the most extreme weights (all -32768, all 32767, random), it still matches
    the int64 NumPy reference; one more level of range takes the int64 path, also exact."""
    span = mdc2.K.RESTORE_INT32_SPAN
    assert 6 * 32768 * 2 * span + 128 < 2**31 <= 6 * 32768 * 2 * (span + 1) + 128 + 6 * 32768 * 2
    rng = np.random.default_rng(34)
    for lo, hi in ((0, span), (-2048, -2048 + span), (0, span + 1)):
        img = rng.choice(np.array([lo, hi], np.int32), (23, 41))
        img = img.astype(np.uint16 if lo >= 0 else np.int16)
        for weights in (np.full((3, 6), -32768), np.full((3, 6), 32767), rng.integers(-32768, 32768, (3, 6))):
            for thr in ([0, 0], [0, 2**32 - 1], [10, 10**6]):
                flt = mdc2.RestorationFilter(np.array(thr, np.int64), weights.astype(np.int64), 65535)
                np.testing.assert_array_equal(flt.apply(img, lo, hi), _restore_reference(img, flt, lo, hi))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64])
def test_int_quantiles_are_numpys(dtype: type) -> None:
    """The counting quantiles the encoder uses give np.quantile's values exactly ("lower" for the
    filter's activity classes, "nearest" for the range bits), sizes 1..65536, wide spans sorted."""
    rng = np.random.default_rng(35)
    info = np.iinfo(dtype)
    for n in (1, 2, 3, 7, 100, 37449, 65536):
        x = rng.integers(max(info.min, -40000), min(info.max, 70000) + 1, n).astype(dtype)
        for method, q in (("lower", np.arange(1, 8) / 8), ("nearest", (0.001, 0.999)), ("lower", (0.0, 0.5, 1.0))):
            np.testing.assert_array_equal(mdc2.int_quantiles(x, q, method), np.quantile(x, q, method=method))
    if info.max > 2**23:  # a span beyond the counting limit: sorted instead, same values
        x = np.array([info.min + 1, 0, info.max, 5, 7], dtype)
        np.testing.assert_array_equal(mdc2.int_quantiles(x, (0.25, 0.75), "lower"), np.quantile(x, (0.25, 0.75), method="lower"))
    with pytest.raises(medcodec.InvalidInputError):
        mdc2.int_quantiles(np.zeros(3), (0.5,), "lower")


def test_deblocking_band_gain_is_the_whole_frames_on_those_rows() -> None:
    """The deblocking search's bands: a band filtered alone gives rows 1 .. band - 2 exactly as the
    filter on the whole frame, so its gain is the whole-frame filter's gain on those rows; and on a
    frame large enough to search on bands, deblocked_frame still returns the decoder's frame."""
    from medcodec.codec.framecoder import FrameCoder

    img = _image((300, 77), 12, seed=5)
    coder = FrameCoder.for_table(quantize.quant_table(25, 12), 12, False)
    levels = coder.levels(img)
    base = coder.reconstruct(levels, *img.shape)
    starts = np.asarray(mdc2._deblock_bands(300), np.int64)
    assert len(starts) >= 4 and not np.any(starts % 8)
    for params in ((40, 21, 5), (200, 101, 30), (65535, 32768, 65535)):
        whole = base.copy()
        mdc2.K.deblock(whole, *params, 0, 4095)
        want = sum(mdc2.K.squared_error(base[y0 + 1 : y0 + 15], img[y0 + 1 : y0 + 15])
                   - mdc2.K.squared_error(whole[y0 + 1 : y0 + 15], img[y0 + 1 : y0 + 15]) for y0 in starts)  # fmt: skip
        got = mdc2.K.deblock_band_gain(base, img, starts, mdc2.DEBLOCK_BAND, *params, 0, 4095,
                                       np.empty((mdc2.DEBLOCK_BAND, 77), base.dtype))  # fmt: skip
        assert got == want
    params, got = mdc2.deblocked_frame(coder, levels, None, img)
    assert params is not None
    np.testing.assert_array_equal(got, mdc2.decoded_before_restoration(coder, levels, None, params, *img.shape))
    assert mdc2.K.squared_error(got, img) < mdc2.K.squared_error(base, img)


def test_one_bin_filter_stats_are_the_binned_ones() -> None:
    """filter_stats_one (fast encoding's one-class statistics, vectorised by rows) gives the sums
    filter_stats gives with every sample in one bin, exactly (integer terms), on odd and tiny
    shapes, 12- and 16-bit extremes."""
    rng = np.random.default_rng(36)
    for shape in ((1, 1), (2, 3), (4, 5), (5, 4), (9, 7), (64, 64), (37, 91)):
        for hi in (4095, 65535):
            dec = rng.choice(np.array([0, 1, hi // 2, hi], np.uint16), shape)
            orig = rng.integers(0, hi + 1, shape).astype(np.uint16)
            got = (np.zeros((1, 6, 6)), np.zeros((1, 6)), np.zeros(1, np.int64), np.zeros(1), np.zeros(1))
            want = tuple(np.zeros_like(g) for g in got)
            mdc2.K.filter_stats_one(dec, orig, *got)
            bins = np.zeros(((shape[0] + 1) // 2, (shape[1] + 1) // 2), np.int64)
            mdc2.K.filter_stats(dec, orig, bins, 1, *want)
            assert want[2][0] == bins.size
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, w)


def test_fused_offsets_inverse_dct_is_the_two_step_one() -> None:
    """reconstruct_with_offsets (levels_pixels_offsets: the offsets applied inside the inverse
    DCT) gives the pixels of offset_levels followed by the v1 inverse path, bit for bit: sparse,
    huge (clipped at 2**22), DC-only and int32-extreme levels; 8- to 16-bit, signed, odd shapes."""
    from medcodec.codec import _kernels as KK
    from medcodec.codec.framecoder import FrameCoder

    rng = np.random.default_rng(37)
    for bits, signed in ((12, False), (16, True), (8, False), (16, False)):
        for shape in ((1, 1), (7, 9), (33, 70), (64, 64)):
            coder = FrameCoder.for_table(quantize.quant_table(int(rng.integers(5, 100)), bits), bits, signed)
            by, bx = transform.blocks_shape(*shape)
            n = by * bx
            cases = (rng.integers(-3, 4, (n, 64)) * (rng.random((n, 64)) < 0.3), rng.integers(-(2**23), 2**23, (n, 64)),
                     np.pad(rng.integers(-500, 500, (n, 1)), ((0, 0), (0, 63))),
                     rng.choice(np.array([-(2**31) + 1, 2**31 - 1, 0, 1, -1]), (n, 64)))  # fmt: skip
            for lv in cases:
                lv = lv.astype(np.int32)
                offsets = rng.integers(0, 129, 63).astype(np.uint8)
                off = np.zeros(64, np.int32)
                off[1:] = offsets
                deq, dc_mul = transform.inverse_multipliers(coder.steps_zz)
                want = KK.levels_pixels(mdc2.K.offset_levels(lv, off, 256, np.empty_like(lv)), deq / 256,
                                        transform.NAT_ZZ, dc_mul / 256, float(coder.offset), coder._lo, coder._hi,
                                        np.empty(shape, coder._dtype), np.bool_(False))  # fmt: skip
                np.testing.assert_array_equal(mdc2.reconstruct_with_offsets(coder, lv, offsets, *shape), want)


def test_padding_masks_in_format_23_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 2.3 (docs/format.md §15): the mask follows the coded bytes of a FRAM with flag bit 4;
    a reader refuses that bit where the stream cannot have it and a mask length that disagrees."""
    img = np.full((24, 40), 900, np.int16)
    img[:, :6] = -2000  # padding
    img[6:18, 10:30] = (np.arange(20, dtype=np.int16) * 37) % 700
    data = medcodec.encode(img, bits_stored=16, quality=40, padding=(-2000, -2000), compact=False)
    header, index = container.parse_container(data)
    assert header.version == (2, 12) and header.meta["padding"] == [-2000, -2000]  # 2.3's masks, 2.6's intra frames (2.11's level contexts)
    frame = mdc2.read_dct_frame(data, header, index[0])
    np.testing.assert_array_equal(container.decode_padding_mask(frame.padding_mask, 24, 40), img == -2000)
    out = medcodec.decode(data)
    assert (out[:, :6] == -2000).all() and not (out[:, 6:] == -2000).any()
    older = replace(header, version=(2, 1))
    with pytest.raises(medcodec.CorruptStreamError, match="unknown bits"):
        mdc2.read_dct_frame(data, older, index[0])
    undeclared = replace(header, meta={k: v for k, v in header.meta.items() if k != "padding"})
    with pytest.raises(medcodec.CorruptStreamError, match="unknown bits"):
        mdc2.read_dct_frame(data, undeclared, index[0])
    off, size = index[0]
    payload = bytearray(container.frame_payload(data, index[0]))
    nmask = len(frame.padding_mask)
    assert struct.unpack_from("<I", payload, len(payload) - nmask - 4)[0] == nmask  # u32 nmask, then the mask
    struct.pack_into("<I", payload, len(payload) - nmask - 4, nmask + 1)
    seg = container._segment(b"FRAM", bytes(payload))  # a valid CRC: the reader must check the length itself
    assert len(seg) == size
    bad = data[:off] + seg + data[off + size :]
    with pytest.raises(medcodec.CorruptStreamError, match="padding mask length"):
        mdc2.read_dct_frame(bad, header, index[0])
    cut = container._segment(b"FRAM", bytes(payload[: len(payload) - nmask - 2]))  # flag 16, nmask cut short
    with pytest.raises(medcodec.TruncatedStreamError, match="padding mask cut off"):
        mdc2.read_dct_frame(data[:off] + cut + data[off + size :], header, (off, len(cut)))
    monkeypatch.setattr(mdc, "AUTO_PADDING", False)  # (else the default coder may declare it itself: test_padfill)
    no_pad = medcodec.encode(img, bits_stored=16, quality=40, compact=False)  # nothing declared: padding coded as voxels
    assert medcodec.read_header(no_pad).version == (2, 12) and "padding" not in medcodec.read_header(no_pad).meta
