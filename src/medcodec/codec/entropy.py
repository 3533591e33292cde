"""Huffman entropy coding of quantized blocks (array -> bytes), T.81 Annex C, F and K.

Syntax of a coded block (T.81 §F.1.2, generalised by ``size_bits``)::

    block  := DC AC* [EOB]
    DC     := HUFF_dc(SSSS) EXTRA(SSSS bits of DIFF)        DIFF = DC - previous DC
    AC     := ZRL* HUFF_ac(RRRR << size_bits | SSSS) EXTRA(SSSS bits)
    EXTRA  := the value if positive, else value + 2**SSSS - 1 (T.81 §F.1.2.1.1)

One DC and one AC table are optimised per scan (per frame) from the symbol counts
(T.81 §K.2), with code lengths limited to 16 (§K.3 ``Adjust_BITS``) and the all-ones
code reserved. Tables are exchanged as T.81's ``BITS`` (16 counts, codes of length 1..16)
and ``HUFFVAL`` (symbols in code order).

Limits per bit depth: the orthonormal DCT of P-bit samples yields DC values within
+-2**(P+2) and AC values within +-2**(P+2), so with a quantization step of at least 1 the
DC difference needs at most P+3 bits and AC levels at most P+2 bits (T.81 Table F.1/F.2:
11 and 10 for P=8, 15 and 14 for P=12; 19 and 18 for P=16, beyond what a JPEG AC symbol
can hold, hence ``size_bits=5`` in ``.mdc``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError
from . import _kernels as K

__all__ = [
    "HuffmanTable",
    "max_categories",
    "symbol_counts",
    "encode_scan",
    "pack_scan",
    "stream_capacity",
    "tables_from_kernel",
    "new_table_arrays",
    "decode_scan",
    "raise_for_status",
    "scan_bits",
    "max_scan_bytes",
    "code_sizes_reference",
    "encode_scan_reference",
    "decode_scan_reference",
]

MAX_CODE_LENGTH = 16


def max_categories(bits_stored: int) -> tuple[int, int]:
    """Largest DC-difference and AC magnitude categories for P-bit samples: (P+3, P+2)."""
    return bits_stored + 3, bits_stored + 2


def alphabet_sizes(size_bits: int) -> tuple[int, int]:
    """(DC, AC) alphabet sizes for a given AC size-field width."""
    return 1 << size_bits, 16 << size_bits


@dataclass(frozen=True)
class HuffmanTable:
    """A Huffman table in T.81 form.

    Attributes
    ----------
    bits
        ``BITS``: uint8/int array of 16 counts, ``bits[i]`` = number of codes of length i+1.
    huffval
        ``HUFFVAL``: symbols in order of increasing code length (T.81 §B.2.4.2).
    """

    bits: np.ndarray
    huffval: np.ndarray
    #: Derived encoder / decoder arrays, memoised (not part of the table's identity).
    _derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_frequencies(cls, freq: np.ndarray) -> HuffmanTable:
        """Optimal length-limited table for symbol frequencies (T.81 §K.2, §K.3, §K.4).

        One kernel call (:func:`._kernels.huffman_table`), which also yields the encoder
        arrays (memoised for :meth:`encoder_arrays`). Twin: :meth:`from_frequencies_reference`.
        """
        freq = np.ascontiguousarray(freq, dtype=np.int64)
        n_sym = freq.shape[0]
        bits = np.empty(16, np.int32)
        huffval = np.empty(n_sym, np.int32)
        ehufco = np.empty(n_sym, np.int64)
        ehufsi = np.empty(n_sym, np.int64)
        n = K.huffman_table(freq, bits, huffval, ehufco, ehufsi)
        table = cls(bits, huffval[:n].copy())
        table._derived[("encoder", n_sym)] = (ehufco, ehufsi)
        return table

    @classmethod
    def from_frequencies_reference(cls, freq: np.ndarray) -> HuffmanTable:
        """NumPy / Python twin of :meth:`from_frequencies` (K.2 sizes, Figure K.3, K.4 sort)."""
        freq = np.asarray(freq, dtype=np.int64)
        used = np.flatnonzero(freq)
        if used.size == 0:
            return cls(np.zeros(16, np.int32), np.zeros(0, np.int32))
        # Only used symbols take part; K.2 runs over a compact alphabet (+ reserved).
        sizes = K.code_sizes(freq[used])
        bits = np.bincount(sizes, minlength=MAX_CODE_LENGTH + 1).astype(np.int64)
        bits = _adjust_bits(bits)
        order = np.lexsort((used, sizes[:-1]))  # by code size, then symbol (K.4)
        huffval = used[order].astype(np.int32)
        return cls(bits[1 : MAX_CODE_LENGTH + 1].astype(np.int32), huffval)

    def validate(self, alphabet: int, *, offset: int | None = None, segment: str = "Huffman table") -> None:
        """Check counts, symbols and the Kraft inequality (T.81 §C)."""
        # plain Python on the short lists: a stream's tables are checked on every decode
        arr = np.asarray(self.bits)
        bits = arr.tolist() if arr.shape == (16,) else []
        validate_lists(bits, np.asarray(self.huffval).tolist(), alphabet, offset=offset, segment=segment)

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Canonical (HUFFSIZE, HUFFCODE) lists in HUFFVAL order (T.81 Figures C.1, C.2)."""
        huffsize = np.repeat(np.arange(1, 17), np.asarray(self.bits, dtype=np.int64)).astype(np.int64)
        huffcode = np.zeros(huffsize.size, np.int64)
        code = 0
        si = 1
        for i, size in enumerate(huffsize):
            while size > si:
                code <<= 1
                si += 1
            huffcode[i] = code
            code += 1
        return huffsize, huffcode

    def encoder_arrays(self, alphabet: int) -> tuple[np.ndarray, np.ndarray]:
        """EHUFCO / EHUFSI indexed by symbol (T.81 Figure C.3); size 0 = symbol has no code."""
        key = ("encoder", alphabet)
        hit = self._derived.get(key)
        if hit is not None:
            return hit
        huffsize, huffcode = self.codes()
        ehufco = np.zeros(alphabet, np.int64)
        ehufsi = np.zeros(alphabet, np.int64)
        hv = np.asarray(self.huffval, dtype=np.int64)
        ehufco[hv] = huffcode
        ehufsi[hv] = huffsize
        self._derived[key] = (ehufco, ehufsi)
        return ehufco, ehufsi

    def decoder(self, *, size_bits: int, max_category: int, ac: bool) -> np.ndarray:
        """Decoder table of :func:`._kernels.huffman_decoder` (memoised): look-ahead of
        :data:`._kernels.LOOKAHEAD` bits, fast AC entries, canonical fallback."""
        key = ("decoder", size_bits, max_category, ac)
        hit = self._derived.get(key)
        if hit is not None:
            return hit
        hv = np.ascontiguousarray(self.huffval, dtype=np.int64)
        table = np.empty(K._HUFFVAL + hv.shape[0], np.int32)
        K.huffman_decoder(np.ascontiguousarray(self.bits, dtype=np.int64), hv, size_bits, max_category, ac, table)
        self._derived[key] = table
        return table

    def cost(self, freq: np.ndarray) -> int:
        """Bits spent on the Huffman codes for these frequencies."""
        ehufsi = self._derived.get(("size", len(freq)))
        if ehufsi is None:
            _, ehufsi = self.encoder_arrays(len(freq))
        return int(np.dot(np.asarray(freq, np.int64), ehufsi))


