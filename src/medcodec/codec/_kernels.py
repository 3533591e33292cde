"""numba kernels for the entropy coder: ndarray in, ndarray/ints out, no Python objects.

Each kernel has a plain-Python reference twin in :mod:`medcodec.codec.entropy`
(``*_reference``) and a test that both agree (``tests/codec/test_kernels.py``). With
``NUMBA_DISABLE_JIT=1`` these functions run as ordinary Python, which is how CI checks
that the twins and the kernels are the same algorithm.

Conventions shared by the kernels (T.81 Annex F, generalised):

* ``zz``: int32 array (nblocks, 64), quantized levels in zigzag order.
* ``size_bits``: width of the magnitude-category field in an AC symbol. JPEG uses 4
  (``RRRRSSSS``, one byte); ``.mdc`` uses 5 so that categories up to 19 (16-bit data)
  fit. AC symbol = ``(run << size_bits) | size``; EOB = 0; ZRL = ``15 << size_bits``.
* Huffman decoding uses a 65536-entry look-up table indexed by the next 16 bits:
  entry = ``symbol * 32 + code_length``; 0 marks a bit pattern that is not a code.
* The bit reader never indexes outside ``data[start:end]``: past the end (or at a
  marker, for stuffed JPEG data) it feeds zero bytes and counts them, so the caller can
  tell a stream that read beyond its own data (truncated) from a good one.

Status codes returned by :func:`decode_blocks`:
0 ok, 1 invalid Huffman code, 2 run past coefficient 63, 3 magnitude category too
large, 4 read past the end of the data, 5 restart marker missing or out of order.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

OK = 0
E_BAD_CODE = 1
E_RUN_OVERFLOW = 2
E_BAD_CATEGORY = 3
E_TRUNCATED = 4
E_RESTART = 5

_BUF_MASK = (1 << 48) - 1


@_jit
def bit_length(x):
    """Magnitude category: number of bits of |x| (0 for 0)."""
    x = abs(x)
    s = 0
    while x:
        s += 1
        x >>= 1
    return s


@_jit
def last_nonzero(zz, b):
    """Index of the last non-zero AC level of block b, 0 if there is none."""
    k = 63
    while k > 0 and zz[b, k] == 0:
        k -= 1
    return k


@_jit
def count_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq):
    """Count DC and AC Huffman symbols of a scan (T.81 §F.1.2), adding to the freq arrays.

    Returns the number of extra (magnitude) bits the scan will need.
    """
    pred = 0
    extra = 0
    zrl = 15 << size_bits
    for b in range(zz.shape[0]):
        if restart_interval > 0 and b % restart_interval == 0:
            pred = 0
        dc = zz[b, 0]
        s = bit_length(dc - pred)
        pred = dc
        dc_freq[s] += 1
        extra += s
        last = last_nonzero(zz, b)
        r = 0
        for k in range(1, last + 1):
            v = zz[b, k]
            if v == 0:
                r += 1
                continue
            while r > 15:
                ac_freq[zrl] += 1
                r -= 16
            s = bit_length(v)
            ac_freq[(r << size_bits) | s] += 1
            extra += s
            r = 0
        if last < 63:
            ac_freq[0] += 1
    return extra


@_jit
def code_sizes(freq_in):
    """Optimal Huffman code sizes, T.81 §K.2 Figure K.1, with the reserved all-ones code.

    ``freq_in`` has one entry per symbol of the alphabet. Returns int32 code sizes for
    ``len(freq_in) + 1`` symbols (the last is the reserved symbol, frequency 1, that
    keeps any real code from being all ones); sizes may exceed 16, see
    :func:`limit_code_lengths`.
    """
    n = freq_in.shape[0] + 1
    freq = np.zeros(n, np.int64)
    freq[: n - 1] = freq_in
    freq[n - 1] = 1
    codesize = np.zeros(n, np.int32)
    others = np.full(n, -1, np.int32)
    while True:
        # V1: least non-zero frequency (the largest index among ties); V2: next least.
        v1 = -1
        v2 = -1
        for i in range(n):
            f = freq[i]
            if f == 0:
                continue
            if v1 < 0 or f <= freq[v1]:
                v2 = v1
                v1 = i
            elif v2 < 0 or f <= freq[v2]:
                v2 = i
        if v2 < 0:
            break
        freq[v1] += freq[v2]
        freq[v2] = 0
        codesize[v1] += 1
        while others[v1] >= 0:
            v1 = others[v1]
            codesize[v1] += 1
        others[v1] = v2
        codesize[v2] += 1
        while others[v2] >= 0:
            v2 = others[v2]
            codesize[v2] += 1
    return codesize


@_jit
def _put(out, pos, acc, nbits, code, length, stuff):
    acc = (acc << length) | code
    nbits += length
    while nbits >= 8:
        nbits -= 8
        byte = (acc >> nbits) & 0xFF
        out[pos] = byte
        pos += 1
        if stuff and byte == 0xFF:
            out[pos] = 0
            pos += 1
    acc &= (1 << nbits) - 1
    return pos, acc, nbits


@_jit
def _extra_bits(v, s):
    return v if v >= 0 else v + (1 << s) - 1


@_jit
def encode_blocks(zz, dc_code, dc_size, ac_code, ac_size, size_bits, stuff, restart_interval, out):
    """Huffman-code a scan into ``out`` (T.81 §F.1.2); returns the number of bytes written.

    The final byte is padded with 1 bits (T.81 §F.1.2.3). With ``restart_interval`` > 0
    a byte-aligned RSTm marker (m = 0..7 cyclic) separates every ``restart_interval``
    blocks and the DC prediction restarts at 0. ``out`` must be large enough (see
    :func:`medcodec.codec.entropy.max_scan_bytes`).
    """
    pos = 0
    acc = 0
    nbits = 0
    pred = 0
    rst = 0
    zrl = 15 << size_bits
    for b in range(zz.shape[0]):
        if restart_interval > 0 and b > 0 and b % restart_interval == 0:
            if nbits > 0:
                pad = 8 - nbits
                pos, acc, nbits = _put(out, pos, acc, nbits, (1 << pad) - 1, pad, stuff)
            out[pos] = 0xFF
            out[pos + 1] = 0xD0 + (rst & 7)
            pos += 2
            rst += 1
            pred = 0
        dc = zz[b, 0]
        diff = dc - pred
        pred = dc
        s = bit_length(diff)
        pos, acc, nbits = _put(out, pos, acc, nbits, dc_code[s], dc_size[s], stuff)
        if s:
            pos, acc, nbits = _put(out, pos, acc, nbits, _extra_bits(diff, s), s, stuff)
        last = last_nonzero(zz, b)
        r = 0
        for k in range(1, last + 1):
            v = zz[b, k]
            if v == 0:
                r += 1
                continue
            while r > 15:
                pos, acc, nbits = _put(out, pos, acc, nbits, ac_code[zrl], ac_size[zrl], stuff)
                r -= 16
            s = bit_length(v)
            sym = (r << size_bits) | s
            pos, acc, nbits = _put(out, pos, acc, nbits, ac_code[sym], ac_size[sym], stuff)
            pos, acc, nbits = _put(out, pos, acc, nbits, _extra_bits(v, s), s, stuff)
            r = 0
        if last < 63:
            pos, acc, nbits = _put(out, pos, acc, nbits, ac_code[0], ac_size[0], stuff)
    if nbits > 0:
        pad = 8 - nbits
        pos, acc, nbits = _put(out, pos, acc, nbits, (1 << pad) - 1, pad, stuff)
    return pos


@_jit
def build_lut(huffsize, huffcode, huffval):
    """65536-entry decode table from the canonical code list (T.81 §C, §F.2.2.3)."""
    lut = np.zeros(65536, np.int32)
    for i in range(huffsize.shape[0]):
        size = huffsize[i]
        first = huffcode[i] << (16 - size)
        count = 1 << (16 - size)
        entry = huffval[i] * 32 + size
        for j in range(first, first + count):
            lut[j] = entry
    return lut


@_jit
def _fill(data, pos, end, acc, nbits, fake, marker, stuffed):
    while nbits <= 40:
        byte = 0
        if pos < end and not marker:
            byte = int(data[pos])
            if stuffed and byte == 0xFF:
                if pos + 1 < end and data[pos + 1] == 0:
                    pos += 2
                else:
                    marker = True
                    byte = 0
                    fake += 1
            else:
                pos += 1
        else:
            fake += 1
        acc = ((acc << 8) | byte) & _BUF_MASK
        nbits += 8
    return pos, acc, nbits, fake, marker


@_jit
def decode_blocks(data, start, end, nblocks, dc_lut, ac_lut, size_bits, stuffed, restart_interval,
                  max_dc, max_ac, out):
    """Decode ``nblocks`` blocks of a Huffman-coded scan from ``data[start:end]`` into ``out``.

    Returns ``(status, pos, block)``: status (module docstring), the byte position the
    reader had reached (it reads up to 6 bytes ahead, so this is where an error was
    noticed, not where the scan ends), and the block being decoded.
    """
    pos = start
    acc = 0
    nbits = 0
    fake = 0
    marker = False
    pred = 0
    rst = 0
    size_mask = (1 << size_bits) - 1
    for b in range(nblocks):
        if restart_interval > 0 and b > 0 and b % restart_interval == 0:
            if fake * 8 > nbits:
                return E_TRUNCATED, pos, b
            acc = 0
            nbits = 0
            fake = 0
            marker = False
            # skip fill bytes 0xFF before the marker (T.81 §B.1.1.2)
            while pos + 1 < end and data[pos] == 0xFF and data[pos + 1] == 0xFF:
                pos += 1
            if pos + 1 < end and data[pos] == 0xFF and data[pos + 1] == 0xD0 + (rst & 7):
                pos += 2
                rst += 1
            else:
                return E_RESTART, pos, b
            pred = 0
        for k in range(64):
            out[b, k] = 0
        pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
        entry = int(dc_lut[(acc >> (nbits - 16)) & 0xFFFF])
        if entry == 0:
            return E_BAD_CODE, pos, b
        nbits -= entry & 31
        s = entry >> 5
        if s > max_dc:
            return E_BAD_CATEGORY, pos, b
        if s:
            pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
            nbits -= s
            v = (acc >> nbits) & ((1 << s) - 1)
            if v < (1 << (s - 1)):
                v -= (1 << s) - 1
            pred += v
        out[b, 0] = pred
        k = 1
        while k < 64:
            pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
            entry = int(ac_lut[(acc >> (nbits - 16)) & 0xFFFF])
            if entry == 0:
                return E_BAD_CODE, pos, b
            nbits -= entry & 31
            sym = entry >> 5
            r = sym >> size_bits
            s = sym & size_mask
            if s == 0:
                if r == 15:
                    k += 16
                    if k > 64:
                        return E_RUN_OVERFLOW, pos, b
                    continue
                break  # EOB (other r/0 symbols are rejected when the table is read)
            k += r
            if k > 63:
                return E_RUN_OVERFLOW, pos, b
            if s > max_ac:
                return E_BAD_CATEGORY, pos, b
            if nbits < s:
                pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
            nbits -= s
            v = (acc >> nbits) & ((1 << s) - 1)
            if v < (1 << (s - 1)):
                v -= (1 << s) - 1
            out[b, k] = v
            k += 1
    if fake * 8 > nbits:
        return E_TRUNCATED, pos, nblocks
    return OK, pos, nblocks
