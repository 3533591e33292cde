"""The multi-symbol range coder of DCT levels (``.mdc`` 2.1, HEAD entropy coder 2, ``docs/format.md`` §13).

Its twin is the binary coder of format 2.0: both code the same levels, so every test here checks
``levels in == levels out`` through the multi-symbol kernels and compares sizes with the binary
coder's on the same levels."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import container, levelshift, mdc2, quantize
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.mdc import arith_range_bits

BINARY, MULTI = container.ENTROPY_ARITH, container.ENTROPY_MULTI


def _roundtrip(levels: np.ndarray, bx: int) -> bytes:
    coded = mdc2.encode_levels(levels, bx, MULTI)
    back = mdc2.decode_levels(np.frombuffer(coded, np.uint8), 0, len(coded), len(levels), bx, coder=MULTI)
    np.testing.assert_array_equal(back, levels)
    return coded


def _laplacian_levels(rng: np.random.Generator, nblocks: int, scale: float) -> np.ndarray:
    decay = np.exp(-np.arange(64) / 12.0)
    lv = np.rint(rng.laplace(0, scale * decay, (nblocks, 64))).astype(np.int32)
    lv[:, 0] = np.cumsum(rng.integers(-40, 41, nblocks)) + 500
    return lv


@pytest.mark.parametrize("nblocks,bx", [(1, 1), (7, 3), (150, 12), (9000, 100)])  # 9000: per-position contexts
def test_random_levels_roundtrip(nblocks: int, bx: int) -> None:
    rng = np.random.default_rng(nblocks)
    for scale in (0.3, 3.0, 40.0):
        _roundtrip(_laplacian_levels(rng, nblocks, scale), bx)


def test_extreme_levels_roundtrip() -> None:
    rng = np.random.default_rng(3)
    big = (1 << 22) + 14  # the largest AC magnitude the escape holds
    cases = {
        "all zero": np.zeros((40, 64), np.int32),
        "every level non-zero": rng.choice([-1, 1], (40, 64)).astype(np.int32),
        "max magnitudes": np.where(rng.random((40, 64)) < 0.5, big, -big).astype(np.int32),
        "escape edges": np.tile(np.array([0, 14, 15, 16, 17, 30, 31, 32, 46, 47, 48] * 6, np.int32)[:64], (20, 1)),
        "long zero runs then the last position": np.zeros((30, 64), np.int32),
        "huge DC steps": np.zeros((30, 64), np.int32),
    }
    cases["max magnitudes"][:, 0] = rng.integers(-(1 << 20), 1 << 20, 40)  # DC differences stay < 2**22
    cases["long zero runs then the last position"][:, 63] = rng.integers(1, 3000, 30)
    cases["huge DC steps"][:, 0] = rng.choice([-(1 << 21) + 1, (1 << 21) - 1, 0], 30)  # differences < 2**22
    for name, lv in cases.items():
        for bx in (1, 4, len(lv)):
            _roundtrip(lv, bx)
        assert name


def _within_roundtrip(levels: np.ndarray, bx: int, trained: bool = False) -> bytes:
    """Format 2.11's contexts (docs/format.md §21; ``trained``: from 2.12's starts, §22): the kernels
    both ways, the levels back exactly."""
    out = np.empty(levels.size * 4 + 1024, np.uint8)
    status, n = KM.encode_coefficients_ms(levels, bx, out, True, trained)
    assert status == KM.OK
    back = np.zeros_like(levels)
    assert KM.decode_coefficients_ms(out, 0, n, bx, back, True, trained) == KM.OK
    np.testing.assert_array_equal(back, levels)
    return out[:n].tobytes()


@pytest.mark.parametrize("nblocks,bx", [(1, 1), (7, 3), (150, 12), (9000, 100)])
def test_within_block_contexts_roundtrip_and_differ(nblocks: int, bx: int) -> None:
    rng = np.random.default_rng(nblocks + 1)
    for scale in (0.3, 3.0, 40.0):
        lv = _laplacian_levels(rng, nblocks, scale)
        within = _within_roundtrip(lv, bx)
        plain = mdc2.encode_levels(lv, bx, MULTI)
        if nblocks >= 150:  # other contexts, other bytes (a tiny frame may code alike)
            assert within != plain
    big = (1 << 22) + 14  # the escape's largest magnitude, every position, both signs
    extreme = np.where(rng.random((40, 64)) < 0.5, big, -big).astype(np.int32)
    extreme[:, 0] = rng.integers(-(1 << 20), 1 << 20, 40)
    for bx_ in (1, 4, 40):
        _within_roundtrip(extreme, bx_)
        _within_roundtrip(np.zeros((30, 64), np.int32), bx_)


@pytest.mark.parametrize("trained", [False, True])
def test_within_block_contexts_on_garbage_give_errors_or_bounded_levels(trained: bool) -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(0, 400))
        data = rng.integers(0, 256, n).astype(np.uint8)
        levels = np.zeros((64, 64), np.int32)
        status = KM.decode_coefficients_ms(data, 0, n, 8, levels, True, trained)
        assert status in (KM.OK, KM.E_TRUNCATED, KM.E_RANGE)
        assert int(np.abs(levels[:, 1:]).max()) <= (1 << 22) + 14


def _check_cdfs(model: np.ndarray, offsets: np.ndarray = KM.OFFSET_W[:-1], alphabet: np.ndarray = KM.ALPHABET_W) -> None:
    """Every context row a valid start (rows at ``offsets`` of ``alphabet`` entries; by default the level
    table's): count 0..COUNT_MAX, ``c[1..n-1]`` increasing with every symbol at least FLOOR wide (so none
    has zero width and none costs more than 13 bits)."""
    for base, n in zip(offsets, alphabet):
        assert 0 <= model[base] <= KM.COUNT_MAX
        c = np.concatenate([[0], model[base + 1 : base + n].astype(np.int64), [KM.CDF_ONE]])
        assert (np.diff(c) >= KM.FLOOR).all()


def test_trained_starts_are_valid_and_differ_from_2_11() -> None:
    """§22: the shipped table holds a valid start for every context (the one for large frames too, each
    zigzag position from its band's rows), most of them trained (count > 0), and differs from 2.11's."""
    for model in (KM.TRAINED_MODEL, KM.TRAINED_MODEL_FINE):
        assert model.shape == KM.INITIAL_MODEL_W.shape and model.dtype == np.int16
        _check_cdfs(model)
    counts = KM.TRAINED_MODEL[KM.OFFSET_W[:-1]]
    assert (counts > 0).sum() > len(counts) // 4  # contexts the training images reached
    assert not np.array_equal(KM.TRAINED_MODEL, KM.INITIAL_MODEL_W)
    fine, band = KM.TRAINED_MODEL_FINE, KM.TRAINED_MODEL
    for k in (1, 9, 40, 63):  # position k's base rows in the large frames' table: its band's
        dst = int(KM.OFFSET_W[KM.M_BASE + (k * KM.REM_BUCKETS + 2) * KM.NBR_BUCKETS_W + 4])
        src = int(KM.OFFSET_W[KM.M_BASE + (int(KM.POS_BAND[k]) * KM.REM_BUCKETS + 2) * KM.NBR_BUCKETS_W + 4])
        np.testing.assert_array_equal(fine[dst : dst + 4], band[src : src + 4])


def test_trained_mode_starts_are_valid_and_trained() -> None:
    """§22: the mode segment's four trained models are valid starts in the §13.1 layout and differ from
    the uniform ones they replace."""
    for name, start, n in (("TRAINED_MODE_MODEL", KI.INITIAL_MODE_MODEL, KI.N_MODES),
                           ("TRAINED_TX_MODEL", KI.INITIAL_TX_MODEL, 2),
                           ("TRAINED_SPLIT_MODEL", KI.INITIAL_SPLIT_MODEL, 2),
                           ("TRAINED_MODE16_MODEL", KI.INITIAL_MODE16_MODEL, KI.N_MODES16)):  # fmt: skip
        model = getattr(KI, name)
        assert model.shape == start.shape and model.dtype == np.int16
        assert not np.array_equal(model, start), name
        _check_cdfs(model, np.arange(0, model.size, n), np.full(model.size // n, n))


def test_a_damaged_trained_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medcodec.codec import _level_starts

    monkeypatch.setattr(_level_starts, "SHA256", "0" * 64)
    with pytest.raises(ImportError, match="SHA-256"):
        KM.trained_model()


@pytest.mark.parametrize("nblocks,bx", [(1, 1), (7, 3), (150, 12), (9000, 100)])
def test_trained_starts_roundtrip_and_change_the_bytes(nblocks: int, bx: int) -> None:
    """2.12 codes the same levels as 2.11 from other starts: back exactly, other bytes (9000 blocks: the
    large frames' table)."""
    rng = np.random.default_rng(nblocks + 7)
    for scale in (0.3, 3.0, 40.0):
        lv = _laplacian_levels(rng, nblocks, scale)
        trained = _within_roundtrip(lv, bx, trained=True)
        if nblocks >= 150:
            assert trained != _within_roundtrip(lv, bx)
    extreme = np.where(rng.random((40, 64)) < 0.5, (1 << 22) + 14, -(1 << 22) - 14).astype(np.int32)
    extreme[:, 0] = rng.integers(-(1 << 20), 1 << 20, 40)  # DC differences within their 22 bits
    for bx_ in (1, 40):
        _within_roundtrip(extreme, bx_, trained=True)
        _within_roundtrip(np.zeros((30, 64), np.int32), bx_, trained=True)



@pytest.mark.parametrize("nbits", [1, 2, 5, 16])
def test_raw_values_beyond_the_used_range_are_corrupt(nbits: int) -> None:
    """§13.1: a raw value ``v >= 2^b`` is corrupt, the 1-bit sign's shortcut included (an outside
    audit, 2026-12-04, found it accepted ``code >= 2 r``)."""
    rng = np.int64(0xFFFFFF37)
    rs = rng >> nbits
    data = np.zeros(16, np.uint8)
    top, *_ = KM._dec_raw(np.int64((rs << nbits) - 1), rng, np.int64(0), np.int64(0), data, np.int64(16), nbits)
    assert top == (1 << nbits) - 1
    beyond, *_ = KM._dec_raw(np.int64(rs << nbits), rng, np.int64(0), np.int64(0), data, np.int64(16), nbits)
    assert beyond == -1


def test_levels_beyond_the_escape_are_refused() -> None:
    lv = np.zeros((2, 64), np.int32)
    lv[1, 5] = (1 << 22) + 15
    with pytest.raises(medcodec.InvalidInputError):
        mdc2.encode_levels(lv, 2, MULTI)
    lv[1, 5] = 0
    lv[1, 0] = 1 << 23  # DC difference of 24 bits
    with pytest.raises(medcodec.InvalidInputError):
        mdc2.encode_levels(lv, 2, MULTI)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (13, 1), (17, 23), (8, 8), (70, 90)])
