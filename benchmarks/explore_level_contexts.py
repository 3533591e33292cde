#!/usr/bin/env python3
"""Ideal cost of the AC base symbol of the default's intra residuals under other context models.

Usage (from the repository root; ~1 minute)::

    python benchmarks/explore_level_contexts.py

Encodes 3 slices of each shared series with the default (quality 15 / 45 / 80), keeps the residual
levels the intra frames code, and charges the 4-ary base symbol (0, 1, 2, >= 3) -log2 of its
adaptive CDF (the 2.1 update rule, docs/format.md §13.1) under: v0 the 2.1 contexts (position,
remaining count, left/up magnitudes); v1 two-rate adaptation (mean of a fast CDF, rate capped at
4 or 5, and the 2.1 one); v2 plus a context from the block's own coded neighbours in frequency
((u-1, v), (u, v-1); 4 buckets); v3 the same as a 2-bucket flag. Printed: each variant's change in
% of the whole stream (docs/design-notes.md, "Richer contexts for the residual levels").
"""

import glob
from pathlib import Path

import numba
import numpy as np
import pydicom

import medcodec
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import intra
from medcodec.codec.zigzag import ZIGZAG

CAP = []
orig = intra._encode_levels


def grab(levels, bx, within=False):
    CAP.append((levels.copy(), bx))
    return orig(levels, bx, within)


intra._encode_levels = grab
ZZ = np.asarray(ZIGZAG, dtype=np.int64)  # zigzag k -> natural index
INV = np.empty(64, np.int64)
INV[ZZ] = np.arange(64)
# intra-block neighbours in zigzag index: (u-1,v) and (u,v-1)
NB1 = np.full(64, -1, np.int64)
NB2 = np.full(64, -1, np.int64)
for k in range(64):
    n = ZZ[k]
    u, v = divmod(n, 8)
    if u > 0:
        NB1[k] = INV[(u - 1) * 8 + v]
    if v > 0:
        NB2[k] = INV[u * 8 + v - 1]
RATE = KM.RATE


@numba.njit
def cost(levels, bx, variant, posc, fast_rate, slow_rate):
    nb = levels.shape[0]
    nctx = 64 * 6 * 7 * 8
    C1 = np.zeros((nctx, 4))
    C2 = np.zeros((nctx, 4))
    cnt = np.zeros(nctx, np.int64)
    for c in range(nctx):
        C1[c, 1] = 16384
        C1[c, 2] = 26214
        C1[c, 3] = 29491
        C2[c, 1] = 16384
        C2[c, 2] = 26214
        C2[c, 3] = 29491
    total = 0.0
    for i in range(nb):
        nz = 0
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        rem = nz
        k = 1
        hl = i % bx > 0
        hu = i >= bx
        while rem > 0:
            m = abs(levels[i, k])
            s = min(m, 3)
            nsum = 0
            if hl:
                nsum += abs(levels[i - 1, k])
            if hu:
                nsum += abs(levels[i - bx, k])
            nbk = KM.NBR_LUT[min(nsum, 21)]
            extra = 0
            if variant >= 2:
                a = 0
                if NB1[k] >= 0:
                    a += abs(levels[i, NB1[k]])
                if NB2[k] >= 0:
                    a += abs(levels[i, NB2[k]])
                extra = 0 if a == 0 else (1 if a <= 1 else (2 if a <= 3 else 3))
                if variant == 3:
                    extra = 0 if a == 0 else 1
            ctx = ((posc[k] * 6 + KM.REM_LUT[rem]) * 7 + nbk) * 4 + extra
            c = cnt[ctx]
            if variant == 1:
                lo = 0.5 * (C1[ctx, s] + C2[ctx, s])
                hi = 32768.0 if s == 3 else 0.5 * (C1[ctx, s + 1] + C2[ctx, s + 1])
            else:
                lo = C1[ctx, s]
                hi = 32768.0 if s == 3 else C1[ctx, s + 1]
            total += -np.log2((hi - lo) / 32768.0)
            r1 = RATE[c]
            r_f = min(r1, fast_rate)
            r_s = min(r1, slow_rate)
            for j in range(1, 4):
                t = j * 4 + ((32768 - 16) if j > s else 0)
                cc = C1[ctx, j]
                if variant == 1:
                    C1[ctx, j] = cc + np.floor((t - cc) / 2.0**r_f)
                    cc2 = C2[ctx, j]
                    C2[ctx, j] = cc2 + np.floor((t - cc2) / 2.0**r_s)
                else:
                    C1[ctx, j] = cc + np.floor((t - cc) / 2.0**r1)
            if c < 127:
                cnt[ctx] = c + 1
            if m != 0:
                rem -= 1
            k += 1
    return total


DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
series = {
    "chest": "ct_chest_lungpetctdx_A0001_philips",
    "head": "ct_head_phantom_philips_ingenuity",
    "mr": "mr_head_ge_signa_t1_ctk",
}
for nm, d in series.items():
    paths = sorted(glob.glob(str(DATA / d / "*.dcm")))
    picks = [paths[len(paths) * j // 4] for j in (1, 2, 3)]
    res = {}
    for q in (15, 45, 80):
        tot = {}
        nbytes = 0
        npx = 0
        for p in picks:
            ds = pydicom.dcmread(p)
            a = ds.pixel_array
            CAP.clear()
            b = medcodec.encode(a, format="mdc", quality=q, bits_stored=int(ds.BitsStored))
            nbytes += len(b)
            npx += a.size
            lv, bx = CAP[0]
            lv = lv.astype(np.int64)
            posc = KM.POS_FINE if lv.shape[0] >= KM.FINE_POSITION_BLOCKS else KM.POS_BAND
            for var, fr, sr in ((0, 7, 7), (1, 4, 7), (1, 5, 7), (2, 7, 7), (3, 7, 7)):
                tot[(var, fr)] = tot.get((var, fr), 0) + cost(lv, bx, var, posc.astype(np.int64), fr, sr) / 8
        base = tot[(0, 7)]
        print(
            nm,
            q,
            f"bpp {nbytes * 8 / npx:.2f} stream {nbytes} base-sym bytes {base:.0f} ({base / nbytes * 100:.0f}%)",
            " ".join(f"v{v}/{fr}: {(t - base) / nbytes * 100:+.2f}%" for (v, fr), t in tot.items() if v or fr != 7),
            flush=True,
        )
