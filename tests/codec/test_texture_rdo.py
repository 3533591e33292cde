"""Texture-aware rate-distortion quantization (the default of standard JPEG, issue 11):
kernels against their plain-Python twins, what the cost function promises, and the texture
targets on real CT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medcodec.codec import _kernels as K
from medcodec.codec import _rdoq, entropy, jpeg, levelshift, quantize, tables_trained, transform
from medcodec.codec.pipeline import FrameCoder
from medcodec.errors import InvalidInputError
from medcodec.evaluate.metrics import texture_retention


def _scaled_blocks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Coefficients / steps like a noisy CT at ~1 bpp: many +-1 levels, some large, long runs."""
    decay = 3.0 * np.exp(-np.arange(64) / 10.0) + 0.35
    x = rng.laplace(size=(n, 64)) * decay
    x[:, 0] = np.cumsum(rng.normal(0, 4, n))
    x[rng.random((n, 64)) < 0.02] *= 30
    x[rng.random(n) < 0.1, 1:] *= 0.2  # flat blocks
    x[rng.random(n) < 0.05, 2:40] = 0.0  # long zero runs (ZRL)
    return x


def _counts_bits(levels: np.ndarray, size_bits: int) -> tuple[np.ndarray, np.ndarray]:
    dc_freq, ac_freq, _ = entropy.symbol_counts(levels, size_bits=size_bits)
    return (K.symbol_code_lengths(dc_freq, np.empty(dc_freq.shape[0])),
            K.symbol_code_lengths(ac_freq, np.empty(ac_freq.shape[0])))  # fmt: skip