def test_small_and_odd_frames_roundtrip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    img = (2000 + 400 * np.sin(np.indices(shape).sum(0) / 5.0) + rng.normal(0, 30, shape)).clip(0, 4095)
    img = img.astype(np.uint16)
    for quality in (20, 90, 100):
        multi = medcodec.encode(img, bits_stored=12, quality=quality, entropy="arith-multi", intra=False)
        binary = medcodec.encode(img, bits_stored=12, quality=quality, entropy="arith-binary")
        header = medcodec.read_header(multi)
        assert (header.version, header.entropy) == ((2, 4), MULTI)  # the compact layout, the default
        # the same levels and decoder tools: the decoded frames are identical
        np.testing.assert_array_equal(medcodec.decode(multi), medcodec.decode(binary))


def test_adaptation_keeps_every_symbol_codable() -> None:
    """After a long run of one symbol the others keep the floor frequency: still decodable."""
    lv = np.zeros((3000, 64), np.int32)
    lv[-1, 1:] = 7
    lv[-1, 0] = -5
    coded = _roundtrip(lv, 50)
    assert len(coded) < 200


def test_garbage_coded_bytes_give_codec_errors_or_bounded_levels() -> None:
    rng = np.random.default_rng(5)
    for trial in range(300):
        n = int(rng.integers(0, 400))
        data = rng.integers(0, 256, n).astype(np.uint8)
        if trial % 3 == 0:
            data[: min(n, 3)] = 0  # a plausible start (a real stream's first byte is 0)
        try:
            levels = mdc2.decode_levels(data, 0, n, 64, 8, coder=MULTI)
        except medcodec.CodecError:
            continue
        assert int(np.abs(levels[:, 1:]).max()) <= (1 << 22) + 14
        assert int(np.abs(levels[:, 0]).max()) <= 0x3FFFFFFF


