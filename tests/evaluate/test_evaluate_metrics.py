"""Metrics against hand-computed values.

Every expected number below is worked out in the comment next to it, from the definitions in
medcodec.evaluate.metrics (not from the code under test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from medcodec.errors import InvalidInputError
from medcodec.evaluate import metrics as M
from medcodec.spec import PixelSpec

# --------------------------------------------------------------------------- PSNR


def test_psnr_12bit_in_uint16_uses_4095_not_the_dtype_peak() -> None:
    ref = np.full((4, 4), 2000, dtype=np.uint16)
    test = ref.copy()
    test[0, 0] += 4  # squared error 16 over 16 pixels -> MSE 1
    # PSNR = 10 log10(4095^2 / 1) = 20 log10(4095) = 72.24508 dB
    assert M.psnr(ref, test, bits_stored=12) == pytest.approx(72.24508, abs=1e-5)
    # the dtype-derived peak (65535) would give 20 log10(65535) = 96.32946 dB: 24.08 dB too high
    assert M.psnr(ref, test, peak=65535) == pytest.approx(96.32946, abs=1e-5)
    assert M.psnr(ref, test, bits_stored=16) == pytest.approx(96.32946, abs=1e-5)


def test_psnr_needs_exactly_one_of_bits_stored_or_peak() -> None:
    a = np.zeros((2, 2), np.uint16)
    with pytest.raises(InvalidInputError):
        M.psnr(a, a + 1)
    with pytest.raises(ValueError):  # InvalidInputError is also a ValueError
        M.psnr(a, a + 1, bits_stored=12, peak=4095)
    with pytest.raises(InvalidInputError):
        M.psnr(a, a + 1, peak=0)


def test_psnr_identical_is_infinite() -> None:
    a = np.arange(16, dtype=np.uint16).reshape(4, 4)
    assert M.psnr(a, a, bits_stored=12) == math.inf


def test_psnr_minmax_uses_reference_range() -> None:
    ref = np.array([[1000, 3000], [2000, 2500]], dtype=np.uint16)  # max - min = 2000
    test = ref + 2  # MSE 4
    # 10 log10(2000^2 / 4) = 20 log10(1000) = 60 dB exactly
    assert M.psnr_minmax(ref, test) == pytest.approx(60.0, abs=1e-12)
    # the 2^12-1 convention for the same error: 20 log10(4095 / 2) = 66.22448 dB
    assert M.psnr(ref, test, bits_stored=12) == pytest.approx(66.22448, abs=1e-5)


def test_errors_do_not_wrap_around_in_unsigned_arithmetic() -> None:
    a = np.array([[0]], dtype=np.uint16)
    b = np.array([[4095]], dtype=np.uint16)
    assert M.mse(a, b) == 4095.0**2  # 16769025, not (0 - 4095) mod 65536
    assert M.max_abs_error(a, b) == 4095.0
    s1 = np.array([[-2000]], dtype=np.int16)
    s2 = np.array([[2000]], dtype=np.int16)
    assert M.max_abs_error(s1, s2) == 4000.0


def test_rmse_and_max_error_in_stored_units_and_hu() -> None:
    spec = PixelSpec(bits_stored=12, rescale_slope=2.5, rescale_intercept=-1024.0)
    ref = np.array([[0, 10], [20, 30]], dtype=np.uint16)
    test = np.array([[1, 10], [20, 27]], dtype=np.uint16)
    # differences 1, 0, 0, -3: MSE = 10 / 4 = 2.5, RMSE = sqrt(2.5) = 1.58114, max 3
    m = M.compare(ref, test, spec, with_ssim=False)
    assert m["mse"] == pytest.approx(2.5)
    assert m["rmse"] == pytest.approx(1.5811388, abs=1e-7)
    assert m["max_abs_error"] == 3.0
    # in HU the slope scales errors: RMSE 2.5 * 1.58114 = 3.95285, max 7.5 HU
    assert m["rmse_hu"] == pytest.approx(3.9528471, abs=1e-7)
    assert m["max_abs_error_hu"] == pytest.approx(7.5)
    # PSNR: 10 log10(4095^2 / 2.5) = 68.26568 dB
    assert m["psnr_db"] == pytest.approx(68.26568, abs=1e-5)
    assert m["lossless"] is False


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        M.mse(np.zeros((2, 2)), np.zeros((2, 3)))


# --------------------------------------------------------------------------- stacks


def test_stack_psnr_is_from_total_mse_and_worst_frame_is_reported() -> None:
    spec = PixelSpec(bits_stored=12)
    ref = np.full((2, 8, 8), 1000, dtype=np.uint16)
    test = ref.copy()
    test[1] += np.uint16(1)
    test[1, ::2] += np.uint16(0)  # frame 1: every pixel off by 1 -> MSE 1; frame 0 exact
    acc = M.MetricsAccumulator(spec, with_ssim=False)
    acc.add(ref, test)
    r = acc.result()
    # total MSE over 128 pixels = 64 / 128 = 0.5: 10 log10(4095^2 / 0.5) = 75.25538 dB
    assert r["psnr_db"] == pytest.approx(75.25538, abs=1e-5)
    # worst frame MSE 1: 72.24508 dB (a mean of per-frame PSNRs would be infinite here)
    assert r["psnr_min_frame_db"] == pytest.approx(72.24508, abs=1e-5)


# --------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one_and_matches_skimage_with_explicit_range() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4096, size=(32, 32)).astype(np.uint16)
    test = np.clip(ref.astype(np.int32) + rng.integers(-20, 21, size=ref.shape), 0, 4095).astype(np.uint16)
    assert M.ssim(ref, ref, data_range=4095) == pytest.approx(1.0)
    expected = structural_similarity(
        ref.astype(float), test.astype(float), data_range=4095,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )  # fmt: skip
    assert M.ssim(ref, test, data_range=4095) == pytest.approx(expected, abs=1e-12)
    # the data range matters: with the uint16 dtype range SSIM would be much closer to 1
    assert M.ssim(ref, test, data_range=65535) > M.ssim(ref, test, data_range=4095)


def test_ssim_of_a_stack_is_the_mean_of_frames() -> None:
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 4096, size=(2, 16, 16)).astype(np.uint16)
    test = ref.copy()
    test[1] = np.clip(test[1].astype(int) + 50, 0, 4095)
    per = [M.ssim(ref[i], test[i], data_range=4095) for i in range(2)]
    assert M.ssim(ref, test, data_range=4095) == pytest.approx(np.mean(per), abs=1e-12)


# --------------------------------------------------------------------------- windows


def test_apply_window_follows_dicom_linear_voi() -> None:
    # c=40, w=400: 0 at or below c - 0.5 - (w-1)/2 = -160, 1 above c - 0.5 + (w-1)/2 = 239,
    # centre 40 -> (40 - 39.5) / 399 + 0.5 = 0.501253
    y = M.apply_window(np.array([-1000.0, -160.0, 40.0, 239.5, 3000.0]), center=40, width=400)
    assert y[0] == 0.0 and y[1] == 0.0 and y[4] == 1.0
    assert y[2] == pytest.approx(0.5 + 0.5 / 399)
    assert y[3] == 1.0


def test_windowed_psnr_and_error_in_display_levels() -> None:
    spec = PixelSpec(bits_stored=12, rescale_intercept=-1024.0, rescale_type="HU")
    ref = np.full((8, 8), 1064, dtype=np.uint16)  # 40 HU everywhere, the soft-tissue centre
    test = ref + np.uint16(4)  # +4 HU, still inside the window
    m = M.compare(ref, test, spec, windows=[M.Window("soft_tissue", 40, 400)], with_ssim=False)
    w = m["windows"]["soft_tissue"]
    # display error 4 / 399 everywhere: PSNR (peak 1) = 20 log10(99.75) = 39.97826 dB
    assert w["psnr_db"] == pytest.approx(39.97826, abs=1e-5)
    # in 8-bit display levels: 4 / 399 * 255 = 2.55639
    assert w["max_abs_error_levels"] == pytest.approx(2.556391, abs=1e-6)


def test_default_windows() -> None:
    ct = PixelSpec(bits_stored=12, rescale_type="HU")
    assert [w.name for w in M.default_windows(ct)] == ["soft_tissue", "lung"]
    mr = PixelSpec(bits_stored=12, window_center=300.0, window_width=600.0)
    assert M.default_windows(mr, "MR") == (M.Window("default", 300.0, 600.0),)
    assert M.default_windows(PixelSpec(bits_stored=8), "US") == ()


# --------------------------------------------------------------------------- size and speed


def test_raw_size_definition_and_ratios() -> None:
    assert [M.raw_bytes_per_pixel(b) for b in (1, 8, 9, 12, 16)] == [1, 1, 2, 2, 2]
    n = 512 * 512
    assert M.raw_size(n, 12) == 524288
    assert M.bits_per_pixel(32768, n) == 1.0  # 32768 bytes * 8 / 262144 px
    assert M.compression_ratio(32768, n, 12) == 16.0  # 524288 / 32768
    assert M.compression_ratio(32768, n, 8) == 8.0  # 262144 / 32768
    assert M.bpp_for_ratio(40, 12) == pytest.approx(0.4)  # 16 bits / 40
    assert M.bpp_for_ratio(10, 8) == pytest.approx(0.8)  # 8 bits / 10
    assert M.mb_per_s(2_000_000, 0.5) == 4.0


# --- texture retention (issue 11) ---------------------------------------------------------


def _soft_tissue(rng: np.random.Generator, shape=(64, 64), std=20.0) -> np.ndarray:
    """Stored values of 40 HU tissue with white noise (intercept -1024)."""
    return np.clip(1064 + std * rng.standard_normal(shape), 0, 4095).astype(np.int32)


def test_texture_identical_and_flat():
    from medcodec.evaluate.metrics import texture_retention

    ref = _soft_tissue(np.random.default_rng(0))
    same = texture_retention(ref, ref, rescale_intercept=-1024)
    assert same["blocks"] == 64
    assert same["flattened_fraction"] == 0.0 and same["median_retention"] == 1.0
    means = ref.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    flat = np.repeat(np.repeat(means, 8, 0), 8, 1)
    t = texture_retention(ref, flat, rescale_intercept=-1024)
    assert t["flattened_fraction"] == 1.0 and t["median_retention"] == 0.0


def test_texture_retention_is_the_std_ratio():
    from medcodec.evaluate.metrics import TEXTURE_FLAT_RETENTION, texture_block_stats, texture_retention

    ref = _soft_tissue(np.random.default_rng(1)).astype(float)
    means = np.repeat(np.repeat(ref.reshape(8, 8, 8, 8).mean(axis=(1, 3)), 8, 0), 8, 1)
    half = means + 0.5 * (ref - means)  # every block keeps half its deviation
    np.testing.assert_allclose(texture_block_stats(ref, half, rescale_intercept=-1024), 0.5)
    third = means + 0.3 * (ref - means)
    assert 0.3 < TEXTURE_FLAT_RETENTION
    assert texture_retention(ref, third, rescale_intercept=-1024)["flattened_fraction"] == 1.0


def test_texture_block_selection():
    """Only whole aligned blocks with every value in -150..250 HU and std >= 8 HU count."""
    from medcodec.evaluate.metrics import texture_retention

    rng = np.random.default_rng(2)
    ref = _soft_tissue(rng, (64, 70))  # 6 columns of partial blocks are left out
    ref[:8, :8] = 1064  # std 0: not texture
    ref[8:16, :8] = 1064 + rng.integers(-3, 4, (8, 8))  # std < 8 HU
    ref[16:24, :8] = 2000  # bone, outside the HU range
    ref[24, 0] = 1024 - 200  # one voxel at -200 HU excludes its block
    t = texture_retention(ref, ref, rescale_intercept=-1024)
    assert t["blocks"] == 64 - 4
    # the rescale matters: the same stored values read as raw units are not soft tissue
    assert texture_retention(ref, ref)["blocks"] == 0
    assert texture_retention(ref, ref)["median_retention"] is None
    # a 3-D stack pools its frames
    assert texture_retention(np.stack([ref, ref]), np.stack([ref, ref]), rescale_intercept=-1024)["blocks"] == 120
