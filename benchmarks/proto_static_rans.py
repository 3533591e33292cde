#!/usr/bin/env python3
"""Prototype, not a format: what a static-model rANS coder of the 2.1 symbols would cost and gain.

Usage (from the repository root)::

    nice -n 10 python benchmarks/proto_static_rans.py [--clusters 16 48 4] [--repeat 15]

For one slice of each shared series at ~0.4, ~1 and ~2 bpp (2.1 fast levels), the symbols of
``docs/format.md`` §13.2 (same contexts, same raw bits) are coded with **static per-frame tables**
instead of adaptive CDFs: every context of a given alphabet (16, 4, 2) is mapped to one of K
clusters (k-means on the frame's histograms, cost = cross-entropy), each cluster gets a 12-bit
frequency table, and the symbols go through a byte-wise rANS coder with two interleaved states
(ryg_rans style: decoding is ``slot = x & 4095``, a table lookup, a multiply-add and a byte
refill; no adaptation). Printed per frame:

* bytes: 2.1 adaptive (measured), the static coder's bytes (measured, the rANS output), and an
  estimate of the side information a stream would need: the cluster tables (``alphabet - 1``
  frequencies of 12 bits each, 4 bits for an empty one) and the context map (its empirical
  entropy over all contexts of each alphabet, unused contexts as one more label);
* level decoding time, thread CPU, best of ``--repeat``, A/B interleaved: 2.1's
  ``decode_coefficients_ms`` against the prototype decoder (the same block syntax and context
  derivation, the symbols from rANS); both checked to give the same levels.

Nothing here is part of the codec: it measures whether entropy coder 3 (issue 12) would pay.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec.codec import _kernels_ms as KM  # noqa: E402
from medcodec.codec import _kernels_v2 as K  # noqa: E402
from medcodec.codec import container, mdc2, transform  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
PREC = 12
M = 1 << PREC
RANS_L = 1 << 23
RAW_CHUNK = 12  # raw values go through rANS as uniform symbols of at most 12 bits


@numba.njit(cache=True, nogil=True)
def _emit_raw(v, nb, ev_ctx, ev_val, ev_nb, n):
    """Raw value ``v`` of ``nb`` bits as chunks of at most RAW_CHUNK bits, most significant first."""
    while nb > 0:
        take = nb - ((nb - 1) // RAW_CHUNK) * RAW_CHUNK  # the top chunk first
        nb -= take
        ev_ctx[n] = -1
        ev_val[n] = (v >> nb) & ((1 << take) - 1)
        ev_nb[n] = take
        n += 1
    return n


@numba.njit(cache=True, nogil=True)
def emit(levels, bx, ev_ctx, ev_val, ev_nb):
    """The event sequence of 2.1's encoder (docs/format.md §13.2): (context, symbol) or raw chunks."""
    nblocks = levels.shape[0]
    posc = KM.POS_FINE if nblocks >= KM.FINE_POSITION_BLOCKS else K.POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    n = 0
    for i in range(nblocks):
        nz = 0
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        nzs[i] = nz
        ev_ctx[n] = KM.M_NZ + K._nz_ctx(nzs, i, bx)
        ev_val[n] = min(nz, 15)
        n += 1
        if nz >= 15:
            ev_ctx[n] = KM.M_NZH
            ev_val[n] = (nz - 15) >> 2
            ev_ctx[n + 1] = KM.M_NZL
            ev_val[n + 1] = (nz - 15) & 3
            n += 2
        pred, dact = K._dc_context(levels, i, bx)
        r = np.int64(levels[i, 0]) - pred
        a = abs(r)
        nb = K._bitlen(a)
        ev_ctx[n] = KM.M_DC + dact
        ev_val[n] = min(nb, 15)
        n += 1
        if nb >= 15:
            n = _emit_raw(nb - 15, 3, ev_ctx, ev_val, ev_nb, n)
        if nb > 0:
            n = _emit_raw(1 if r < 0 else 0, 1, ev_ctx, ev_val, ev_nb, n)
            if nb >= 2:
                ev_ctx[n] = KM.M_DCM + nb - 2
                ev_val[n] = (a >> (nb - 2)) & 1
                n += 1
                n = _emit_raw(a & ((1 << (nb - 2)) - 1), nb - 2, ev_ctx, ev_val, ev_nb, n)
        has_left = i % bx > 0
        has_up = i >= bx
        rem = nz
        k = 1
        while rem > 0:
            v = np.int64(levels[i, k])
            m = abs(v)
            band = K.POS_BAND[k]
            nsum = 0
            if has_left:
                nsum += abs(np.int64(levels[i - 1, k]))
            if has_up:
                nsum += abs(np.int64(levels[i - bx, k]))
            nbk = KM.NBR_LUT[min(nsum, 21)]
            ev_ctx[n] = KM.M_BASE + (posc[k] * KM.REM_BUCKETS + KM.REM_LUT[rem]) * KM.NBR_BUCKETS + nbk
            ev_val[n] = min(m, 3)
            n += 1
            if m != 0:
                if m >= 3:
                    left = m - 3
                    j = 0
                    while j < 4:
                        ev_ctx[n] = KM.M_BR + band * KM.NBR_BUCKETS + nbk
                        ev_val[n] = min(left, 3)
                        n += 1
                        if left < 3:
                            break
                        left -= 3
                        j += 1
                    if j == 4:
                        g = K._bitlen(left)
                        ev_ctx[n] = KM.M_ESC + band
                        ev_val[n] = min(g, 15)
                        n += 1
                        if g >= 15:
                            n = _emit_raw(g - 15, 3, ev_ctx, ev_val, ev_nb, n)
                        if g > 1:
                            n = _emit_raw(left - (1 << (g - 1)), g - 1, ev_ctx, ev_val, ev_nb, n)
                n = _emit_raw(1 if v < 0 else 0, 1, ev_ctx, ev_val, ev_nb, n)
                rem -= 1
            k += 1
    return n