@pytest.mark.parametrize("size_bits", [4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("mu", "patience", "dc_floor"), [(0.0, 64, -math.inf), (16.0, 64, -math.inf), (16.0, 2, 0.0),
                                                         (16.0, 64, 0.0)])  # fmt: skip
def test_texture_kernel_matches_reference(size_bits, seed, mu, patience, dc_floor):
    rng = np.random.default_rng(seed)
    x = _scaled_blocks(rng, 150)  # more than one coefficient-major chunk of the kernel
    weights = rng.uniform(50, 300, 64)
    _, ac_bits = _counts_bits(quantize.round_levels(x), size_bits)
    lam = 0.12 * float(np.mean(weights[1:]))
    got = K.texture_levels(x, weights, ac_bits, size_bits, lam, mu, 1.0, patience, dc_floor,
                           np.empty(x.shape, np.int32))  # fmt: skip
    want = _rdoq.texture_levels_reference(x, weights, ac_bits, size_bits, lam, mu, 1.0, patience, dc_floor)
    np.testing.assert_array_equal(got, want)
    rounded = quantize.round_levels(x)
    assert np.all(np.abs(got) <= np.abs(rounded))  # levels only move towards zero
    assert np.any(got != rounded)  # and the test data makes it move some


def test_symbol_code_lengths_matches_numpy():
    freq = np.array([0, 1, 5, 100, 3000, 0, 7], np.int64)
    f = freq + 0.5
    np.testing.assert_allclose(K.symbol_code_lengths(freq, np.empty(7)), -np.log2(f / f.sum()), rtol=1e-14)


def test_energy_penalty_keeps_texture_and_costs_error():
    """mu > 0 keeps more AC energy per block than the plain RD choice (mu = 0), for more bits."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.4, (400, 64))  # white noise just under a step: the case that flattens
    w = np.full(64, 100.0)
    _, ac_bits = _counts_bits(quantize.round_levels(x), 4)
    lam = 0.3 * 100.0
    plain = K.texture_levels(x, w, ac_bits, 4, lam, 0.0, 1.0, 64, -math.inf, np.empty(x.shape, np.int32))
    kept = K.texture_levels(x, w, ac_bits, 4, lam, 16.0, 1.0, 64, -math.inf, np.empty(x.shape, np.int32))
    energy = lambda lv: np.sum(lv[:, 1:].astype(float) ** 2, axis=1)  # noqa: E731
    assert np.mean(energy(kept)) > 1.5 * np.mean(energy(plain))
    assert np.mean(energy(plain) == 0) > 0.3  # the plain RD choice zeroes whole blocks ...
    assert np.mean(energy(kept) == 0) < 0.02  # ... the penalty keeps them
    # what it costs: bits (the RD choice without the penalty is the cheaper stream)
    assert entropy.scan_bits(kept, size_bits=4) > entropy.scan_bits(plain, size_bits=4)


@pytest.mark.parametrize(("shape", "noise"), [((64, 64), 30), ((37, 90), 30), ((200, 136), 30), ((64, 64), 3)])
@pytest.mark.parametrize(("restart_interval", "floor"), [(0, None), (7, None), (0, 1300.0), (7, 1300.0)])
def test_fused_frame_kernel_matches_twin_chain(shape, noise, restart_interval, floor):
    """texture_frame_levels (one kernel: sampled statistics, noise level, DCT, greedy, DC Viterbi,
    background floor) equals the chain of separately tested pieces, and encode_frame_texture codes
    exactly those levels."""
    rng = np.random.default_rng(shape[0])
    img = np.clip(1000 + noise * rng.standard_normal(shape) + np.linspace(0, 800, shape[1]), 0, 4095).astype(np.uint16)
    img[: shape[0] // 3, : shape[1] // 2] = 0  # a black background, where the decoder clips
    coder = FrameCoder(quantize.quant_table(55, 12, table="ct"), 12, False, rdo="texture")
    assert 8 * 2048 % int(coder.steps_zz[0]) != 0  # black is not on the DC grid: clipping matters
    got = _rdoq.texture_frame_levels(coder, img, size_bits=4, restart_interval=restart_interval, floor=floor)

    scaled = coder.scaled(img)
    by, bx = transform.blocks_shape(*shape)
    rows = np.arange(by)[:: _rdoq.TEXTURE_STATS_STRIDE]
    sample = np.concatenate([quantize.round_levels(scaled[r * bx : (r + 1) * bx]) for r in rows])
    dc_freq = np.zeros(16, np.int64)
    ac_freq = np.zeros(256, np.int64)
    for r in range(len(rows)):  # each sampled row is its own DC chain
        K.count_symbols(np.ascontiguousarray(sample[r * bx : (r + 1) * bx]), 4, 0, dc_freq, ac_freq)
    dc_bits = K.symbol_code_lengths(dc_freq, np.empty(16))
    ac_bits = K.symbol_code_lengths(ac_freq, np.empty(256))
    steps = coder.steps_zz.astype(np.float64)
    lam = _rdoq.default_lambda(steps)
    dc_floor = -math.inf if floor is None else 8 * (floor - 2048) / steps[0]  # a block's DC / step at mean = floor
    assert dc_floor == _rdoq.texture_dc_floor(coder, floor)
    if floor is not None:
        assert 0.2 < np.mean(scaled[:, 0] < dc_floor) < 0.8  # the floor splits the image
    sigma = _rdoq.noise_sigma_reference(img, _rdoq.TEXTURE_STATS_STRIDE, floor)
    mu = K.texture_mu(_rdoq.TEXTURE_MU, _rdoq.TEXTURE_KAPPA, sigma, steps * steps)
    if noise == 3:
        assert mu < _rdoq.TEXTURE_MU / 2  # a quiet image: the penalty relaxes
    elif floor is not None:
        assert mu == _rdoq.TEXTURE_MU  # a noisy one (its black corner left out): full weight
    want = _rdoq.texture_levels_reference(scaled, steps * steps, ac_bits, 4, lam, mu, dc_floor=dc_floor)
    lo, hi = _rdoq.dc_clip(coder)
    assert (lo, hi) == (8 * -2048 / steps[0], 8 * 2047 / steps[0])
    flat = np.all(want[:, 1:] == 0, axis=1)
    want[:, 0] = _rdoq.trellis_dc_reference(scaled[:, 0], steps[0] ** 2, dc_bits, lam, lo, hi, flat)
    np.testing.assert_array_equal(got, want)
    black = scaled[:, 0] < lo + 1e-9
    assert np.any(black) and np.all(want[black, 0] < scaled[black, 0])  # black blocks: the level below
    decoded = coder.reconstruct(got, *shape)
    assert np.all(decoded[: shape[0] // 3 // 8 * 8, : shape[1] // 2 // 8 * 8] == 0)  # ... decodes exactly
    if floor is not None and noise == 30:  # and it changes levels: below it the penalty no longer keeps energy
        assert np.any(got != _rdoq.texture_frame_levels(coder, img, size_bits=4, restart_interval=restart_interval))

    coded, dc, ac = _rdoq.encode_frame_texture(coder, img, size_bits=4, stuff=True, restart_interval=restart_interval,
                                               floor=floor)  # fmt: skip
    coded2, dc2, ac2 = entropy.encode_scan(got, size_bits=4, stuff=True, restart_interval=restart_interval)
    assert coded == coded2
    for t, t2 in ((dc, dc2), (ac, ac2)):
        np.testing.assert_array_equal(t.bits, t2.bits)
        np.testing.assert_array_equal(t.huffval, t2.huffval)


@pytest.mark.parametrize(("shape", "restart_interval"), [((64, 64), 0), ((37, 90), 7), ((9, 3), 0), ((200, 136), 1)])
def test_whole_stream_kernel_writes_what_build_jpeg_writes(shape, restart_interval):
    """encode_jpeg's path (one kernel from pixels to the file's bytes, DHT and all) gives exactly the
    stream build_jpeg wraps around encode_frame_texture's scan and tables: the twin of the assembly."""
    from medcodec.codec import stream

    rng = np.random.default_rng(shape[1])
    img = np.clip(900 + 40 * rng.standard_normal(shape) + np.linspace(0, 1500, shape[1]), 0, 4095).astype(np.uint16)
    coder = FrameCoder(quantize.quant_table(60, 12, table="ct"), 12, False, rdo="texture")
    floor = _rdoq.texture_floor(int(img.min()), int(img.max()))
    coded, dc, ac = _rdoq.encode_frame_texture(coder, img, size_bits=4, stuff=True, restart_interval=restart_interval,
                                               floor=floor)  # fmt: skip
    want = stream.build_jpeg(coded, P=12, Y=shape[0], X=shape[1], steps=coder.steps, dc_table=dc, ac_table=ac,
                             restart_interval=restart_interval)  # fmt: skip
    head, tail = stream.jpeg_head_arrays(coder.steps.tobytes(), 12, shape[0], shape[1], restart_interval)
    got = _rdoq.encode_jpeg_texture(coder, img, restart_interval=restart_interval, floor=floor, head=head, tail=tail)
    assert got == want
    assert np.array_equal(jpeg.decode_jpeg(got), coder.reconstruct(coder.levels(img, texture_floor=floor), *shape))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64])