def _adjust_bits(bits: np.ndarray) -> np.ndarray:
    """T.81 §K.3 Figure K.3 ``Adjust_BITS``: limit code lengths to 16, drop the reserved code."""
    bits = bits.copy()
    i = len(bits) - 1
    while i > MAX_CODE_LENGTH:
        if bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
        else:
            i -= 1
    bits = bits[: MAX_CODE_LENGTH + 1].copy()
    i = MAX_CODE_LENGTH
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # the reserved symbol held the longest code
    return bits


def symbol_counts(zz: np.ndarray, *, size_bits: int, restart_interval: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(DC frequencies, AC frequencies, extra bits) of a scan."""
    n_dc, n_ac = alphabet_sizes(size_bits)
    dc_freq = np.zeros(n_dc, np.int64)
    ac_freq = np.zeros(n_ac, np.int64)
    extra = K.count_symbols(_as_levels(zz), size_bits, restart_interval, dc_freq, ac_freq)
    return dc_freq, ac_freq, int(extra)


def scan_bits(zz: np.ndarray, *, size_bits: int) -> int:
    """Exact size in bits of the scan with optimal tables (no stuffing, no table bytes)."""
    dc_freq, ac_freq, extra = symbol_counts(zz, size_bits=size_bits)
    return (
        HuffmanTable.from_frequencies(dc_freq).cost(dc_freq)
        + HuffmanTable.from_frequencies(ac_freq).cost(ac_freq)
        + extra
    )


def max_scan_bytes(nbits: int, *, stuff: bool, nblocks: int, restart_interval: int) -> int:
    """Upper bound of the coded size: payload + stuffing + restart markers and padding."""
    nbytes = nbits // 8 + 1
    if stuff:
        nbytes *= 2
    if restart_interval:
        nbytes += 3 * (nblocks // restart_interval + 1)
    return nbytes + 8


def _as_levels(zz: np.ndarray) -> np.ndarray:
    zz = np.ascontiguousarray(zz, dtype=np.int32)
    if zz.ndim != 2 or zz.shape[1] != 64:
        raise InvalidInputError(f"expected (nblocks, 64) levels, got shape {zz.shape}")
    return zz


def stream_capacity(nblocks: int, restart_interval: int) -> int:
    """Entries a symbol stream of ``nblocks`` blocks may need (:func:`._kernels.fdct_symbols`)."""
    return 65 * nblocks + (nblocks // restart_interval + 1 if restart_interval else 0) + 1


def pack_scan(
    stream: np.ndarray,
    nsymbols: int,
    dc_freq: np.ndarray,
    ac_freq: np.ndarray,
    extra: int,
    *,
    size_bits: int,
    nblocks: int,
    stuff: bool = False,
    restart_interval: int = 0,
    tables: tuple[HuffmanTable, HuffmanTable] | None = None,
) -> tuple[bytes, HuffmanTable, HuffmanTable]:
    """Entropy-code a symbol stream (:func:`._kernels.levels_symbols` / ``fdct_symbols``)
    with per-scan optimal tables (or the given ones); see :func:`encode_scan`."""
    n_dc, n_ac = alphabet_sizes(size_bits)
    if tables is None:
        dc_table = HuffmanTable.from_frequencies(dc_freq)
        ac_table = HuffmanTable.from_frequencies(ac_freq)
    else:
        dc_table, ac_table = tables
    dc_code, dc_size = dc_table.encoder_arrays(n_dc)
    ac_code, ac_size = ac_table.encoder_arrays(n_ac)
    if np.any(dc_size[dc_freq > 0] == 0) or np.any(ac_size[ac_freq > 0] == 0):
        raise InvalidInputError("the given Huffman tables have no code for a symbol this scan uses")
    nbits = int(np.dot(dc_freq, dc_size) + np.dot(ac_freq, ac_size)) + int(extra)
    code = np.zeros(K.RESTART_SYMBOL + 1, np.int64)
    size = np.zeros(K.RESTART_SYMBOL + 1, np.int64)
    code[:n_ac] = ac_code
    size[:n_ac] = ac_size
    code[n_ac : n_ac + n_dc] = dc_code
    size[n_ac : n_ac + n_dc] = dc_size
    out = np.empty(max_scan_bytes(nbits, stuff=stuff, nblocks=nblocks, restart_interval=restart_interval), np.uint8)
    n = K.pack_symbols(stream, nsymbols, code, size, stuff, out)
    return out[:n].tobytes(), dc_table, ac_table


def validate_lists(
    bits: list[int], hv: list[int], alphabet: int, *, offset: int | None = None, segment: str = "Huffman table"
) -> None:
    """:meth:`HuffmanTable.validate` on BITS / HUFFVAL as Python lists (a DHT parser holds them so:
    no arrays made for the check)."""
    if len(bits) != 16 or min(bits) < 0:
        raise CorruptStreamError("BITS must hold 16 non-negative counts", offset=offset, segment=segment)
    if sum(bits) != len(hv):
        raise CorruptStreamError(
            f"BITS counts {sum(bits)} codes but HUFFVAL has {len(hv)}",
            offset=offset,
            segment=segment,
        )
    if hv and (min(hv) < 0 or max(hv) >= alphabet):
        raise CorruptStreamError(
            f"HUFFVAL symbol {max(hv)} is outside the alphabet 0..{alphabet - 1}",
            offset=offset,
            segment=segment,
        )
    if len(set(hv)) != len(hv):
        raise CorruptStreamError("HUFFVAL repeats a symbol", offset=offset, segment=segment)
    code = 0
    for length, count in enumerate(bits, start=1):
        code += count
        if code > (1 << length):
            raise CorruptStreamError(
                f"{count} codes of length {length} overflow the code space (T.81 §C)",
                offset=offset,
                segment=segment,
            )
        code <<= 1


def tables_from_kernel(
    size_bits: int, dc_bits: np.ndarray, dc_huffval: np.ndarray, n_dc: int, ac_bits: np.ndarray,
    ac_huffval: np.ndarray, n_ac: int, dc_size: np.ndarray, ac_size: np.ndarray,
) -> tuple[HuffmanTable, HuffmanTable]:  # fmt: skip
    """The (DC, AC) :class:`HuffmanTable` pair a fused encoder kernel filled in."""
    dc = HuffmanTable(dc_bits, dc_huffval[:n_dc].copy())
    ac = HuffmanTable(ac_bits, ac_huffval[:n_ac].copy())
    a_dc, a_ac = alphabet_sizes(size_bits)
    dc._derived[("size", a_dc)] = dc_size
    ac._derived[("size", a_ac)] = ac_size
    return dc, ac


def new_table_arrays(size_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Empty BITS / HUFFVAL arrays (DC, then AC) for the fused encoder kernels to fill."""
    n_dc, n_ac = alphabet_sizes(size_bits)
    return np.empty(16, np.int32), np.empty(n_dc, np.int32), np.empty(16, np.int32), np.empty(n_ac, np.int32)


def encode_scan(
    zz: np.ndarray,
    *,
    size_bits: int,
    stuff: bool = False,
    restart_interval: int = 0,
    tables: tuple[HuffmanTable, HuffmanTable] | None = None,
) -> tuple[bytes, HuffmanTable, HuffmanTable]:
    """Entropy-code a scan of zigzag levels with per-scan optimal tables.

    Parameters
    ----------
    zz
        int32 (nblocks, 64) quantized levels in zigzag order.
    size_bits
        4 for JPEG symbols, 5 for ``.mdc``.
    stuff
        Insert 0x00 after every 0xFF (JPEG, T.81 §F.1.2.3).
    restart_interval
        Blocks per restart interval, 0 for none.
    tables
        (DC, AC) tables to use instead of optimised ones; every symbol must have a code.

    Returns
    -------
    (coded bytes, DC table, AC table)
    """
    zz = _as_levels(zz)
    if tables is None:  # one kernel: symbols, optimal tables, bit packing
        arrays = new_table_arrays(size_bits)
        coded, n_dcs, n_acs, dc_size, ac_size = K.encode_levels(zz, size_bits, stuff, restart_interval, *arrays)
        dc_table, ac_table = tables_from_kernel(size_bits, arrays[0], arrays[1], n_dcs, arrays[2], arrays[3], n_acs,
                                                dc_size, ac_size)  # fmt: skip
        return coded.tobytes(), dc_table, ac_table
    n_dc, n_ac = alphabet_sizes(size_bits)
    dc_freq = np.zeros(n_dc, np.int64)
    ac_freq = np.zeros(n_ac, np.int64)
    stream = np.empty(stream_capacity(zz.shape[0], restart_interval), np.int64)
    ns, extra = K.levels_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, stream)
    return pack_scan(
        stream, ns, dc_freq, ac_freq, extra, size_bits=size_bits, nblocks=zz.shape[0], stuff=stuff,
        restart_interval=restart_interval, tables=tables,
    )  # fmt: skip


