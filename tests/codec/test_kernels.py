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