def test_truncated_coded_bytes_are_reported_as_truncated() -> None:
    lv = _laplacian_levels(np.random.default_rng(8), 200, 3.0)
    coded = np.frombuffer(mdc2.encode_levels(lv, 20, MULTI), np.uint8)
    for cut in range(0, len(coded) - 1, max(1, len(coded) // 40)):
        with pytest.raises(medcodec.CodecError):
            mdc2.decode_levels(coded, 0, cut, 200, 20, coder=MULTI)
    with pytest.raises(medcodec.TruncatedStreamError):
        mdc2.decode_levels(coded, 0, len(coded) // 2, 200, 20, coder=MULTI)


@pytest.mark.parametrize("compact", [False, True])
def test_predictive_frames_cannot_claim_the_multi_symbol_coder(compact: bool) -> None:
    data = bytearray(medcodec.encode(np.zeros((8, 8), np.uint16), bits_stored=12, max_error=0, compact=compact))
    header = medcodec.read_header(bytes(data))
    assert header.transform == container.TRANSFORM_PREDICTIVE and header.compact == compact
    seg = [s for s in header.segments if s.type == "HEAD"][0]
    if compact:  # §16.1: version, flags, rows / cols / frames (one byte each here), bits, attributes
        at = seg.offset + 8 + 9
        assert data[at] >> 2 & 3 == container.TRANSFORM_PREDICTIVE and data[at] >> 4 & 7 == container.ENTROPY_ARITH
        data[at] = data[at] & ~(7 << 4) | MULTI << 4
    else:
        assert data[seg.offset + 8 + 19] == container.TRANSFORM_PREDICTIVE  # HEAD bytes 19, 20: transform, coder
        data[seg.offset + 8 + 20] = MULTI
    struct.pack_into("<I", data, seg.offset + 8 + seg.length, zlib.crc32(bytes(data[seg.offset + 4 : seg.end - 4])))
    with pytest.raises(medcodec.UnsupportedFeatureError):
        medcodec.decode(bytes(data))


def test_rate_control_uses_the_multi_symbol_sizes() -> None:
    rng = np.random.default_rng(2)
    img = (2000 + 300 * np.sin(np.indices((2, 96, 96)).sum(0) / 6.0) + rng.normal(0, 25, (2, 96, 96))).clip(0, 4095)
    data = medcodec.encode(img.astype(np.uint16), bits_stored=12, ratio=12, entropy="arith-multi")
    assert medcodec.read_header(data).entropy == MULTI
    assert abs(img.size * 2 / len(data) / 12 - 1) < 0.05


@pytest.mark.realdata
def test_real_frames_same_levels_and_size_as_the_binary_coder(shared_data) -> None:
    """Chest CT, head CT and MR slices at three qualities: exact round trips, and the multi-symbol
    coder within 2 % of the binary coder's bytes on every frame and quality (measured: -3..+1 %)."""
    ratios = []
    for folder in ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk"):
        paths = sorted((shared_data / folder).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        img, bits, signed = ds.pixel_array[None], int(ds.BitsStored), bool(ds.PixelRepresentation)
        lo, hi = levelshift.check_range(img, bits, signed)
        rbits = arith_range_bits(levelshift.content_range_bits(img, lo, hi, bits), bits, img)
        for quality in (30, 70, 95):
            coder = FrameCoder.for_table(quantize.quant_table(quality, rbits), bits, signed)
            levels = np.ascontiguousarray(coder.levels(img[0]), np.int32)
            bx = -(-img.shape[2] // 8)
            multi = _roundtrip(levels, bx)
            ratios.append(len(multi) / len(mdc2.encode_levels(levels, bx, BINARY)))
    assert max(ratios) < 1.02, ratios
    assert KM.N_MCTX < 3000  # few enough contexts to learn on a 256 x 256 frame