def cluster(hist: np.ndarray, k: int, iters: int = 8) -> np.ndarray:
    """k-means of context histograms (rows) under cross-entropy: the cluster of each context."""
    used = np.flatnonzero(hist.sum(1))
    labels = np.zeros(len(hist), np.int64)
    if len(used) <= k:
        labels[used] = np.arange(len(used))
        return labels
    h = hist[used]
    cent = h[np.argsort(-h.sum(1))[:k]].astype(np.float64)
    for _ in range(iters):
        q = (cent + 0.5) / (cent + 0.5).sum(1, keepdims=True)
        cost = -(h @ np.log2(q).T)  # (contexts, clusters): bits of each context under each cluster
        lab = np.argmin(cost, axis=1)
        cent = np.zeros_like(cent)
        np.add.at(cent, lab, h)
    labels[used] = lab
    return labels


def quantize_freqs(counts: np.ndarray) -> np.ndarray:
    """12-bit frequencies (sum M), every counted symbol at least 1."""
    n = counts.astype(np.float64)
    if n.sum() == 0:
        f = np.zeros(len(n), np.int64)
        f[0] = M
        return f
    f = np.maximum((n * M / n.sum()).astype(np.int64), (n > 0).astype(np.int64))
    while f.sum() > M:
        i = int(np.argmax(np.where(f > 1, f, 0)))
        f[i] -= 1
    f[int(np.argmax(n))] += M - f.sum()
    return f