_STATUS_MESSAGES = {
    K.E_BAD_CODE: "bit pattern is not a code of the Huffman table",
    K.E_RUN_OVERFLOW: "zero run goes past coefficient 63",
    K.E_BAD_CATEGORY: "magnitude category is larger than the bit depth allows",
    K.E_RESTART: "expected restart marker is missing or out of order (T.81 §F.1.2.3)",
}


def raise_for_status(status: int, pos: int, block: int, nblocks: int, segment: str) -> None:
    """Turn a decoding kernel's status into :class:`TruncatedStreamError` / :class:`CorruptStreamError`."""
    if status == K.OK:
        return
    if status == K.E_TRUNCATED:
        raise TruncatedStreamError(
            f"coded data ends inside block {block} of {nblocks}", offset=int(pos), segment=segment
        )
    raise CorruptStreamError(
        f"block {block} of {nblocks}: {_STATUS_MESSAGES[status]}", offset=int(pos), segment=segment
    )


def as_byte_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """The coded bytes as a uint8 array for the kernels (no copy)."""
    return np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data


def decode_scan(
    data: bytes | bytearray | memoryview | np.ndarray,
    nblocks: int,
    dc_table: HuffmanTable,
    ac_table: HuffmanTable,
    *,
    size_bits: int,
    bits_stored: int,
    start: int = 0,
    end: int | None = None,
    stuffed: bool = False,
    restart_interval: int = 0,
    segment: str = "scan",
) -> np.ndarray:
    """Decode ``nblocks`` blocks from ``data[start:end]`` into int32 (nblocks, 64) zigzag levels.

    Raises
    ------
    CorruptStreamError
        Invalid code, run or category, with the byte offset where it was noticed.
    TruncatedStreamError
        The blocks need more bits than ``data[start:end]`` holds.
    """
    buf = as_byte_array(data)
    end = len(buf) if end is None else end
    max_dc, max_ac = max_categories(bits_stored)
    out = np.empty((nblocks, 64), np.int32)
    status, pos, block = K.decode_blocks(
        buf, start, end, nblocks, dc_table.decoder(size_bits=size_bits, max_category=max_dc, ac=False),
        ac_table.decoder(size_bits=size_bits, max_category=max_ac, ac=True), size_bits, stuffed, restart_interval,
        max_dc, max_ac, out,
    )  # fmt: skip
    raise_for_status(status, pos, block, nblocks, segment)
    return out


