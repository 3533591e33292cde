"""The decoder's fast paths against plain references (issue 12, decode speed): every fast path
must give the same values, samples and errors as the way the format spells it out."""

from __future__ import annotations

import numpy as np
import pytest

from medcodec.codec import container
from medcodec.errors import CodecError


def _rice_bitwise(data: bytes, n: int, limit: int) -> tuple[list[int], int] | str:
    """:meth:`.container.Reader.rice` as first written (bit by bit, docs/format.md §16): the values and
    the bytes read, or the kind of error ("cut off" / "beyond")."""
    if not data:
        return "cut off"
    k = data[0]
    if k > container.MAX_RICE_K:
        return "parameter"
    zmax = 2 * limit + 1
    bit, end = 8, 8 * len(data)
    values = []
    for _ in range(n):
        q = 0
        while True:
            if bit >= end:
                return "cut off"
            one = data[bit >> 3] >> (7 - (bit & 7)) & 1
            bit += 1
            if not one:
                break
            q += 1
            if q << k > zmax:
                return "beyond"
        if bit + k > end:
            return "cut off"
        low = 0
        for _ in range(k):
            low = low << 1 | (data[bit >> 3] >> (7 - (bit & 7)) & 1)
            bit += 1
        z = q << k | low
        if z > zmax:
            return "beyond"
        values.append(-(z >> 1) - 1 if z & 1 else z >> 1)
    return values, -(-bit // 8)


def _rice_fast(data: bytes, n: int, limit: int) -> tuple[list[int], int] | str:
    r = container.Reader(data, 0, "T")
    try:
        values = r.rice(n, "v", limit)
    except CodecError as e:
        msg = str(e)
        return "cut off" if "cut off" in msg else "beyond" if "beyond" in msg else "parameter"
    return values, r.pos


def test_rice_reader_matches_the_bitwise_reader_on_coded_damaged_and_random_bytes() -> None:
    """Coded blocks (every k the coder picks), the same cut short, bit-flipped, and random bytes: the
    string-window reader gives what the bit-by-bit one gives, values, bytes read and kind of error."""
    rng = np.random.default_rng(12)
    checked = errors = 0
    for trial in range(600):
        limit = int(rng.choice([1, 7, 128, 65535]))
        n = int(rng.integers(1, 70))
        scale = float(rng.choice([0.5, 3, 40, 3000]))
        values = np.clip(np.round(rng.laplace(0, scale, n)), -limit - 1, limit).astype(int).tolist()
        out = bytearray()
        container.put_rice(out, values)
        cases = [bytes(out), bytes(out[: int(rng.integers(0, len(out)))])]
        flipped = bytearray(out)
        pos = int(rng.integers(1, len(out))) if len(out) > 1 else 0
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        cases += [bytes(flipped), bytes([int(rng.integers(0, 18))]) + rng.bytes(int(rng.integers(0, 40)))]
        cases.append(bytes(out) + rng.bytes(5))  # bytes after the block are not read
        for data in cases:
            want = _rice_bitwise(data, n, limit)
            assert _rice_fast(data, n, limit) == want, (trial, data.hex(), n, limit)
            checked += 1
            errors += isinstance(want, str)
        assert _rice_fast(bytes(out), n, limit) == (values, len(out))
    assert checked == 3000 and 300 < errors < 2700  # both kinds of outcome were exercised
