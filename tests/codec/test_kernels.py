"""Every numba kernel against its plain-Python reference twin (STYLE.md testing habit 6)."""

from __future__ import annotations

import numpy as np
import pytest

from medcodec.codec import _kernels as K
from medcodec.codec import entropy
from medcodec.codec.entropy import HuffmanTable


def sparse_levels(rng: np.random.Generator, nblocks: int, scale: float, size_bits: int) -> np.ndarray:
    """Zigzag levels shaped like real DCT output: big DC, decaying sparse AC."""
    decay = np.exp(-np.arange(64) / 10.0)
    lv = np.rint(rng.laplace(0, scale, (nblocks, 64)) * decay).astype(np.int32)
    lv[:, 0] = np.cumsum(rng.integers(-40, 40, nblocks))
    lv[rng.random((nblocks, 64)) < 0.5] = 0
    cap = (1 << (14 if size_bits == 4 else 18)) - 1
    return np.clip(lv, -cap, cap)


@pytest.mark.parametrize("size_bits", [4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encode_scan_matches_reference_bit_for_bit(size_bits: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    zz = sparse_levels(rng, 50, 30.0, size_bits)
    zz[3, 1:] = 0  # an all-zero block
    zz[4, 63] = 5  # a block without EOB
    zz[5, 1:] = 0
    zz[5, 40] = 1  # run > 16 needs ZRL
    coded, dc, ac = entropy.encode_scan(zz, size_bits=size_bits)
    assert coded == entropy.encode_scan_reference(zz, dc, ac, size_bits=size_bits)
    back = entropy.decode_scan_reference(coded, len(zz), dc, ac, size_bits=size_bits)
    np.testing.assert_array_equal(back, zz)
    fast = entropy.decode_scan(coded, len(zz), dc, ac, size_bits=size_bits, bits_stored=16)
    np.testing.assert_array_equal(fast, zz)


@pytest.mark.parametrize("seed", range(5))
def test_code_sizes_optimal_like_heap_huffman(seed: int) -> None:
    rng = np.random.default_rng(seed)
    freq = rng.integers(0, 1000, 40) * (rng.random(40) < 0.7)
    freq[0] = max(freq[0], 1)
    used = np.flatnonzero(freq)
    k2 = K.code_sizes(freq[used].astype(np.int64))
    ref = entropy.code_sizes_reference(freq[used])
    weights = np.append(freq[used], 1)
    assert int(np.dot(k2, weights)) == int(np.dot(ref, weights))


def _code_sizes_figure_k1(freq: np.ndarray) -> np.ndarray:
    """T.81 Figure K.1 literally: V1 / V2 found by scanning every symbol (the largest index
    among equal frequencies), the reserved symbol (frequency 1) last."""
    f = [int(v) for v in freq] + [1]
    size = [0] * len(f)
    others = [-1] * len(f)
    while True:
        v1 = v2 = -1
        for i, fi in enumerate(f):
            if fi == 0:
                continue
            if v1 < 0 or fi <= f[v1]:
                v1, v2 = i, v1
            elif v2 < 0 or fi <= f[v2]:
                v2 = i
        if v2 < 0:
            return np.array(size)
        f[v1] += f[v2]
        f[v2] = 0
        for v in (v1, v2):  # every symbol of both merged trees gets one bit longer
            size[v] += 1
            while others[v] >= 0:
                v = others[v]
                size[v] += 1
        v = v1  # V2's chain goes after the end of V1's (OTHERS(V1) = V2)
        while others[v] >= 0:
            v = others[v]
        others[v] = v2


@pytest.mark.parametrize("seed", range(4))
def test_code_sizes_heap_picks_what_figure_k1_scans(seed: int) -> None:
    """The kernel's heap picks the same V1 / V2 as Figure K.1's scan, ties included (equal
    frequencies are where an implementation's choice shows): the same code sizes, not just an
    equally good code."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 257))
        freq = rng.integers(1, int(rng.choice([2, 3, 6, 1000])), n).astype(np.int64)
        np.testing.assert_array_equal(K.code_sizes(freq), _code_sizes_figure_k1(freq))


def test_length_limit_16_on_skewed_frequencies() -> None:
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    freq = np.array(fib, dtype=np.int64)
    table = HuffmanTable.from_frequencies(freq)
    table.validate(len(freq))
    sizes, _ = table.codes()
    assert sizes.max() <= 16
    assert len(table.huffval) == len(freq)
    # a code of all ones must not exist (T.81 §K.2 reserved code point)
    sizes, codes = table.codes()
    assert not any(int(c) == (1 << int(s)) - 1 for s, c in zip(sizes, codes))


def test_bit_length_matches_python() -> None:
    for v in [0, 1, -1, 2, -3, 255, -256, 65535, -(1 << 18)]:
        assert K.bit_length(v) == abs(v).bit_length()


def test_restart_and_stuffing_round_trip() -> None:
    rng = np.random.default_rng(7)
    zz = sparse_levels(rng, 37, 200.0, 4)
    coded, dc, ac = entropy.encode_scan(zz, size_bits=4, stuff=True, restart_interval=5)
    raw = np.frombuffer(coded, np.uint8)
    ff = np.flatnonzero(raw[:-1] == 0xFF)
    assert all(raw[i + 1] == 0 or 0xD0 <= raw[i + 1] <= 0xD7 for i in ff)
    assert sum(0xD0 <= raw[i + 1] <= 0xD7 for i in ff) == (37 - 1) // 5
    back = entropy.decode_scan(coded, 37, dc, ac, size_bits=4, bits_stored=12, stuffed=True, restart_interval=5)
    np.testing.assert_array_equal(back, zz)


def test_scan_bits_is_exact() -> None:
    rng = np.random.default_rng(3)
    zz = sparse_levels(rng, 200, 50.0, 5)
    coded, _, _ = entropy.encode_scan(zz, size_bits=5)
    assert len(coded) == -(-entropy.scan_bits(zz, size_bits=5) // 8)


# --------------------------------------------------------------------------------------
# Fused forward / inverse kernels against the NumPy reference path (blockify + GEMM)
# --------------------------------------------------------------------------------------

from medcodec.codec import levelshift, quantize, transform  # noqa: E402
from medcodec.codec.pipeline import FrameCoder  # noqa: E402
from medcodec.spec import value_range  # noqa: E402


def ct_like(shape: tuple[int, int], bits: int, signed: bool, seed: int) -> np.ndarray:
    """Smooth body, flat padding, noise and an edge: the kinds of blocks a CT has."""
    rng = np.random.default_rng(seed)
    lo, hi = value_range(bits, signed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    body = (np.hypot(y - shape[0] / 2, x - shape[1] / 2) < 0.35 * max(shape)).astype(float)
    img = lo + (hi - lo) * (0.1 + 0.5 * body + 0.05 * np.sin(x / 3.0)) + body * rng.normal(0, 0.02 * (hi - lo), shape)
    dtype = (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed else np.uint16)
    return np.clip(np.rint(img), lo, hi).astype(dtype)


CASES = [((40, 52), 12, False), ((33, 47), 16, True), ((24, 24), 10, False), ((17, 64), 8, False), ((9, 5), 8, True)]


def coder_for(img: np.ndarray, bits: int, signed: bool, quality: float) -> FrameCoder:
    vmin, vmax = levelshift.check_range(img, bits, signed)
    return FrameCoder(quantize.quant_table(quality, levelshift.range_bits(vmin, vmax, bits)), bits, signed)


def ties(scaled: np.ndarray) -> np.ndarray:
    """Where a reference value lies within rounding noise of a half-integer (a tie)."""
    return np.abs(np.abs(scaled) % 1.0 - 0.5) < 1e-9


@pytest.mark.parametrize("shape, bits, signed", CASES)
@pytest.mark.parametrize("quality", [20, 75, 100])
def test_fused_forward_matches_gemm_reference(shape, bits, signed, quality) -> None:
    img = ct_like(shape, bits, signed, seed=quality)
    coder = coder_for(img, bits, signed, quality)
    ref_scaled = transform.blockify(img.astype(np.float64) - coder.offset) @ transform.analysis_matrix(coder.steps_zz)
    np.testing.assert_allclose(coder.scaled(img), ref_scaled, rtol=1e-12, atol=1e-9)
    got, want = coder.levels(img), coder.levels_reference(img)
    differ = got != want
    assert not np.any(differ & ~ties(ref_scaled)), "levels differ away from a rounding tie"
    assert np.all(np.abs(got - want) <= 1)


def test_exact_ties_round_away_from_zero() -> None:
    """A constant block whose DC is exactly k + 1/2 steps: the fused path sees the exact half."""
    coder = FrameCoder(np.full(64, 16, np.uint16), 12, False)
    # orthonormal DC of a constant block = 8 (v - 2048); / step 16: (v - 2048) / 2
    for v, level in ((2048 + 5, 3), (2048 - 5, -3), (2048 + 1, 1), (2048 - 1, -1)):
        assert coder.levels(np.full((8, 8), v, np.uint16))[0, 0] == level


@pytest.mark.parametrize("shape, bits, signed", CASES)
@pytest.mark.parametrize("restart_interval", [0, 3])
def test_fused_encoder_bytes_equal_levels_then_entropy(shape, bits, signed, restart_interval) -> None:
    img = ct_like(shape, bits, signed, seed=5)
    coder = coder_for(img, bits, signed, 60)
    for size_bits, stuff in ((5, False), (4, True)):
        if size_bits == 4 and bits > 12:
            continue
        fused = coder.encode_frame(img, size_bits=size_bits, stuff=stuff, restart_interval=restart_interval)
        coded, dc, ac = entropy.encode_scan(coder.levels(img), size_bits=size_bits, stuff=stuff,
                                            restart_interval=restart_interval)  # fmt: skip
        assert fused.coded == coded
        for a, b in ((fused.dc_table, dc), (fused.ac_table, ac)):
            np.testing.assert_array_equal(a.bits, b.bits)
            np.testing.assert_array_equal(a.huffval, b.huffval)


@pytest.mark.parametrize("seed", range(6))
def test_huffman_table_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([12, 32, 256, 512]))
    freq = (rng.pareto(0.7, n) * 10).astype(np.int64) * (rng.random(n) < 0.6)
    if seed == 5:  # skewed enough that Adjust_BITS (Figure K.3) has to shorten codes
        freq = np.array([1, 1] + [int(1.6**k) for k in range(2, 40)], np.int64)
    fast, ref = HuffmanTable.from_frequencies(freq), HuffmanTable.from_frequencies_reference(freq)
    np.testing.assert_array_equal(fast.bits, ref.bits)
    np.testing.assert_array_equal(fast.huffval, ref.huffval)
    want = HuffmanTable(ref.bits, ref.huffval).encoder_arrays(n)  # Python Figures C.1-C.3
    for a, b in zip(fast.encoder_arrays(n), want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, bits, signed", CASES)
@pytest.mark.parametrize("quality", [30, 90])
def test_fused_decoder_matches_reference(shape, bits, signed, quality) -> None:
    img = ct_like(shape, bits, signed, seed=quality + 1)
    coder = coder_for(img, bits, signed, quality)
    levels = coder.levels(img)
    want = coder.reconstruct_reference(levels, *shape)
    values = transform.unblockify(levels @ transform.synthesis_matrix(coder.steps_zz), *shape) + coder.offset
    for size_bits, stuff, ri in ((5, False, 0), (4, True, 0), (4, True, 2)):
        if size_bits == 4 and bits > 12:
            continue
        enc = coder.encode_frame(img, size_bits=size_bits, stuff=stuff, restart_interval=ri)
        got = coder.decode_frame(enc.coded, enc.dc_table, enc.ac_table, *shape, size_bits=size_bits, stuffed=stuff,
                                 restart_interval=ri)  # fmt: skip
        assert got.dtype == want.dtype
        differ = got != want
        # only where the reference value is a rounding tie (within float noise of k + 1/2)
        assert not np.any(differ & ~ties(values)), "pixels differ away from a rounding tie"
        np.testing.assert_array_equal(coder.reconstruct(levels, *shape), got)


def test_dc_only_blocks_decode_exactly_like_the_reference() -> None:
    """DC-only blocks reproduce the reference product bit for bit, ties included."""
    coder = FrameCoder(np.full(64, 12, np.uint16), 12, False)
    levels = np.zeros((64, 64), np.int32)
    levels[:, 0] = np.arange(-32, 32) * 3  # many DC * 12 / 8 = k + 1/2
    want = coder.reconstruct_reference(levels, 64, 64)
    np.testing.assert_array_equal(coder.reconstruct(levels, 64, 64), want)


def test_end_counts_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = rng.choice([-2000, -5, 0, 7, 300, 3000], rng.integers(1, 300)).astype(np.int16)
        lo, hi = int(a.min()), int(a.max())
        assert levelshift.content_range_bits(a, lo, hi, 16) == levelshift.content_range_bits_reference(a, lo, hi, 16)
        clo, chi, nlo, nhi = K.end_counts(a, lo, hi)
        rest_lo, rest_hi = a[a != lo], a[a != hi]
        assert (clo, chi) == (np.sum(a == lo), np.sum(a == hi))
        assert nlo == (rest_lo.min() if rest_lo.size else hi) and nhi == (rest_hi.max() if rest_hi.size else lo)


def test_bit_scans_match_python() -> None:
    for v in [1, 2, 3, 12, 1 << 20, (1 << 62) + 5]:
        assert K._ctz64(v) == (v & -v).bit_length() - 1
        assert K._clz64(v) == 64 - v.bit_length()
    assert K._clz64(0) == 64