# --------------------------------------------------------------------------------------
# Reference twins: plain Python, written independently of the kernels, for tests.
# --------------------------------------------------------------------------------------


def code_sizes_reference(freq: np.ndarray) -> np.ndarray:
    """Optimal (unlimited) Huffman code sizes by the textbook heap algorithm.

    Includes the reserved symbol (frequency 1) last, like :func:`._kernels.code_sizes`.
    Ties may be broken differently, so compare total cost, not sizes.
    """
    counts = [*np.asarray(freq, dtype=np.int64), 1]
    heap = [(f, i, [i]) for i, f in enumerate(counts) if f > 0]
    heapq.heapify(heap)
    sizes = np.zeros(len(counts), np.int32)
    while len(heap) > 1:
        f1, i1, s1 = heapq.heappop(heap)
        f2, i2, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            sizes[s] += 1
        heapq.heappush(heap, (f1 + f2, min(i1, i2), s1 + s2))
    return sizes


def _category(v: int) -> int:
    return int(abs(int(v))).bit_length()


def encode_scan_reference(zz: np.ndarray, dc_table: HuffmanTable, ac_table: HuffmanTable, *, size_bits: int) -> bytes:
    """Bit-string reference encoder (no stuffing, no restarts)."""
    n_dc, n_ac = alphabet_sizes(size_bits)
    dco, dcs = dc_table.encoder_arrays(n_dc)
    aco, acs = ac_table.encoder_arrays(n_ac)
    bits: list[str] = []

    def put(code: int, size: int) -> None:
        if size:
            bits.append(format(int(code), f"0{size}b"))

    def extra(v: int, s: int) -> None:
        put(v if v >= 0 else v + (1 << s) - 1, s)

    pred = 0
    for block in np.asarray(zz):
        diff = int(block[0]) - pred
        pred = int(block[0])
        s = _category(diff)
        put(dco[s], dcs[s])
        extra(diff, s)
        nz = np.flatnonzero(block[1:])
        last = int(nz[-1]) + 1 if nz.size else 0
        run = 0
        for k in range(1, last + 1):
            v = int(block[k])
            if v == 0:
                run += 1
                continue
            while run > 15:
                put(aco[15 << size_bits], acs[15 << size_bits])
                run -= 16
            s = _category(v)
            put(aco[(run << size_bits) | s], acs[(run << size_bits) | s])
            extra(v, s)
            run = 0
        if last < 63:
            put(aco[0], acs[0])
    text = "".join(bits)
    text += "1" * (-len(text) % 8)
    return bytes(int(text[i : i + 8], 2) for i in range(0, len(text), 8))