def build_tables(ev_ctx, ev_val, clusters):
    """Per context its table row; per table row freq/cum (16 wide) and the slot -> symbol lookup."""
    nctx = KM.N_MCTX
    alph = KM.ALPHABET
    ctx_row = np.zeros(nctx, np.int64)
    freqs, side_bits, row = [], 0.0, 0
    sel = ev_ctx >= 0
    hist = np.zeros((nctx, 16), np.int64)
    np.add.at(hist, (ev_ctx[sel], ev_val[sel]), 1)
    for a, kk in zip((16, 4, 2), clusters, strict=True):
        ids = np.flatnonzero(alph == a)
        lab = cluster(hist[ids, :a], kk)
        nl = int(lab.max()) + 1
        ctx_row[ids] = row + lab
        for c in range(nl):
            cnt = hist[ids[lab == c], :a].sum(0)
            f = np.zeros(16, np.int64)
            f[:a] = quantize_freqs(cnt)
            freqs.append(f)
            side_bits += (a - 1) * PREC if cnt.sum() else 4
        # the context map: its empirical entropy, unused contexts one more label
        lab_u = np.where(hist[ids].sum(1) > 0, lab, nl)
        p = np.bincount(lab_u) / len(lab_u)
        p = p[p > 0]
        side_bits += len(lab_u) * float(-(p * np.log2(p)).sum())
        row += nl
    freq = np.array(freqs, np.int64)
    cum = np.zeros_like(freq)
    cum[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    lut = np.zeros((len(freq), M), np.uint8)
    for r in range(len(freq)):
        lut[r] = np.repeat(np.arange(16), freq[r])
    return ctx_row, freq, cum, lut, side_bits


@numba.njit(cache=True, nogil=True)
def rans_encode(ev_ctx, ev_val, ev_nb, n, ctx_row, freq, cum, out):
    """Byte-wise rANS, two interleaved states (event i on state i & 1), written backwards; returns the start."""
    x = np.full(2, RANS_L, dtype=np.int64)
    p = out.shape[0]
    for e in range(n - 1, -1, -1):
        s = e & 1
        c = ev_ctx[e]
        if c >= 0:
            r = ctx_row[c]
            f = freq[r, ev_val[e]]
            st = cum[r, ev_val[e]]
        else:
            f = np.int64(1) << (PREC - ev_nb[e])
            st = ev_val[e] * f
        xs = x[s]
        xmax = ((RANS_L >> PREC) << 8) * f
        while xs >= xmax:
            p -= 1
            out[p] = xs & 0xFF
            xs >>= 8
        x[s] = ((xs // f) << PREC) + (xs % f) + st
    for s in (1, 0):
        for _ in range(4):
            p -= 1
            out[p] = x[s] & 0xFF
            x[s] >>= 8
    return p


@numba.njit(cache=True, nogil=True)
def _rsym(xa, pos, data, row, freq, cum, lut):
    slot = xa & (M - 1)
    s = np.int64(lut[row, slot])
    xa = freq[row, s] * (xa >> PREC) + slot - cum[row, s]
    while xa < RANS_L:
        xa = (xa << 8) | np.int64(data[pos])
        pos += 1
    return s, xa, pos


@numba.njit(cache=True, nogil=True)
def _rraw(xa, pos, data, nb):
    slot = xa & (M - 1)
    v = slot >> (PREC - nb)
    xa = (np.int64(1) << (PREC - nb)) * (xa >> PREC) + slot - (v << (PREC - nb))
    while xa < RANS_L:
        xa = (xa << 8) | np.int64(data[pos])
        pos += 1
    return v, xa, pos


@numba.njit(cache=True, nogil=True)
def _rbits(xa, pos, data, nb):
    v = np.int64(0)
    while nb > 0:
        take = nb - ((nb - 1) // RAW_CHUNK) * RAW_CHUNK
        nb -= take
        c, xa, pos = _rraw(xa, pos, data, take)
        v = (v << take) | c
    return v, xa, pos


@numba.njit(cache=True, nogil=True)
def rans_decode_levels(data, start, bx, ctx_row, freq, cum, lut, levels):
    """The 2.1 block syntax with every symbol from the static rANS stream (no checks: a prototype)."""
    nblocks = levels.shape[0]
    posc = KM.POS_FINE if nblocks >= KM.FINE_POSITION_BLOCKS else K.POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    pos = start
    xa = np.int64(0)
    xb = np.int64(0)
    for _ in range(4):
        xa = (xa << 8) | np.int64(data[pos])
        pos += 1
    for _ in range(4):
        xb = (xb << 8) | np.int64(data[pos])
        pos += 1
    # state order: the last 4 bytes written first were state 1's... the encoder wrote state 1 then 0
    # backwards, so state 0 comes first, big-endian within each
    for i in range(nblocks):
        nz, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_NZ + K._nz_ctx(nzs, i, bx)], freq, cum, lut)
        xa, xb = xb, xa
        if nz == 15:
            hi4, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_NZH], freq, cum, lut)
            xa, xb = xb, xa
            lo2, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_NZL], freq, cum, lut)
            xa, xb = xb, xa
            nz = 15 + 4 * hi4 + lo2
        nzs[i] = nz
        pred, dact = K._dc_context(levels, i, bx)
        nb, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_DC + dact], freq, cum, lut)
        xa, xb = xb, xa
        if nb >= 15:
            x3, xa, pos = _rraw(xa, pos, data, 3)
            xa, xb = xb, xa
            nb = 15 + x3
        r = np.int64(0)
        if nb > 0:
            neg, xa, pos = _rraw(xa, pos, data, 1)
            xa, xb = xb, xa
            r = np.int64(1)
            if nb >= 2:
                top, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_DCM + nb - 2], freq, cum, lut)
                xa, xb = xb, xa
                mant = np.int64(0)
                rest = nb - 2
                while rest > 0:
                    take = rest - ((rest - 1) // RAW_CHUNK) * RAW_CHUNK
                    rest -= take
                    c, xa, pos = _rraw(xa, pos, data, take)
                    xa, xb = xb, xa
                    mant = (mant << take) | c
                r = ((np.int64(2) | top) << (nb - 2)) + mant
            if neg:
                r = -r
        levels[i, 0] = pred + r
        has_left = i % bx > 0
        has_up = i >= bx
        rem = nz
        k = 1
        while rem > 0:
            band = K.POS_BAND[k]
            nsum = np.int64(0)
            if has_left:
                nsum += abs(np.int64(levels[i - 1, k]))
            if has_up:
                nsum += abs(np.int64(levels[i - bx, k]))
            nbk = KM.NBR_LUT[min(nsum, np.int64(21))]
            ctx = KM.M_BASE + (posc[k] * KM.REM_BUCKETS + KM.REM_LUT[rem]) * KM.NBR_BUCKETS + nbk
            m, xa, pos = _rsym(xa, pos, data, ctx_row[ctx], freq, cum, lut)
            xa, xb = xb, xa
            if m != 0:
                if m == 3:
                    brr = ctx_row[KM.M_BR + band * KM.NBR_BUCKETS + nbk]
                    j = 0
                    while j < 4:
                        br, xa, pos = _rsym(xa, pos, data, brr, freq, cum, lut)
                        xa, xb = xb, xa
                        m += br
                        if br < 3:
                            break
                        j += 1
                    if j == 4:
                        g, xa, pos = _rsym(xa, pos, data, ctx_row[KM.M_ESC + band], freq, cum, lut)
                        xa, xb = xb, xa
                        if g >= 15:
                            x3, xa, pos = _rraw(xa, pos, data, 3)
                            xa, xb = xb, xa
                            g = 15 + x3
                        if g > 1:
                            mant = np.int64(0)
                            rest = g - 1
                            while rest > 0:
                                take = rest - ((rest - 1) // RAW_CHUNK) * RAW_CHUNK
                                rest -= take
                                c, xa, pos = _rraw(xa, pos, data, take)
                                xa, xb = xb, xa
                                mant = (mant << take) | c
                            m += (np.int64(1) << (g - 1)) + mant
                        elif g == 1:
                            m += 1
                neg, xa, pos = _rraw(xa, pos, data, 1)
                xa, xb = xb, xa
                levels[i, k] = -m if neg else m
                rem -= 1
            k += 1
    return pos


def best(fn, repeat: int) -> float:
    b = float("inf")
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        b = min(b, time.thread_time() - t)
    return b * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--clusters", type=int, nargs=3, default=[16, 48, 4], help="K for 16-, 4- and 2-ary contexts")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    series = (("ct_chest_lungpetctdx_A0001_philips", (25, 46, 65)), ("ct_head_phantom_philips_ingenuity", (45, 78, 93)),
              ("mr_head_ge_signa_t1_ctk", (25, 46, 65)))  # fmt: skip
    for name, qs in series:
        paths = sorted((args.data / name).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        f = ds.pixel_array
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        for q in qs:
            data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, entropy="arith", intra=False, jobs=1)
            h, idx = container.parse_container(data)
            fr = mdc2.read_dct_frame(data, h, idx[0])
            by, bx = transform.blocks_shape(*f.shape)
            arr = np.frombuffer(data, np.uint8)
            lv = mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=h.entropy)
            cap = lv.size * 12 + 1024
            ev_ctx, ev_val, ev_nb = np.empty(cap, np.int64), np.empty(cap, np.int64), np.zeros(cap, np.int64)
            n = emit(lv, bx, ev_ctx, ev_val, ev_nb)
            ev_ctx, ev_val, ev_nb = ev_ctx[:n], ev_val[:n], ev_nb[:n]
            ctx_row, freq, cum, lut, side_bits = build_tables(ev_ctx, ev_val, args.clusters)
            out = np.empty(cap, np.uint8)
            p0 = rans_encode(ev_ctx, ev_val, ev_nb, n, ctx_row, freq, cum, out)
            stream = np.concatenate([out[p0:], np.zeros(16, np.uint8)])  # slack: the prototype reads unchecked
            got = np.zeros_like(lv)
            rans_decode_levels(stream, 0, bx, ctx_row, freq, cum, lut, got)
            assert np.array_equal(got, lv), "prototype round trip failed"
            adaptive = fr.end - fr.start
            static = len(out) - p0
            t_ms = t_rs = float("inf")
            for _ in range(args.repeat):  # A/B interleaved
                t_ms = min(t_ms, best(lambda: mdc2.decode_levels(arr, fr.start, fr.end, by * bx, bx, coder=h.entropy), 1))
                t_rs = min(t_rs, best(lambda: rans_decode_levels(stream, 0, bx, ctx_row, freq, cum, lut,
                                                                  np.zeros_like(lv)), 1))  # fmt: skip
            nsym = int(np.sum(ev_ctx >= 0))
            print(f"{name[:14]} q{q} {len(data) * 8 / f.size:.2f} bpp: {nsym} symbols + {n - nsym} raw chunks; bytes 2.1 "
                  f"{adaptive}, static rANS {static} ({static / adaptive - 1:+.1%}) + side ~{side_bits / 8:.0f} "
                  f"({(static + side_bits / 8) / adaptive - 1:+.1%} in all, {len(freq)} tables); level decoding "
                  f"2.1 {t_ms:.2f} ms, rANS {t_rs:.2f} ms ({t_ms / t_rs:.2f}x; {t_rs * 1e6 / n:.1f} ns per event)",
                  flush=True)  # fmt: skip
    print(f"load average {open('/proc/loadavg').read().split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
