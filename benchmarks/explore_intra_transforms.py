#!/usr/bin/env python3
"""Issue 12: would a mode-dependent transform (DST-VII / ADST) or mode-conditioned contexts pay for
the intra residuals of the ``.mdc`` default (format 2.4)? Measurement only, no format change.

Usage (from the repository root; ~10 minutes on a shared 2-core machine)::

    nice -n 10 .venv/bin/python benchmarks/explore_intra_transforms.py            # shared data
    nice -n 10 .venv/bin/python benchmarks/explore_intra_transforms.py --unseen   # + pydicom-data
    nice -n 10 .venv/bin/python benchmarks/explore_intra_transforms.py --decode-cost  # A5's flags coded, timed

The default encodes ``bench_mdc2``'s slices (``--frames``, evenly spaced, per series) over its
qualities; each intra frame's input, steps, reconstruction offsets and chosen modes are kept. Then
a closed-loop intra coder (:func:`closed_loop`: the decoder's predictor on its own reconstruction,
the default's modes held fixed) codes every residual with each variant:

* ``dct``: the 8x8 DCT both ways, levels rounded (the like-for-like anchor of every variant: the
  default's RD levels are left out of all of them);
* ``A1 implied``: DST-VII along the predicted direction(s), no bits (vertical 3: DST rows / DCT
  columns; horizontal 4: the opposite; the other angular modes, smooth and paeth DST both; DC DCT);
* ``A2 implied/family``: DST along the family's direction only (modes from the row above: DST
  vertically; from the left column: DST horizontally; modes of negative displacement, which
  predict from both, smooth and paeth DST both; DC DCT);
* ``A3 DST all``: DST-VII both ways for every mode;
* ``A4 RD 2``: per block the better (``SSE + lambda bits``, the mode decision's lambda and bit
  estimate) of DCT and A1's pair, the choice charged its ideal adaptive cost (per mode class);
* ``A5 RD 4``: per block the best of the 4 pairs (DCT/DST x DCT/DST), 2 flag bits' ideal cost;
* ``A6`` / ``A7`` (with ``post+RD`` only): per block DCT or DST both / DCT or A2's pair, 1 flag;
* ``B2 transpose H``: the DCT, but blocks of horizontal-family modes code their transposed levels
  (AV1's tx-class idea as a scan remap: their energy lies along the other axis).

The levels' rate is the real 2.1 coder's bytes (:func:`.intra._encode_levels`) plus, for A4 / A5,
the flags' ideal cost; the rest of the stream (header, modes, offsets, restoration) is the
default's. Distortion: the closed loop's reconstruction against the frame it coded (before the
restoration filter). Per series: BD-rate (cubic, the points between 0.2 and 3.5 bpp) of each
variant against ``dct``. ``B1``: the ideal cost (2.1 update rule, docs/format.md §13.1) of the AC base
symbol with the 2.1 contexts split by 3 mode classes (DC/smooth/paeth, row-above family, left-column
family) against the 2.1 contexts, in % of the stream (of the ``dct`` levels).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import _kernels_v2 as K
from medcodec.codec import intra, quantize
from medcodec.codec._rdoq_ms import rdoq_block
from medcodec.codec.transform import DCT_MATRIX
from medcodec.codec.zigzag import ZIGZAG
from medcodec.evaluate.bjontegaard import bd_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mdc2 as B

QUALITIES = (15, 25, 35, 45, 55, 65, 72, 80, 87, 93, 97)

# ---------------------------------------------------------------- the bases
N = 8
DST7 = np.array([[np.sqrt(4 / (2 * N + 1)) * np.sin(np.pi * (2 * k + 1) * (n + 1) / (2 * N + 1)) for n in range(N)]
                 for k in range(N)])  # fmt: skip
assert np.allclose(DST7 @ DST7.T, np.eye(N))
BASES = np.stack([DCT_MATRIX.astype(np.float64), DST7])  # 0: DCT, 1: DST-VII (rows: basis functions)

# mode -> (vertical basis, horizontal basis) per variant
FAMILY = np.full(16, -1)  # -1: DC / smooth / paeth; 1: from the row above; 0: from the left column
DISP = np.zeros(16, np.int64)
for _m in range(3, 16):
    FAMILY[_m], DISP[_m] = KI.ANGULAR[_m - 3]


def pairs(variant: str) -> np.ndarray:
    out = np.zeros((16, 2), np.int64)
    for m in range(16):
        if variant == "dct" or m == 0:
            v = h = 0
        elif variant == "dst":
            v = h = 1
        elif m in (1, 2):
            v = h = 1
        elif variant == "A1":
            v, h = {3: (1, 0), 4: (0, 1)}.get(m, (1, 1))
        elif variant == "A2":
            if DISP[m] < 0:
                v = h = 1
            else:
                v, h = (1, 0) if FAMILY[m] == 1 else (0, 1)
        else:
            raise ValueError(variant)
        out[m] = (v, h)
    if variant == "dst":
        out[0] = (1, 1)
    return out


MODE_CLASS = np.array([0 if FAMILY[m] < 0 else (1 if FAMILY[m] == 1 else 2) for m in range(16)], np.int64)
ZZ = np.asarray(ZIGZAG, dtype=np.int64)
INV = np.empty(64, np.int64)
INV[ZZ] = np.arange(64)
TRANSPOSE_ZZ = np.array([INV[(ZZ[k] % 8) * 8 + ZZ[k] // 8] for k in range(64)], np.int64)  # k -> k of (v, u)


@numba.njit(cache=False)
def closed_loop(x, steps, zz, offsets, mid, lo, hi, modes, cands, ncand, bases, lam, levels, recon, choice, rd, cost,
                lam_rd, mu, rho, tex_sum):  # fmt: skip
    """Raster-order intra coding with fixed modes; block b's residual coded with each candidate
    pair cands[mode, c] = (vertical basis, horizontal basis), c < ncand, levels rounded; the one of
    least SSE + lam * (2 + 2 bitlen per non-zero level) kept; if ``rd``, its levels then go through
    the default's RD search (:func:`._rdoq_ms.rdoq_block`, as ``_kernels_intra._rd_levels`` calls it,
    without the error-bound fallback) before the block is reconstructed. Returns the SSE."""
    rows, cols = x.shape
    bx = cols // 8
    ext = np.empty(KI.EXT_SIZE, np.int64)
    fext = np.empty(KI.EXT_SIZE, np.int64)
    pred = np.empty(64, np.int64)
    stepz = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
    R = np.empty((8, 8))
    lv = np.empty(64, np.int64)
    best_lv = np.empty(64, np.int64)
    best_rec = np.empty(64, np.int64)
    rec = np.empty(64, np.int64)
    deq = np.empty((8, 8))
    best_C = np.empty((8, 8))
    nzs = np.zeros((rows // 8) * bx, np.int64)
    posc = KM.POS_FINE if (rows // 8) * bx >= KM.FINE_POSITION_BLOCKS else KM.POS_BAND
    sc = np.empty(64)
    wz = np.empty(64)
    offs_f = np.empty(64)
    for k in range(64):
        wz[k] = stepz[k] * stepz[k]
        offs_f[k] = offsets[k] * 0.00390625
    rm = np.empty(64, np.int64)
    rnbk = np.empty(64, np.int64)
    ra = np.empty(64)
    rrem = np.empty(65, np.int64)
    rp0 = np.empty(65)
    rp1 = np.empty(65)
    total = 0.0
    for by in range(rows // 8):
        for bxi in range(bx):
            r0 = by * 8
            c0 = bxi * 8
            b = by * bx + bxi
            KI.ext_refs(recon, r0, c0, mid, ext, fext, True)
            m = modes[b]
            KI.predict_fast(m, ext, fext, pred)
            for i in range(8):
                for j in range(8):
                    R[i, j] = x[r0 + i, c0 + j] - pred[8 * i + j]
            best_j = 1e300
            best_c = 0
            best_d = 0.0
            for c in range(ncand[m]):
                bv = bases[cands[m, c, 0]]
                bh = bases[cands[m, c, 1]]
                C = bv @ R @ bh.T
                nbits = 0.0
                for i in range(8):
                    for j in range(8):
                        deq[i, j] = 0.0
                for k in range(64):
                    p = zz[k]
                    cv = C[p // 8, p % 8]
                    a = np.int64(abs(cv) / stepz[k] + 0.5)
                    lv[k] = -a if cv < 0 else a
                    if a != 0:
                        nbits += 2.0 + 2.0 * np.floor(np.log2(a) + 1.0)
                        q = 256 * a - offsets[k]
                        dq = q * stepz[k] / 256.0
                        deq[p // 8, p % 8] = -dq if cv < 0 else dq
                if rd == 2:  # this candidate's RD levels decide (the rate: the same static estimate)
                    sx = 0
                    for i in range(8):
                        for j in range(8):
                            sx += x[r0 + i, c0 + j]
                    for k in range(64):
                        sc[k] = C[zz[k] // 8, zz[k] % 8] / stepz[k]
                        levels[b, k] = lv[k]
                    if rdoq_block(sc, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, sx >= tex_sum,
                                  False, rm, rnbk, ra, rrem, rp0, rp1):  # fmt: skip
                        nbits = 0.0
                        for i in range(8):
                            for j in range(8):
                                deq[i, j] = 0.0
                        for k in range(64):
                            a = np.int64(levels[b, k])
                            lv[k] = a
                            if a != 0:
                                p = zz[k]
                                nbits += 2.0 + 2.0 * np.floor(np.log2(abs(a)) + 1.0)
                                q = 256 * a - offsets[k] if a > 0 else 256 * a + offsets[k]
                                deq[p // 8, p % 8] = q * stepz[k] / 256.0
                rr = bv.T @ deq @ bh
                d = 0.0
                for i in range(8):
                    for j in range(8):
                        v = pred[8 * i + j] + np.int64(np.floor(rr[i, j] + 0.5))
                        v = min(max(v, lo), hi)
                        rec[8 * i + j] = v
                        e = x[r0 + i, c0 + j] - v
                        d += e * e
                jj = d + lam * nbits
                if jj < best_j:
                    best_j = jj
                    best_c = c
                    best_d = d
                    best_lv[:] = lv
                    best_rec[:] = rec
                    best_C[:, :] = C
            choice[b] = best_c
            nz = 0
            for k in range(64):
                levels[b, k] = best_lv[k]
                if k > 0 and best_lv[k] != 0:
                    nz += 1
            nzs[b] = nz
            if rd == 1:
                s = 0
                for i in range(8):
                    for j in range(8):
                        s += x[r0 + i, c0 + j]
                for k in range(64):
                    sc[k] = best_C[zz[k] // 8, zz[k] % 8] / stepz[k]
                changed = rdoq_block(sc, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, s >= tex_sum,
                                     False, rm, rnbk, ra, rrem, rp0, rp1)  # fmt: skip
                if changed:
                    for i in range(8):
                        for j in range(8):
                            deq[i, j] = 0.0
                    for k in range(64):
                        a = np.int64(levels[b, k])
                        if a != 0:
                            p = zz[k]
                            q = 256 * a - offsets[k] if a > 0 else 256 * a + offsets[k]
                            deq[p // 8, p % 8] = q * stepz[k] / 256.0
                    bv = bases[cands[modes[b], best_c, 0]]
                    bh = bases[cands[modes[b], best_c, 1]]
                    rr = bv.T @ deq @ bh
                    best_d = 0.0
                    for i in range(8):
                        for j in range(8):
                            v = pred[8 * i + j] + np.int64(np.floor(rr[i, j] + 0.5))
                            v = min(max(v, lo), hi)
                            best_rec[8 * i + j] = v
                            e = x[r0 + i, c0 + j] - v
                            best_d += e * e
            total += best_d
            for i in range(8):
                for j in range(8):
                    recon[r0 + i, c0 + j] = best_rec[8 * i + j]
    return total


def flag_bits(choice: np.ndarray, modes: np.ndarray, nsym: int) -> float:
    """Ideal adaptive cost (Krichevsky-Trofimov counts, per mode class) of the per-block choices."""
    counts = np.full((3, nsym), 0.5)
    bits = 0.0
    for c, m in zip(choice.tolist(), modes.tolist()):
        row = counts[MODE_CLASS[m]]
        bits -= np.log2(row[c] / row.sum())
        row[c] += 1
    return bits


@numba.njit(cache=False)
def base_cost(levels, bx, posc, cls, nclass):
    """Ideal cost (bits) of the AC base symbol (0, 1, 2, >= 3) under the 2.1 contexts (position,
    remaining count, left/up magnitudes), split by cls[b] (nclass classes; 1: the 2.1 contexts)."""
    nb = levels.shape[0]
    nctx = 64 * 6 * 7 * nclass
    C = np.zeros((nctx, 4))
    cnt = np.zeros(nctx, np.int64)
    for c in range(nctx):
        C[c, 1] = 16384
        C[c, 2] = 26214
        C[c, 3] = 29491
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
            ctx = ((posc[k] * 6 + KM.REM_LUT[rem]) * 7 + nbk) * nclass + (cls[i] if nclass > 1 else 0)
            c = cnt[ctx]
            lo = C[ctx, s]
            hi = 32768.0 if s == 3 else C[ctx, s + 1]
            total += -np.log2((hi - lo) / 32768.0)
            r1 = KM.RATE[c]
            for j in range(1, 4):
                t = j * 4 + ((32768 - 16) if j > s else 0)
                cc = C[ctx, j]
                C[ctx, j] = cc + np.floor((t - cc) / 2.0**r1)
            if c < 127:
                cnt[ctx] = c + 1
            if m != 0:
                rem -= 1
            k += 1
    return total


# ---------------------------------------------------------------- capture the default's intra frames
CAP: list = []
DEV: list = []
CHOICES: dict = {}  # variant -> (per-block choice, modes) of the last frame
TIMES: dict = {}  # thread CPU seconds of the closed loop per variant (the first call includes JIT)
WITH_RD = True
_orig_enc = intra.encode_intra_frame
_orig_lv = intra._encode_levels
_LV: list = []


def _grab_levels(levels, bx):
    out = _orig_lv(levels, bx)
    _LV.append(len(out))
    return out


def _grab(frame, coder, offsets=None, *a, **kw):
    _LV.clear()
    res = _orig_enc(frame, coder, offsets, *a, **kw)
    CAP.append((np.array(frame), coder, None if offsets is None else np.array(offsets), res.modes.copy(), _LV[-1]))
    return res


intra.encode_intra_frame = _grab
intra._encode_levels = _grab_levels

VARIANTS = ("dct", "A1 implied", "A2 implied/family", "A3 DST all", "A4 RD 2", "A5 RD 4", "B2 transpose H")
#: With the default's RD levels after the transform choice (the anchor: dct+RD, the default's coding).
RD_VARIANTS = ("dct+RD", "A2 implied/family+RD", "A4 RD 2+RD", "A5 RD 4+RD", "A4 RD 2 post+RD", "A5 RD 4 post+RD",
               "A6 RD DCT|DST post+RD", "A7 RD DCT|A2 post+RD")


def cands_for(name: str) -> tuple[np.ndarray, np.ndarray]:
    c = np.zeros((16, 4, 2), np.int64)
    n = np.ones(16, np.int64)
    if name in ("dct", "B2 transpose H"):
        c[:, 0] = pairs("dct")
    elif name == "A1 implied":
        c[:, 0] = pairs("A1")
    elif name == "A2 implied/family":
        c[:, 0] = pairs("A2")
    elif name == "A3 DST all":
        c[:, 0] = pairs("dst")
    elif name == "A4 RD 2":
        c[:, 0] = pairs("dct")
        c[:, 1] = pairs("A1")
        n[:] = 2
        n[0] = 1  # DC: A1's pair is the DCT
    elif name in ("A6 RD DCT|DST", "A7 RD DCT|A2"):
        c[:, 0] = pairs("dct")
        c[:, 1] = pairs("dst" if name.startswith("A6") else "A2")
        n[:] = 2
        if name.startswith("A7"):
            n[0] = 1  # DC: A2's pair is the DCT
    elif name == "A5 RD 4":
        for i, (v, h) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            c[:, i] = (v, h)
        n[:] = 4
    return c, n


def frame_points(frame, coder, offsets, modes, nbytes_default, lev_default) -> dict:
    x = intra._padded(frame).astype(np.int64)
    bx = x.shape[1] // 8
    nb = x.size // 64
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    offs = intra._offsets(offsets)
    lam = intra.lambda_for(coder)
    rows, cols = frame.shape
    out = {}
    dct_levels = None
    scaled = coder.scaled(frame)  # the default fast effort's pricing (intra.RD_PRICE "dct")
    priced = K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))
    cost, lam_rd, mu, rho, tex_sum = intra.rd_params(coder, frame, priced, -(-cols // 8))
    for name in VARIANTS + (RD_VARIANTS if WITH_RD else ()):
        rd = (2 if " post" in name else 1) if name.endswith("+RD") else 0
        cands, ncand = cands_for(name.removesuffix("+RD").replace(" post", ""))
        levels = np.empty((nb, 64), np.int32)
        recon = np.empty_like(x)
        choice = np.zeros(nb, np.int64)
        t0 = time.thread_time()
        closed_loop(x, steps, ZZ, offs, np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi),
                    modes.astype(np.int64), cands, ncand, BASES, lam, levels, recon, choice, rd, cost, lam_rd, mu,
                    rho, tex_sum)  # fmt: skip
        TIMES[name] = TIMES.get(name, 0.0) + time.thread_time() - t0
        sse = float(((recon[:rows, :cols] - frame.astype(np.int64)) ** 2).sum())
        coded = levels
        if name == "dct+RD":  # how near the default's levels this loop gets (same modes, no bound check)
            DEV.append(nbytes_default - lev_default + len(_orig_lv(levels, bx)) - nbytes_default)
        if name == "B2 transpose H":
            coded = levels.copy()
            h = MODE_CLASS[modes] == 2
            coded[h] = levels[h][:, TRANSPOSE_ZZ]
        nbytes = len(_orig_lv(coded, bx))
        extra = 0.0
        if name.startswith(("A4 RD 2", "A6", "A7")):
            sel = ncand[modes] > 1
            extra = flag_bits(choice[sel], modes[sel], 2) / 8
        elif name.startswith("A5 RD 4"):
            extra = flag_bits(choice, modes, 4) / 8
        out[name] = (nbytes_default - lev_default + nbytes + extra, sse, np.bincount(choice, minlength=4))
        CHOICES[name] = (choice, modes)
        if name == "dct":
            dct_levels = levels
    posc = (KM.POS_FINE if nb >= KM.FINE_POSITION_BLOCKS else KM.POS_BAND).astype(np.int64)
    lv64 = dct_levels.astype(np.int64)
    b0 = base_cost(lv64, bx, posc, MODE_CLASS[modes], 1)
    b1 = base_cost(lv64, bx, posc, MODE_CLASS[modes], 3)
    out["B1 ctx by class"] = (out["dct"][0] + (b1 - b0) / 8, out["dct"][1], None)
    return out


def run(name: str, frames: np.ndarray, bits: int, signed: bool) -> None:
    peak = 2.0**bits - 1
    curves: dict = {}
    default_curve = []
    flags = np.zeros(4, np.int64)
    for q in QUALITIES:
        acc: dict = {}
        dbytes = 0
        for f in frames:
            CAP.clear()
            buf = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
            dbytes += len(buf)
            assert len(CAP) == 1, "one intra frame per encode"
            fr, coder, offsets, modes, lev = CAP[0]
            pts = frame_points(fr, coder, offsets, modes, len(buf), lev)
            for k, (nb, sse, ch) in pts.items():
                a = acc.setdefault(k, [0.0, 0.0])
                a[0] += nb
                a[1] += sse
                if k == "A5 RD 4" and ch is not None:
                    flags += ch
        npx = frames.size
        for k, (nb, sse) in acc.items():
            mse = sse / npx
            curves.setdefault(k, []).append((nb * 8 / npx, 10 * np.log10(peak**2 / mse) if mse > 0 else np.inf))
        default_curve.append(dbytes * 8 / npx)
        ref = {k: "dct+RD" if k.endswith("+RD") else "dct" for k in curves}
        print(f"  q{q}: bpp {dbytes * 8 / npx:.3f} dct {curves['dct'][-1][1]:.2f} dB "
              + " ".join(f"{k.split()[0]}{'+RD' if k.endswith('+RD') else ''} "
                         f"{curves[k][-1][0] - curves[ref[k]][-1][0]:+.4f}bpp/"
                         f"{curves[k][-1][1] - curves[ref[k]][-1][1]:+.3f}dB" for k in curves if k != ref[k]),
              flush=True)  # fmt: skip
    for ref in ("dct", "dct+RD"):
        if ref not in curves:
            continue
        anchor = [(b, p) for b, p in curves[ref] if 0.2 <= b <= 3.5 and np.isfinite(p)]
        row = []
        for k, c in curves.items():
            if k == ref or k.endswith("+RD") != ref.endswith("+RD"):
                continue
            sel = [(b, p) for b, p in c if 0.2 <= b <= 3.5 and np.isfinite(p)]
            bd = bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in sel], [p for _, p in sel])
            row.append(f"{k}: {bd:+.2f} %")
        print(f"{name}: BD-rate vs {ref} (closed loop): " + "; ".join(row), flush=True)
    if "dct+RD" in TIMES:
        print(f"{name}: closed-loop encode CPU vs dct+RD: "
              + " ".join(f"{k}: {t / TIMES['dct+RD']:.2f}x" for k, t in TIMES.items() if k.endswith("+RD")), flush=True)
    TIMES.clear()
    if DEV:
        print(f"{name}: dct+RD level bytes - the default's, per frame: mean {np.mean(DEV):+.0f} B, "
              f"max |.| {np.max(np.abs(DEV)):.0f} B", flush=True)  # fmt: skip
    DEV.clear()
    print(f"{name}: A5 choices (DCT/DCT, DST-v, DST-h, DST/DST): {flags.tolist()}", flush=True)


@numba.njit(cache=False)
def encode_flags(choice, cls, n, out):
    """The per-block choices as an n-ary adaptive symbol (the 2.1 coder, contexts: cls); (status, bytes)."""
    C = np.zeros(3 * n, np.int16)
    for r in range(3):
        for i in range(1, n):
            C[r * n + i] = i * 32768 // n
    st = np.zeros(6, dtype=np.int64)
    KI._enc_init(st)
    for b in range(choice.size):
        KI._enc_sym(st, out, C, n * cls[b], np.int64(choice[b]), n)
    KI._enc_flush(st, out)
    return st[5], st[4]


@numba.njit(cache=False)
def decode_flags(data, end, cls, n, choice):
    """Inverse of :func:`encode_flags` (what a 2.5 decoder would add per block)."""
    C = np.zeros(3 * n, np.int16)
    for r in range(3):
        for i in range(1, n):
            C[r * n + i] = i * 32768 // n
    code, rng, pos, past = KI._dec_start(data, 0, end)
    for b in range(choice.size):
        sym, code, rng, pos, past = KI._dec_sym(code, rng, pos, past, data, end, C, n * cls[b], n)
        choice[b] = sym
    return past


def decode_cost(data: Path, frames_n: int) -> None:
    """A5 post+RD's per-block choice coded for real (4-ary, 3 mode-class contexts) against its ideal
    cost, and the thread CPU of decoding it against the default's whole decode (best of 5)."""
    global WITH_RD
    WITH_RD = True
    for s in B.SERIES:
        frames, bits, signed = B.load(data / s, frames_n)
        for q in (45, 72):
            real = ideal = t_flags = t_dec = 0.0
            for f in frames:
                CAP.clear()
                buf = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
                fr, coder, offsets, modes, lev = CAP[0]
                frame_points(fr, coder, offsets, modes, len(buf), lev)
                choice, modes = CHOICES["A5 RD 4 post+RD"]
                cls = MODE_CLASS[modes].astype(np.int64)
                out = np.empty(choice.size + 1024, np.uint8)
                ovf, n = encode_flags(choice.astype(np.int64), cls, 4, out)
                assert not ovf
                back = np.empty_like(choice)
                decode_flags(out, n, cls, 4, back)
                assert (back == choice).all()
                real += n
                ideal += flag_bits(choice, modes, 4) / 8
                best_f = best_d = np.inf
                for _ in range(5):
                    t0 = time.thread_time()
                    decode_flags(out, n, cls, 4, back)
                    t1 = time.thread_time()
                    medcodec.decode(buf)
                    t2 = time.thread_time()
                    best_f, best_d = min(best_f, t1 - t0), min(best_d, t2 - t1)
                t_flags += best_f
                t_dec += best_d
            print(f"{s} q{q}: A5 flags coded {real:.0f} B (ideal KT {ideal:.0f} B, {real / ideal - 1:+.1%}); "
                  f"decoding them {t_flags / t_dec:.1%} of the default's decode CPU", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=B.DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--unseen", action="store_true", help="also pydicom-data's 4 images (a check, not tuning)")
    ap.add_argument("--only-unseen", action="store_true")
    ap.add_argument("--no-rd", action="store_true", help="rounded levels only (faster)")
    ap.add_argument("--decode-cost", action="store_true", help="only: A5's flags coded for real, and their decode CPU")
    args = ap.parse_args(argv)
    global WITH_RD
    WITH_RD = not args.no_rd
    if args.decode_cost:
        decode_cost(args.data, args.frames)
        return 0
    if not args.only_unseen:
        for s in B.SERIES:
            frames, bits, signed = B.load(args.data / s, args.frames)
            print(s, frames.shape, flush=True)
            run(s, frames, bits, signed)
    if args.unseen or args.only_unseen:
        import pydicom
        from pydicom.data import get_testdata_file

        for nm in ("693_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR2_UNCR.dcm", "CT_small.dcm"):
            ds = pydicom.dcmread(get_testdata_file(nm))
            px = ds.pixel_array
            frames = px[None] if px.ndim == 2 else px
            print(nm, frames.shape, flush=True)
            run(nm, frames, int(ds.BitsStored), bool(ds.PixelRepresentation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