def decode_scan_reference(
    data: bytes, nblocks: int, dc_table: HuffmanTable, ac_table: HuffmanTable, *, size_bits: int
) -> np.ndarray:
    """Bit-string reference decoder (no stuffing, no restarts, no error handling)."""
    bitstr = "".join(format(b, "08b") for b in data)
    pos = 0

    def table_map(t: HuffmanTable) -> dict[str, int]:
        sizes, codes = t.codes()
        return {format(int(c), f"0{int(s)}b"): int(v) for s, c, v in zip(sizes, codes, t.huffval)}

    dcm, acm = table_map(dc_table), table_map(ac_table)

    def symbol(m: dict[str, int]) -> int:
        nonlocal pos
        for n in range(1, 17):
            if bitstr[pos : pos + n] in m:
                v = m[bitstr[pos : pos + n]]
                pos += n
                return v
        raise CorruptStreamError("no code")

    def receive(s: int) -> int:
        nonlocal pos
        v = int(bitstr[pos : pos + s], 2) if s else 0
        pos += s
        return v - (1 << s) + 1 if s and v < (1 << (s - 1)) else v

    out = np.zeros((nblocks, 64), np.int32)
    pred = 0
    for b in range(nblocks):
        pred += receive(symbol(dcm))
        out[b, 0] = pred
        k = 1
        while k < 64:
            sym = symbol(acm)
            r, s = sym >> size_bits, sym & ((1 << size_bits) - 1)
            if s == 0:
                if r == 15:
                    k += 16
                    continue
                break
            k += r
            out[b, k] = receive(s)
            k += 1
    return out
