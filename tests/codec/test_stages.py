"""Per-stage unit tests: entropy coding (array -> bytes), quantization (array -> array) and the
.mdc container (bytes -> bytes), each checked on its own, below the pipeline.

Lossless stages must invert exactly; the quantizer must move monotonically with the quality
(DESIGN.md §3) and keep its documented error bound.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medcodec.codec import container, entropy, quantize, transform
from medcodec.errors import CorruptStreamError, InvalidInputError, TruncatedStreamError

RNG = np.random.default_rng(11)


def _levels(nblocks: int, bits_stored: int, *, sparse: float = 0.7) -> np.ndarray:
    """Zigzag levels like a DCT gives: large DC, decaying AC, many zeros, extremes included."""
    _, max_ac = entropy.max_categories(bits_stored)
    limit = (1 << max_ac) - 1
    zz = np.zeros((nblocks, 64), np.int32)
    zz[:, 0] = RNG.integers(-limit, limit + 1, nblocks)
    decay = np.exp(-np.arange(1, 64) / 8.0)
    ac = np.rint(RNG.normal(0, 1, (nblocks, 63)) * decay * limit / 4).astype(np.int32)
    ac[RNG.random((nblocks, 63)) < sparse] = 0
    zz[:, 1:] = np.clip(ac, -limit, limit)
    zz[0, 1] = limit  # the largest magnitudes the category tables allow
    zz[-1, 63] = -limit
    return zz


# --------------------------------------------------------------------------- entropy


@pytest.mark.parametrize(("size_bits", "bits_stored", "stuff", "restart"), [(4, 8, True, 0), (4, 12, True, 5),
                                                                           (5, 16, False, 0), (5, 12, False, 0)])  # fmt: skip
def test_entropy_scan_round_trip_is_exact(size_bits: int, bits_stored: int, stuff: bool, restart: int) -> None:
    zz = _levels(37, bits_stored)
    coded, dc, ac = entropy.encode_scan(zz, size_bits=size_bits, stuff=stuff, restart_interval=restart)
    back = entropy.decode_scan(coded, len(zz), dc, ac, size_bits=size_bits, bits_stored=bits_stored, stuffed=stuff,
                               restart_interval=restart)  # fmt: skip
    np.testing.assert_array_equal(back, zz)
    # the size the rate control predicts is the size written (T.81 Annex K.2 tables, no stuffing)
    if not stuff and not restart:
        assert -(-entropy.scan_bits(zz, size_bits=size_bits) // 8) == len(coded)


def test_huffman_tables_are_length_limited_and_prefix_free() -> None:
    freq = np.array([2**k for k in range(30)], dtype=np.int64)  # a skewed histogram wants 29-bit codes
    table = entropy.HuffmanTable.from_frequencies(freq)
    assert len(table.bits) == 16 and int(np.sum(table.bits)) == len(table.huffval)  # at most 16 bits (T.81 §K.2)
    codes, sizes = table.codes()
    used = [(int(c), int(s)) for c, s in zip(codes, sizes) if s > 0]
    words = {format(c, f"0{s}b") for c, s in used}
    assert len(words) == len(used)
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_entropy_decoder_reports_truncation_and_garbage() -> None:
    zz = _levels(20, 12)
    coded, dc, ac = entropy.encode_scan(zz, size_bits=4, stuff=True)
    with pytest.raises((TruncatedStreamError, CorruptStreamError)):
        entropy.decode_scan(coded[: len(coded) // 2], len(zz), dc, ac, size_bits=4, bits_stored=12, stuffed=True)
    with pytest.raises(InvalidInputError):
        entropy.encode_scan(np.zeros((3, 63), np.int32), size_bits=4)


# --------------------------------------------------------------------------- quantize


@pytest.mark.parametrize("range_bits", [8, 12, 16])
def test_steps_fall_monotonically_with_quality_over_the_whole_range(range_bits: int) -> None:
    tables = [quantize.quant_table(q, range_bits).astype(np.int64) for q in range(1, 101)]
    for low, high in itertools.pairwise(tables):
        assert np.all(high <= low)
    assert np.all(tables[0] >= tables[-1]) and tables[0].sum() > 4 * tables[-1].sum()
    assert all(t.min() >= 1 for t in tables)
    # 12.5 quality points halve the steps (where they are not clipped at 1)
    mid, finer = quantize.quant_table(50, range_bits, table="flat"), quantize.quant_table(62.5, range_bits, table="flat")
    assert abs(float(mid[0]) / float(finer[0]) - 2.0) < 0.1 or finer[0] == 1


def test_quantize_dequantize_error_within_half_a_step() -> None:
    steps = quantize.quant_table(60, 12)
    blocks = RNG.normal(0, 300, (50, 64))
    levels = quantize.quantize(blocks, steps)
    back = quantize.dequantize(levels, steps)
    assert np.all(np.abs(back - blocks) <= steps.astype(np.float64) / 2 + 1e-9)
    assert quantize.error_bound(steps) > 0
    with pytest.raises(InvalidInputError):
        quantize.quant_table(75, 12, table="nonsense")


def test_transform_is_orthonormal() -> None:
    blocks = RNG.normal(0, 100, (10, 64))
    ones = np.ones(64)
    coeffs = blocks @ transform.analysis_matrix(ones)
    assert np.allclose(np.sum(coeffs**2), np.sum(blocks**2))  # Parseval: errors can be measured on coefficients
    assert np.allclose(coeffs @ transform.synthesis_matrix(ones), blocks)


# --------------------------------------------------------------------------- container


def _records(n: int) -> tuple[container.MdcHeader, list[container.FrameRecord]]:
    steps = quantize.quant_table(80, 12)
    header = container.MdcHeader(rows=16, cols=24, frames=n, bits_stored=12, signed=False, quality=80, range_bits=12,
                                 qtables=(steps,), ancillary={"note": b"kept"})  # fmt: skip
    frames = []
    for i in range(n):
        coded, dc, ac = entropy.encode_scan(_levels(6, 12), size_bits=5)
        frames.append(container.FrameRecord(i, 0, dc, ac, coded))
    return header, frames


def test_container_round_trip_with_random_access() -> None:
    header, frames = _records(3)
    data = container.build_container(header, frames)
    assert container.is_mdc(data)
    parsed, index = container.parse_container(data)
    assert parsed == header and len(index) == 3
    np.testing.assert_array_equal(parsed.qtables[0], header.qtables[0])
    assert parsed.ancillary == {"note": b"kept"}
    for i in (2, 0, 1):  # any order: the frame index gives each FRAM's offset
        record, _ = container.parse_frame(data, parsed, index[i])
        assert record.index == i and bytes(record.coded) == bytes(frames[i].coded)
        assert list(record.dc_table.bits) == list(frames[i].dc_table.bits)


def test_container_checks_every_segment() -> None:
    header, frames = _records(2)
    data = bytearray(container.build_container(header, frames))
    cut = bytes(data[: len(data) - 20])  # MEND and the end of the last FRAM missing
    parsed, index = container.parse_container(cut)  # the frames before the cut stay readable
    container.check_frame_present(index, 0, len(cut))
    assert container.parse_frame(cut, parsed, index[0])[0].index == 0
    with pytest.raises(TruncatedStreamError):
        container.check_frame_present(index, 1, len(cut))
    data[40] ^= 0xFF  # inside HEAD: its CRC no longer matches
    with pytest.raises(CorruptStreamError):
        container.parse_container(bytes(data))
