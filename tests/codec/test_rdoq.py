"""Rate-distortion optimised quantization: kernels against their twins, optimality, modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medcodec.codec import _rdoq, entropy, quantize
from medcodec.codec.pipeline import FrameCoder
from medcodec.errors import InvalidInputError


def _scaled_blocks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Coefficients / steps with a realistic decay along the zigzag order and some big outliers."""
    decay = 6.0 * np.exp(-np.arange(64) / 12.0) + 0.3
    x = rng.laplace(size=(n, 64)) * decay
    x[:, 0] = rng.normal(0, 40, n)
    x[rng.random((n, 64)) < 0.01] *= 40
    return x


def _random_bits(rng: np.random.Generator, size_bits: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(1, 16, 1 << size_bits), rng.uniform(1, 16, 16 << size_bits)


def _block_cost(levels: np.ndarray, x: np.ndarray, weights: np.ndarray, ac_bits: np.ndarray, size_bits: int, lam: float) -> float:
    """J = D + lam R of one block's AC part, with R from ``ac_bits`` (the trellis's own model)."""
    d = float(np.sum(weights[1:] * (x[1:] - levels[1:]) ** 2))
    nz = np.flatnonzero(levels[1:]) + 1
    rate, prev = 0.0, 0
    for k in nz:
        run = k - prev - 1
        s = int(abs(int(levels[k]))).bit_length()
        rate += (run // 16) * ac_bits[15 << size_bits] + ac_bits[((run % 16) << size_bits) | s] + s
        prev = k
    if prev < 63:
        rate += ac_bits[0]
    return d + lam * rate


@pytest.mark.parametrize("size_bits", [4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trellis_kernel_matches_reference(size_bits, seed):
    rng = np.random.default_rng(seed)
    x = _scaled_blocks(rng, 40)
    weights = rng.uniform(20, 400, 64)
    _, ac_bits = _random_bits(rng, size_bits)
    lam = float(rng.uniform(2, 60))
    got = _rdoq.trellis_blocks(x, weights, ac_bits, size_bits, lam, np.empty(x.shape, np.int32))
    want = _rdoq.trellis_blocks_reference(x, weights, ac_bits, size_bits, lam)
    for b in range(len(x)):  # equal cost; levels equal unless two paths tie exactly
        cg = _block_cost(got[b], x[b], weights, ac_bits, size_bits, lam)
        cw = _block_cost(want[b], x[b], weights, ac_bits, size_bits, lam)
        assert cg == pytest.approx(cw, rel=1e-12, abs=1e-9)
    assert np.mean(np.all(got == want, axis=1)) > 0.95
    np.testing.assert_array_equal(got[:, 0], want[:, 0])


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_trellis_dc_kernel_matches_reference(seed, clip):
    rng = np.random.default_rng(seed)
    dc = np.cumsum(rng.normal(0, 3, 300)) + rng.normal(0, 0.4, 300)
    dc_bits = rng.uniform(1, 12, 16)
    lo, hi = (np.quantile(dc, 0.3), np.quantile(dc, 0.8)) if clip else (-np.inf, np.inf)
    flat = (rng.random(300) < 0.7).astype(np.uint8)
    out = np.zeros((300, 64), np.int32)
    _rdoq.trellis_dc(dc, 150.0, dc_bits, 40.0, out, lo, hi, flat)
    np.testing.assert_array_equal(out[:, 0], _rdoq.trellis_dc_reference(dc, 150.0, dc_bits, 40.0, lo, hi, flat))
    assert np.all(np.abs(out[:, 0] - np.rint(dc)) <= 1)
    if clip:  # clipping changes decisions: a flat block beyond an end is free to go further out
        plain = np.zeros((300, 64), np.int32)
        _rdoq.trellis_dc(dc, 150.0, dc_bits, 40.0, plain, -np.inf, np.inf, flat)
        assert np.any(out[:, 0] != plain[:, 0])


def test_trellis_dc_codes_a_black_background_exactly():
    """A block with no AC level is decoded as its clipped constant: at the lower end of the sample
    range the level below the coefficient costs no error (it decodes to 0, clipped), the rounded
    one does when the step does not divide the level shift."""
    x = np.full(50, 8 * (0 - 2048) / 48.0)  # black blocks, step 48: x = -341.33
    dc_bits = np.full(16, 4.0)
    out = np.zeros((50, 64), np.int32)
    _rdoq.trellis_dc(x, 48.0**2, dc_bits, 1.0, out, x[0], np.inf, np.ones(50, np.uint8))
    assert np.all(out[:, 0] == -342)  # 48 * -342 / 8 + 2048 = -4: clipped to 0, exact
    _rdoq.trellis_dc(x, 48.0**2, dc_bits, 1.0, out, -np.inf, np.inf, np.ones(50, np.uint8))
    assert np.all(out[:, 0] == -341)  # without clipping: rounded, decoded as 2


def test_trellis_is_optimal_in_its_model():
    """Beats plain rounding, and every single-coefficient change of its result, in J."""
    rng = np.random.default_rng(5)
    x = _scaled_blocks(rng, 30)
    weights = np.full(64, 100.0)
    _, ac_bits = _random_bits(rng, 4)
    lam = 25.0
    lv = _rdoq.trellis_blocks(x, weights, ac_bits, 4, lam, np.empty(x.shape, np.int32))
    rounded = quantize.round_levels(x)
    for b in range(len(x)):
        j = _block_cost(lv[b], x[b], weights, ac_bits, 4, lam)
        assert j <= _block_cost(rounded[b], x[b], weights, ac_bits, 4, lam) + 1e-9
        for k in rng.choice(np.arange(1, 64), 8, replace=False):
            for alt in {0, int(rounded[b, k])}:
                trial = lv[b].copy()
                trial[k] = alt
                assert j <= _block_cost(trial, x[b], weights, ac_bits, 4, lam) + 1e-9


def test_trellis_levels_never_exceed_rounding():
    rng = np.random.default_rng(7)
    x = _scaled_blocks(rng, 200)
    lv = _rdoq.rdo_levels(x, np.full(64, 10.0), mode="trellis", size_bits=4)
    r = quantize.round_levels(x)
    assert np.all(np.abs(lv[:, 1:]) <= np.abs(r[:, 1:]))
    assert np.all((lv == 0) | (np.sign(lv) == np.sign(r)))
    assert np.all(np.abs(lv[:, 0] - r[:, 0]) <= 1)
    assert np.count_nonzero(lv) < np.count_nonzero(r)


def test_threshold_mode():
    x = np.zeros((1, 64))
    x[0, [0, 3, 10, 11, 12, 30, 40]] = [5.4, 0.9, 0.55, 1.2, 0.8, -0.7, -1.3]
    lv = _rdoq.threshold_levels(x)
    assert lv[0, 0] == 5
    assert lv[0, 3] == 0 and lv[0, 30] == 0  # isolated +-1 from |x| < THRESHOLD_ISOLATED
    assert lv[0, 10] == 0  # inside the dead zone
    assert lv[0, 11] == 1 and lv[0, 12] == 1  # neighbours: not isolated
    assert lv[0, 40] == -1  # isolated but |x| >= THRESHOLD_ISOLATED
    assert np.count_nonzero(lv) == 4


def test_rdo_levels_modes():
    rng = np.random.default_rng(3)
    x = _scaled_blocks(rng, 10)
    np.testing.assert_array_equal(_rdoq.rdo_levels(x, np.ones(64), mode="none", size_bits=4), quantize.round_levels(x))
    with pytest.raises(ValueError):
        _rdoq.rdo_levels(x, np.ones(64), mode="bogus", size_bits=4)
    assert _rdoq.default_lambda(np.full(64, 10.0)) == pytest.approx(_rdoq.LAMBDA_SCALE * 100)


def _frame(rows: int = 64, cols: int = 80) -> np.ndarray:
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:rows, 0:cols]
    return (2000 + 900 * np.sin(x / 7) * np.cos(y / 5) + rng.normal(0, 25, (rows, cols))).clip(0, 4095).astype(np.uint16)


@pytest.mark.parametrize("size_bits", [4, 5])
def test_frame_coder_rdo_trades_error_for_bits(size_bits):
    """Same steps: trellis spends fewer bits, and its J with a real Huffman coder is lower."""
    frame = _frame()
    steps = quantize.quant_table(60, 12, table="flat")
    plain = FrameCoder(steps, 12, False)
    trellis = FrameCoder(steps, 12, False, rdo="trellis", rdo_size_bits=size_bits)
    results = {}
    for name, coder in (("plain", plain), ("trellis", trellis)):
        lv = coder.levels(frame)
        bits = entropy.scan_bits(lv, size_bits=size_bits)
        sse = float(np.sum((coder.reconstruct(lv, *frame.shape).astype(float) - frame) ** 2))
        results[name] = (bits, sse)
    lam = _rdoq.default_lambda(quantize.steps_zigzag(steps))
    assert results["trellis"][0] < 0.9 * results["plain"][0]
    assert results["trellis"][1] > results["plain"][1]
    j = {k: sse + lam * bits for k, (bits, sse) in results.items()}
    assert j["trellis"] < j["plain"]


def test_frame_coder_rejects_unknown_rdo():
    with pytest.raises(InvalidInputError, match="rdo"):
        FrameCoder(np.ones(64), 12, False, rdo="fast")


def test_symbol_bits_prices_every_symbol():
    lv = np.zeros((4, 64), np.int32)
    lv[:, 1] = 1
    dc_bits, ac_bits = _rdoq.symbol_bits(lv, size_bits=4)
    assert dc_bits.shape == (16,) and ac_bits.shape == (256,)
    assert np.all(np.isfinite(ac_bits)) and ac_bits[1] < ac_bits[0x23]
    assert math.isclose(float(np.sum(2.0**-ac_bits)), 1.0)


@pytest.mark.parametrize("size_bits", [4, 5])
@pytest.mark.parametrize("seed", [3, 4])
def test_windowed_trellis_kernel_matches_reference(size_bits, seed):
    rng = np.random.default_rng(seed)
    x = _scaled_blocks(rng, 30)
    weights = rng.uniform(20, 400, 64)
    _, ac_bits = _random_bits(rng, size_bits)
    lam = float(rng.uniform(2, 60))
    window = _rdoq.TRELLIS_WINDOW
    got = _rdoq.trellis_blocks(x, weights, ac_bits, size_bits, lam, np.empty(x.shape, np.int32), window)
    want = _rdoq.trellis_blocks_reference(x, weights, ac_bits, size_bits, lam, window)
    for b in range(len(x)):
        cg = _block_cost(got[b], x[b], weights, ac_bits, size_bits, lam)
        cw = _block_cost(want[b], x[b], weights, ac_bits, size_bits, lam)
        assert cg == pytest.approx(cw, rel=1e-12, abs=1e-9)
    # the window never beats the full search, and costs little
    full = _rdoq.trellis_blocks(x, weights, ac_bits, size_bits, lam, np.empty(x.shape, np.int32))
    for b in range(len(x)):
        assert _block_cost(full[b], x[b], weights, ac_bits, size_bits, lam) <= _block_cost(
            got[b], x[b], weights, ac_bits, size_bits, lam
        ) + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_threshold_kernel_matches_numpy(seed):
    x = _scaled_blocks(np.random.default_rng(seed), 200)
    got = _rdoq.threshold_blocks(x, _rdoq.THRESHOLD_DEADZONE, _rdoq.THRESHOLD_ISOLATED, np.empty(x.shape, np.int32))
    np.testing.assert_array_equal(got, _rdoq.threshold_levels(x))


def test_effort_levels():
    import medcodec

    rng = np.random.default_rng(9)
    img = np.clip(2000 + np.cumsum(rng.normal(0, 20, (128, 96)), axis=1), 0, 4095).astype(np.uint16)
    sizes = {}
    for fmt in ("mdc", "jpeg"):
        for effort in ("fast", "best"):
            data = medcodec.encode(img, bits_stored=12, quality=60, format=fmt, effort=effort)
            out = medcodec.decode(data)
            assert out.shape == img.shape
            assert np.abs(out.astype(int) - img).max() < 200
            sizes[fmt, effort] = len(data)
    # different level choices (which is smaller at equal PSNR is measured on real CT by
    # benchmarks/bench_speed.py and bench_jpeg_vs_libjpeg_turbo.py, not on this noise)
    assert sizes["jpeg", "best"] != sizes["jpeg", "fast"]
    assert sizes["mdc", "best"] != sizes["mdc", "fast"]
    with pytest.raises(InvalidInputError):
        medcodec.encode(img, bits_stored=12, effort="slow")