def test_min_max_kernel_matches_numpy(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    for shape in ((1,), (3, 5), (2, 7, 9)):
        a = rng.integers(max(info.min, -5000), min(info.max, 5000), shape, endpoint=True).astype(dtype)
        assert K.min_max(a) == (a.min(), a.max())
    a = np.array([info.max, info.min, 0], dtype)
    assert K.min_max(a) == (info.min, info.max)
    small = rng.integers(0, 60, (6, 8)).astype(dtype)  # check_range: one pass when contiguous, NumPy when not
    for view in (small, small[:, ::2], small.astype(small.dtype.newbyteorder(">"))):  # kernel, NumPy, NumPy
        assert levelshift.check_range(view, 6, False) == (int(view.min()), int(view.max()))
    small[2, 3] = 100
    with pytest.raises(InvalidInputError):
        levelshift.check_range(small, 6, False)


@pytest.mark.parametrize("stride", [1, 4])
@pytest.mark.parametrize("shape", [(64, 64), (37, 91), (9, 3), (1, 5)])
def test_noise_sigma_matches_reference(shape, stride):
    rng = np.random.default_rng(shape[1])
    img = np.clip(500 + 12 * rng.standard_normal(shape) + np.arange(shape[1]) * 3.0, 0, 4095).astype(np.uint16)
    img[: shape[0] // 2, : shape[1] // 3] = 0
    img[-1, -1] = 4095  # one |a - b - c + d| beyond the histogram
    for floor in (None, 100.0, 5000.0):
        got = K.noise_sigma(img, stride, -math.inf if floor is None else floor)
        assert got == _rdoq.noise_sigma_reference(img, stride, floor)
    if shape[0] >= 8 and shape[1] >= 8:  # white noise of std 12 is measured as such, the black corner left out
        assert 9 < K.noise_sigma(img, 1, 100.0) < 15
        big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # each sample repeated 2x2: the noise stays visible
        assert 9 < K.noise_sigma(big, 1, 100.0) < 15


def test_texture_mu_relaxes_where_steps_are_coarse_against_the_noise():
    w = np.full(64, 30.0**2)
    assert K.texture_mu(16.0, 3.0, 20.0, w) == 16.0  # 3 x 20 >= 30: full weight
    assert K.texture_mu(16.0, 3.0, 5.0, w) == pytest.approx(16.0 * (15.0 / 30.0) ** 2)
    assert K.texture_mu(16.0, 0.0, 0.0, w) == 16.0  # kappa 0: off
    assert K.texture_mu(16.0, 3.0, 0.0, w) == 0.0  # no noise at all: plain RD decisions


def test_default_jpeg_is_texture_mode_with_trained_table():
    rng = np.random.default_rng(3)
    img = np.clip(1064 + 20 * rng.standard_normal((96, 96)), 0, 4095).astype(np.uint16)
    default = jpeg.encode_jpeg(img, bits_stored=12, quality=60)
    assert default == jpeg.encode_jpeg(img, bits_stored=12, quality=60, rdo="texture", table="ct")
    assert default != jpeg.encode_jpeg(img, bits_stored=12, quality=60, rdo="trellis", table="ct")
    rb = 12  # an image coded on its own: the steps of its bits_stored (levelshift.default_range_bits)
    assert jpeg.read_jpeg_header(default).qtables[0].tolist() == quantize.quant_table(60, rb, table="ct").tolist()
    mr = jpeg.encode_jpeg(img, bits_stored=12, quality=60, modality="MR")
    assert jpeg.read_jpeg_header(mr).qtables[0].tolist() == quantize.quant_table(60, rb, table="mr").tolist()
    assert mr != default
    assert tables_trained.table_for("CR") == "radiograph"


def test_texture_mode_keeps_noise_that_trellis_flattens():
    """Synthetic soft tissue (40 HU, 20 HU white noise) at equal size: the PSNR-only trellis
    flattens blocks, the default does not."""
    rng = np.random.default_rng(11)
    img = np.clip(1064 + 20 * rng.standard_normal((256, 256)), 0, 4095).astype(np.uint16)
    span = 8  # the steps of its 8-bit span, as a series writer passes it (its 12-bit depth's erase all)
    target = jpeg.encode_jpeg(img, bits_stored=12, quality=10, rdo="trellis", range_bits=span)  # ~0.6 bpp
    texture = jpeg.encode_jpeg(img, bits_stored=12, ratio=img.size * 2 / len(target), range_bits=span)
    assert len(texture) <= len(target) * 1.03
    t_trellis = texture_retention(img, jpeg.decode_jpeg(target), rescale_intercept=-1024)
    t_default = texture_retention(img, jpeg.decode_jpeg(texture), rescale_intercept=-1024)
    assert t_trellis["flattened_fraction"] > 0.05  # the failure this mode exists for
    assert t_default["flattened_fraction"] < t_trellis["flattened_fraction"] / 4
    assert t_default["median_retention"] > t_trellis["median_retention"]


@pytest.mark.realdata
def test_texture_targets_on_real_chest_ct_at_1bpp(shared_data):
    """Issue 11 at ~1 bpp on real chest CT: <= 1 % of soft-tissue blocks flattened, median
    retention >= 0.95 (libjpeg-turbo and the old trellis default are measured by the benchmark)."""
    import pydicom

    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))
    img = pydicom.dcmread(files[len(files) // 2]).pixel_array.astype(np.uint16)
    data = jpeg.encode_jpeg(img, bits_stored=12, ratio=16.0)  # 16:1 of 2-byte pixels = 1 bpp
    assert abs(len(data) * 8 / img.size - 1.0) < 0.05
    t = texture_retention(img, jpeg.decode_jpeg(data), rescale_intercept=-1024)
    assert t["blocks"] > 200
    assert t["flattened_fraction"] <= 0.01
    assert t["median_retention"] >= 0.95
    psnr = 10 * math.log10(4095**2 / np.mean((jpeg.decode_jpeg(data).astype(float) - img) ** 2))
    assert psnr > 42.0


def test_range_bits_gives_one_table_for_frames_of_different_ranges():
    """One quality, one DQT: images coded on their own get the steps of their bits_stored whatever
    they span (9 and 12 bits here); a series writer passes one content range for all its frames,
    and a span passed per frame gives steps that far apart (8x)."""
    import medcodec
    from medcodec.errors import InvalidInputError
    from medcodec.registry import SeriesHints, backend

    rng = np.random.default_rng(3)
    narrow = (1000 + rng.integers(0, 400, (32, 40))).astype(np.uint16)
    wide = rng.integers(0, 4096, (32, 40)).astype(np.uint16)

    def dqt(data: bytes) -> np.ndarray:
        return np.asarray(medcodec.read_header(data).qtables[0])

    default = [dqt(medcodec.encode(f, bits_stored=12, format="jpeg", quality=75)) for f in (narrow, wide)]
    np.testing.assert_array_equal(default[0], default[1])
    spans = [levelshift.content_range_bits(f, int(f.min()), int(f.max()), 12) for f in (narrow, wide)]
    assert spans == [9, 12]
    own = [dqt(medcodec.encode(f, bits_stored=12, format="jpeg", quality=75, range_bits=b)) for f, b in zip((narrow, wide), spans)]
    assert not np.array_equal(own[0], own[1])
    np.testing.assert_array_equal(own[1], default[1])
    one = [dqt(medcodec.encode(f, bits_stored=12, format="jpeg", quality=75, range_bits=12)) for f in (narrow, wide)]
    np.testing.assert_array_equal(one[0], one[1])
    np.testing.assert_array_equal(one[1], own[1])
    # the registry's JPEG backend takes the same figure and the modality from SeriesHints
    via = backend("medcodec-jpeg").encode(narrow, 12, False, 75, SeriesHints(modality="MR", range_bits=12))
    np.testing.assert_array_equal(dqt(via).ravel(), quantize.quant_table(75, 12, table="mr", max_step=65535).ravel())
    for bad in (7, 13, 2.5, True):
        with pytest.raises(InvalidInputError):
            medcodec.encode(narrow, bits_stored=12, format="jpeg", range_bits=bad)
    for bad in (7, 13, 2.5, True):  # .mdc takes range_bits too (tests/codec/test_mdc2_dct.py), as checked
        with pytest.raises(InvalidInputError):
            medcodec.encode(narrow, bits_stored=12, format="mdc", range_bits=bad)


def test_default_jpeg_has_no_energy_target_in_the_background(monkeypatch):
    """encode_jpeg's default gives the blocks whose mean lies in the lowest TEXTURE_FLOOR of the
    image's range (air, padding) no energy target: their noise is not kept at the cost of bits,
    while the tissue's is (the rest of the image codes as without the floor). The penalty's weight
    is held fixed (kappa 0): the floor also leaves the background out of the noise estimate."""
    monkeypatch.setattr(_rdoq, "TEXTURE_KAPPA", 0.0)
    rng = np.random.default_rng(11)
    img = np.full((128, 128), 40.0)
    img[:, 64:] = 3000.0  # background | tissue
    img = np.clip(img + 12 * rng.standard_normal(img.shape), 0, 4095).astype(np.uint16)
    floor = _rdoq.texture_floor(int(img.min()), int(img.max()))
    assert img[:, :64].mean() < floor < img[:, 64:].mean()
    data = jpeg.encode_jpeg(img, bits_stored=12, quality=50)
    rb = levelshift.content_range_bits(img, int(img.min()), int(img.max()), 12)
    coder = FrameCoder(quantize.quant_table(50, rb, table="ct"), 12, False, rdo="texture",
                       rdo_lambda=jpeg._JpegEncoder(img, bits_stored=12, range_bits=rb, table="ct", rdo="texture",
                                                    restart_interval=0).coder(50.0).rdo_lambda)  # fmt: skip
    with_floor = coder.levels(img, texture_floor=floor)
    without = coder.levels(img)
    blocks = np.arange(with_floor.shape[0]).reshape(16, 16)
    bg, tissue = blocks[:, :8].ravel(), blocks[:, 8:].ravel()
    np.testing.assert_array_equal(with_floor[tissue], without[tissue])
    energy = lambda lv: float(np.sum(lv[:, 1:].astype(float) ** 2))  # noqa: E731
    assert energy(with_floor[bg]) < energy(without[bg])
    assert entropy.scan_bits(with_floor, size_bits=4) < entropy.scan_bits(without, size_bits=4)
    # the default stream codes exactly these levels
    np.testing.assert_array_equal(jpeg.decode_jpeg(data), coder.reconstruct(with_floor, 128, 128))
