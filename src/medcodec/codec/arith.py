"""Adaptive binary range coder, plain-Python reference (bytes <-> bits under adaptive contexts).

The codec runs the numba version in :mod:`._kernels_v2`; this class-based twin is written
from the specification (``docs/format.md`` §11) and tests check that both produce the same
bytes and decode the same bits (``tests/codec/test_lossless.py``).

The coder is LZMA's: a 32-bit ``range``, a ``low`` with one carry bit, and a byte cache plus
a count of pending 0xFF bytes so a carry can still ripple into bytes not yet written. A
context is the probability (``PROB_BITS`` = 15 bits) that the next bit is 0, with a count of
updates: after ``n`` updates the step toward the coded bit is ``1/(n + 1.5)``, frozen at
``n = ADAPT_LIMIT``. Probabilities stay in ``[PROB_MIN, PROB_MAX]``.
"""

from __future__ import annotations

from ._kernels_v2 import ADAPT_LIMIT, PROB_BITS, PROB_MAX, PROB_MIN, PROB_ONE, RECIP

__all__ = ["Contexts", "RangeEncoder", "RangeDecoder"]

_RECIP = [int(v) for v in RECIP]


class Contexts:
    """A table of adaptive binary contexts (probability of 0, update count)."""

    def __init__(self, n: int):
        self.p = [PROB_ONE // 2] * n
        self.n = [0] * n

    def update(self, ctx: int, bit: int) -> None:
        p, r = self.p[ctx], _RECIP[self.n[ctx]]
        p = p + (((PROB_ONE - p) * r) >> 16) if bit == 0 else p - ((p * r) >> 16)
        self.p[ctx] = min(max(p, PROB_MIN), PROB_MAX)
        if self.n[ctx] < ADAPT_LIMIT:
            self.n[ctx] += 1


class RangeEncoder:
    """Bits in, bytes out. ``encode(ctx, bit)`` then :meth:`finish`."""

    def __init__(self, contexts: Contexts):
        self.ctx = contexts
        self.low = 0
        self.range = 0xFFFFFFFF
        self.cache = 0
        self.cache_size = 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def encode(self, ctx: int, bit: int) -> None:
        bound = (self.range >> PROB_BITS) * self.ctx.p[ctx]
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        self.ctx.update(ctx, bit)
        while self.range < 1 << 24:
            self.range <<= 8
            self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


class RangeDecoder:
    """Bytes in, bits out; past the end of ``data`` it reads zeros and counts them (``overrun``)."""

    def __init__(self, contexts: Contexts, data: bytes):
        self.ctx = contexts
        self.data = data
        self.pos = 0
        self.overrun = 0
        self.range = 0xFFFFFFFF
        self.code = 0
        for _ in range(5):
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF

    def _byte(self) -> int:
        pos = self.pos
        self.pos += 1
        if pos < len(self.data):
            return self.data[pos]
        self.overrun += 1
        return 0

    def decode(self, ctx: int) -> int:
        bound = (self.range >> PROB_BITS) * self.ctx.p[ctx]
        if self.code < bound:
            self.range = bound
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            bit = 1
        self.ctx.update(ctx, bit)
        while self.range < 1 << 24:
            self.range <<= 8
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF
        return bit
