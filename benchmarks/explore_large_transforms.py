#!/usr/bin/env python3
"""Issue 12: would 16x16 / 32x32 transforms for smooth regions pay for the ``.mdc`` default (format
2.5)? Measurement only, no format change.

Usage (from the repository root; ~5 minutes on a shared 2-core machine, 6 slices per series)::

    nice -n 10 .venv/bin/python benchmarks/explore_large_transforms.py                 # shared series
    nice -n 10 .venv/bin/python benchmarks/explore_large_transforms.py --smooth         # seen smooth MRs
    nice -n 10 .venv/bin/python benchmarks/explore_large_transforms.py --only-unseen    # the check, once
    nice -n 10 .venv/bin/python benchmarks/explore_large_transforms.py --bound          # the error bounds

As ``explore_intra_transforms.py``: the default (2.5) encodes ``--frames`` evenly spaced slices
per series over :data:`QUALITIES`; each intra frame's input, steps, reconstruction offsets and
8x8 modes are kept, and a closed-loop intra coder (:func:`closed_loop`: the decoder's predictor on
its own reconstruction, the default's 8x8 modes held fixed) re-codes the frame per variant:

* ``8x8 raster``: the 2.5-like anchor, the note's "A7 post+RD": raster order, each 8x8 block the
  DCT or its mode's DST-VII pair (format 2.5's ``TX_PAIR``), each candidate's RD levels
  (``_rdoq_ms.rdoq_block``) decide (``SSE + lambda x`` a static bit estimate);
* ``8x8 Z``: the same blocks in Z order inside 16x16 macroblocks (what a quadtree imposes: the
  bottom-right block of a macroblock loses its above-right references);
* ``Q16 DC``: per 16x16 macroblock (Z order), one 16x16 DCT of the residual of the DC prediction
  (mean of the 16 + 16 neighbouring samples) or the four 8x8 blocks as above, RD decision
  (``SSE + lambda (bits + split flag + modes)``);
* ``Q16 DC/SM/paeth``: the 16x16 block predicted by DC, SMOOTH (AV1's 16-sample weights) or
  paeth, the best by RD (the choice charged), against the four 8x8 blocks;
* ``Q16 pred, 8x8 DCT``: as ``Q16 DC/SM/paeth`` but the 16x16 block's residual takes four 8x8
  DCTs (the transform unit below the prediction unit): the share of the gain that is the 16x16
  prediction and the side information it saves rather than the 16x16 transform;
* ``Q32``: a 32x32 quadtree: 32x32 (DC/SMOOTH/paeth, AV1's 32-sample weights) or four ``Q16
  DC/SM/paeth`` nodes;
* ``Q32 ... pruned T``: the same syntax (DC and SMOOTH only), an encoder that tries a 16x16 block
  only where the four 8x8 blocks hold at most T non-zero AC levels, and a 32x32 block only over
  four 16x16 blocks (bottom-up): what a cheaper search keeps; ``bottom-up``: every 16x16 node
  tried (DC, or DC and SMOOTH), 32x32 only over four 16x16 blocks.

Large blocks: an orthonormal N-point DCT both ways; the default's step table and reconstruction
offsets scaled to N x N by frequency: coefficient (u, v) of an N x N block takes the 8x8 table's
entry (u // s, v // s), s = N / 8 (the same frequency in cycles per sample; with orthonormal
transforms the same step gives the same error per coefficient). Its levels are coded by the real
2.1 coder as s x s pseudo 8x8 blocks placed where the block's 8x8 blocks are: pseudo-block
(u % s, v % s) holds coefficient (u, v) at position (u // s, v // s) (interleaving keeps
coefficients of one frequency at one position, so the 2.1 position contexts still fit), and each
pseudo-block goes through the default's RD level search with its own contexts. Rate: the default
stream's bytes with its levels and its mode segment replaced by the variant's: the levels by the
real 2.1 coder, the mode segment by the real 2.5 mode coder (:func:`mode_segment`: the 8x8 blocks of
a large block code no mode and carry its mode as their neighbours' context; the 8x8 blocks' transform
choices as 2.5 codes them), plus the ideal adaptive cost (KT counts) of the split flags and the
large blocks' prediction modes (``--full-modes``: the default's whole mode segment for every variant,
no saving credited, a bracket). Distortion: the loop's reconstruction before the restoration
filter. BD-rate (cubic, 0.2-3.5 bpp) against ``8x8 raster``. ``--verify`` checks every variant's
reconstruction against :func:`reference_decode` (what a decoder has: sizes, modes, levels).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import struct
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
QUALS = QUALITIES
SMOOTH_SEEN = ("singles/mr_384x384_12bit_unsigned.dcm", "transfer_syntaxes_mr/mr_384x384_explicit_le.dcm",
               "singles/mr_MR2_1024x1024_12bit_uncompressed.dcm")
UNSEEN = ("MR-SIEMENS-DICOM-WithOverlays.dcm",)  # the check (check_mdc_unseen.IMAGES' smooth one); never tuned on


# ---------------------------------------------------------------- the bases
def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal n-point DCT-II, rows basis functions."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m


DCT16 = dct_matrix(16)
DCT32 = dct_matrix(32)
for _m in (DCT16, DCT32):
    assert np.allclose(_m @ _m.T, np.eye(len(_m)))  # orthonormal: perfect reconstruction without quantisation
assert np.allclose(dct_matrix(8), DCT_MATRIX)
BASES8 = np.stack([DCT_MATRIX.astype(np.float64), KI.DST7])  # 0 the DCT, 1 the DST-VII
#: AV1's SMOOTH weights (1/256) of 16- and 32-sample blocks (dr_intra / sm_weight_arrays).
SM16 = np.array([255, 225, 196, 170, 145, 123, 102, 84, 68, 54, 43, 33, 26, 20, 17, 16], np.int64)
SM32 = np.array([255, 240, 225, 210, 196, 182, 169, 157, 145, 133, 122, 111, 101, 92, 83, 74, 66, 59, 52, 45, 39, 34,
                 29, 25, 21, 17, 14, 12, 10, 9, 8, 8], np.int64)  # fmt: skip
ZZ = np.asarray(ZIGZAG, dtype=np.int64)
INV = np.empty(64, np.int64)
INV[ZZ] = np.arange(64)


def big_layout(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient (u, v) of an n x n block -> (pseudo-block index (u % s) * s + v % s, zigzag
    position of (u // s, v // s)), s = n / 8, flattened row-major."""
    s = n // 8
    u, v = np.divmod(np.arange(n * n), n)
    return ((u % s) * s + v % s).astype(np.int64), INV[(u // s) * 8 + v // s].astype(np.int64)


LAY16 = big_layout(16)
LAY32 = big_layout(32)
#: ``Q16 pred, 8x8 DCT``: a 16x16 prediction whose residual takes four 8x8 DCTs (the block-diagonal
#: matrix), each quadrant's levels one ordinary 8x8 block (HEVC's transform unit below the
#: prediction unit): what the 16x16 prediction and its signalling gain without the 16x16 transform.
BLOCKDIAG16 = np.kron(np.eye(2), DCT_MATRIX.astype(np.float64))
_u, _v = np.divmod(np.arange(256), 16)
LAY16Q = (((_u // 8) * 2 + _v // 8).astype(np.int64), INV[(_u % 8) * 8 + _v % 8].astype(np.int64))
TX8_TAG = 8  # info[b, 1] = prediction mode + TX8_TAG for those blocks


def big_bound(steps: np.ndarray, offsets: np.ndarray | None, n: int) -> float:
    """§12.3's bound for an n x n DCT block under the scaled table (the decoder's rounding 0.5 added,
    no deblocking / restoration): sum step (1/2 + offset) a(u) a(v), a(u) the bound on basis
    function u's magnitude as :func:`.mdc2.error_bound_with_offsets` takes it for 8x8 (sqrt(1/n)
    for u = 0, sqrt(2/n) otherwise)."""
    a = np.full(n, np.sqrt(2.0 / n))
    a[0] = np.sqrt(1.0 / n)
    half = np.full(64, 0.5)
    if offsets is not None:
        half[ZZ[1:]] += np.asarray(offsets, np.float64) / 256.0
    w = np.asarray(steps, np.float64).ravel() * half  # natural order (8x8)
    s = n // 8
    u = np.arange(n)
    w_big = w.reshape(8, 8)[np.ix_(u // s, u // s)]
    return float(np.sum(w_big * np.outer(a, a)) + 0.5)


# ---------------------------------------------------------------- the closed loop
@numba.njit(cache=False)
def _refs8(recon, r0, c0, mid, ext, fext, ar_ok):
    """The default's 8x8 references; the above-right samples replaced by the last above one if that
    block is not coded yet (Z order)."""
    KI.ext_refs(recon, r0, c0, mid, ext, fext, False)
    if not ar_ok and r0 > 0:
        for j in range(8, 16):
            ext[KI.EXT_TOP + j] = ext[KI.EXT_TOP + 7]
        KI._pad(ext)
    top = ext[KI.EXT_TOP : KI.EXT_TOP + 16]
    left = ext[KI.EXT_LEFT : KI.EXT_LEFT + 16]
    fext[0] = KI.smooth_refs(top, left, ext[0], fext[KI.EXT_TOP : KI.EXT_TOP + 16], fext[KI.EXT_LEFT : KI.EXT_LEFT + 16])
    KI._pad(fext)


@numba.njit(cache=False)
def predict_big(mode, recon, r0, c0, n, mid, sm, out):
    """n x n prediction (row-major into out[n * n]) of mode 0 DC, 1 SMOOTH, 2 paeth from the row
    above and the column to the left (the default's 8x8 rules for missing neighbours)."""
    cols = recon.shape[1]
    top = np.empty(n, np.int64)
    left = np.empty(n, np.int64)
    if r0 > 0:
        for j in range(n):
            top[j] = recon[r0 - 1, c0 + j] if c0 + j < cols else top[j - 1]
    if c0 > 0:
        for i in range(n):
            left[i] = recon[r0 + i, c0 - 1]
    if r0 == 0 and c0 == 0:
        top[:] = mid
        left[:] = mid
    elif r0 == 0:
        top[:] = left[0]
    elif c0 == 0:
        left[:] = top[0]
    corner = recon[r0 - 1, c0 - 1] if (r0 > 0 and c0 > 0) else (top[0] if r0 > 0 else left[0])
    if mode == 0:
        s = np.int64(0)
        for i in range(n):
            s += top[i] + left[i]
        v = (s + n) // (2 * n)
        for p in range(n * n):
            out[p] = v
    elif mode == 1:
        for i in range(n):
            wi = sm[i]
            for j in range(n):
                wj = sm[j]
                out[n * i + j] = (wi * top[j] + (256 - wi) * left[n - 1] + wj * left[i] + (256 - wj) * top[n - 1]
                                  + 256) >> 9  # fmt: skip
    else:
        for i in range(n):
            for j in range(n):
                base = top[j] + left[i] - corner
                pt = abs(base - top[j])
                pl = abs(base - left[i])
                pc = abs(base - corner)
                if pl <= pt and pl <= pc:
                    out[n * i + j] = left[i]
                elif pt <= pc:
                    out[n * i + j] = top[j]
                else:
                    out[n * i + j] = corner


@numba.njit(cache=False)
def _nbits(lv, n):
    """The static bit estimate (the mode decision's): 2 + 2 bit length per non-zero level."""
    t = 0.0
    for k in range(n):
        a = abs(lv[k])
        if a != 0:
            t += 2.0 + 2.0 * np.floor(np.log2(a) + 1.0)
    return t


@numba.njit(cache=False)
def code8(x, recon, levels, nzs, done, info, b, bx, r0, c0, m, stepz, zz, offsets, offs_f, wz, mid, lo, hi, lam,
          cost, lam_rd, mu, rho, tex_sum, posc, mode_bits, skip):  # fmt: skip
    """One 8x8 block of mode m: the DCT or its DST-VII pair (2.5; a flat block, ``skip[b]``, codes no
    choice: the DCT), each candidate's RD levels, the better kept (levels, recon, nzs, done;
    info[b] = (8, choice)). Returns its J."""
    by = b // bx
    cols_b = recon.shape[1] // 8
    ar_ok = True
    if by > 0 and b % bx + 1 < cols_b:
        ar_ok = done[b - bx + 1]
    ext = np.empty(KI.EXT_SIZE, np.int64)
    fext = np.empty(KI.EXT_SIZE, np.int64)
    _refs8(recon, r0, c0, mid, ext, fext, ar_ok)
    pred = np.empty(64, np.int64)
    KI.predict_fast(m, ext, fext, pred)
    R = np.empty((8, 8))
    sx = 0
    for i in range(8):
        for j in range(8):
            R[i, j] = x[r0 + i, c0 + j] - pred[8 * i + j]
            sx += x[r0 + i, c0 + j]
    ncand = 1 if (m == 0 or skip[b]) else 2
    best_j = 1e300
    best_c = 0
    best_lv = np.empty(64, np.int64)
    best_rec = np.empty(64, np.int64)
    best_nz = 0
    sc = np.empty(64)
    deq = np.empty((8, 8))
    rec = np.empty(64, np.int64)
    rm = np.empty(64, np.int64)
    rnbk = np.empty(64, np.int64)
    ra = np.empty(64)
    rrem = np.empty(65, np.int64)
    rp0 = np.empty(65)
    rp1 = np.empty(65)
    for c in range(ncand):
        bv = BASES8[KI.TX_PAIR[m, 0] if c == 1 else 0]
        bh = BASES8[KI.TX_PAIR[m, 1] if c == 1 else 0]
        C = bv @ R @ bh.T
        for k in range(64):
            cv = C[zz[k] // 8, zz[k] % 8]
            sc[k] = cv / stepz[k]
            a = np.int64(abs(cv) / stepz[k] + 0.5)
            levels[b, k] = -a if cv < 0 else a
        rdoq_block(sc, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, sx >= tex_sum, False, rm, rnbk, ra,
                   rrem, rp0, rp1)  # fmt: skip
        deq[:, :] = 0.0
        nz = 0
        for k in range(64):
            a = np.int64(levels[b, k])
            if a != 0:
                if k > 0:
                    nz += 1
                p = zz[k]
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
        jj = d + lam * _nbits(levels[b], 64)
        if jj < best_j:
            best_j = jj
            best_c = c
            best_nz = nz
            for k in range(64):
                best_lv[k] = levels[b, k]
            best_rec[:] = rec
    for k in range(64):
        levels[b, k] = best_lv[k]
    nzs[b] = best_nz
    for i in range(8):
        for j in range(8):
            recon[r0 + i, c0 + j] = best_rec[8 * i + j]
    done[b] = True
    info[b, 0] = 8
    info[b, 1] = best_c
    return best_j + lam * ((0.0 if skip[b] else mode_bits) + (1.0 if ncand > 1 else 0.0))


@numba.njit(cache=False)
def code_big(x, recon, levels, nzs, done, info, bx, r0, c0, n, dct, sm, pseudo, zpos, nmodes, stepz, offsets, offs_f,
             wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, tag):  # fmt: skip
    """One n x n block, the best of prediction modes 0..nmodes-1 (DC, SMOOTH, paeth) with the n-point
    DCT, levels by the RD search per pseudo 8x8 block. Returns its J (without the split flag)."""
    s = n // 8
    nn = n * n
    pred = np.empty(nn, np.int64)
    R = np.empty((n, n))
    C = np.empty((n, n))
    deq = np.empty((n, n))
    rec = np.empty(nn, np.int64)
    best_rec = np.empty(nn, np.int64)
    best_lv = np.empty((s * s, 64), np.int64)
    best_nz = np.empty(s * s, np.int64)
    sc = np.empty((s * s, 64))
    rm = np.empty(64, np.int64)
    rnbk = np.empty(64, np.int64)
    ra = np.empty(64)
    rrem = np.empty(65, np.int64)
    rp0 = np.empty(65)
    rp1 = np.empty(65)
    best_j = 1e300
    best_m = 0
    mbits = np.log2(nmodes) if nmodes > 1 else 0.0
    for m in range(nmodes):
        predict_big(m, recon, r0, c0, n, mid, sm, pred)
        for i in range(n):
            for j in range(n):
                R[i, j] = x[r0 + i, c0 + j] - pred[n * i + j]
        C[:, :] = dct @ R @ dct.T
        for p in range(nn):
            pb = pseudo[p]
            k = zpos[p]
            cv = C[p // n, p % n]
            sc[pb, k] = cv / stepz[k]
            a = np.int64(abs(cv) / stepz[k] + 0.5)
            bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
            levels[bi, k] = -a if cv < 0 else a
        bits = 0.0
        for pb in range(s * s):
            bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
            sx = 0
            for i in range(8):
                for j in range(8):
                    sx += x[r0 + (pb // s) * 8 + i, c0 + (pb % s) * 8 + j]
            rdoq_block(sc[pb], levels, bi, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, sx >= tex_sum, False, rm,
                       rnbk, ra, rrem, rp0, rp1)  # fmt: skip
            bits += _nbits(levels[bi], 64)
        deq[:, :] = 0.0
        for p in range(nn):
            pb = pseudo[p]
            k = zpos[p]
            bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
            a = np.int64(levels[bi, k])
            if a != 0:
                q = 256 * a - offsets[k] if a > 0 else 256 * a + offsets[k]
                deq[p // n, p % n] = q * stepz[k] / 256.0
        rr = dct.T @ deq @ dct
        d = 0.0
        for i in range(n):
            for j in range(n):
                v = pred[n * i + j] + np.int64(np.floor(rr[i, j] + 0.5))
                v = min(max(v, lo), hi)
                rec[n * i + j] = v
                e = x[r0 + i, c0 + j] - v
                d += e * e
        jj = d + lam * (bits + mbits)
        if jj < best_j:
            best_j = jj
            best_m = m
            best_rec[:] = rec
            for pb in range(s * s):
                bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
                best_lv[pb] = levels[bi]
                best_nz[pb] = nzs[bi]
    for pb in range(s * s):
        bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
        levels[bi] = best_lv[pb]
        nzs[bi] = best_nz[pb]
        done[bi] = True
        info[bi, 0] = n
        info[bi, 1] = best_m + tag
    for i in range(n):
        for j in range(n):
            recon[r0 + i, c0 + j] = best_rec[n * i + j]
    return best_j


@numba.njit(cache=False)
def _save(recon, levels, nzs, done, info, bx, r0, c0, n, srec, slev, snz, sdone, sinfo, restore):
    """Copy the n x n region's state out (restore False) or back (True)."""
    s = n // 8
    for i in range(n):
        for j in range(n):
            if restore:
                recon[r0 + i, c0 + j] = srec[i, j]
            else:
                srec[i, j] = recon[r0 + i, c0 + j]
    for pb in range(s * s):
        bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
        if restore:
            levels[bi] = slev[pb]
            nzs[bi] = snz[pb]
            done[bi] = sdone[pb]
            info[bi] = sinfo[pb]
        else:
            slev[pb] = levels[bi]
            snz[pb] = nzs[bi]
            sdone[pb] = done[bi]
            sinfo[pb] = info[bi]


@numba.njit(cache=False)
def node16(x, recon, levels, nzs, done, info, modes, bx, r0, c0, big16, nm16, stepz, zz, offsets, offs_f, wz, mid, lo,
           hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits, pseudo16, zpos16, d16, skip, tag16, prune):  # fmt: skip
    """A 16x16 node at (r0, c0): four 8x8 blocks (Z order) or (if big16 and it lies inside the
    padded frame) one 16x16 block, by RD. Returns its J (split flag included when big16)."""
    rows, cols = recon.shape
    j8 = 0.0
    for q in range(4):
        rr0 = r0 + 8 * (q // 2)
        cc0 = c0 + 8 * (q % 2)
        if rr0 < rows and cc0 < cols:
            b = (rr0 // 8) * bx + cc0 // 8
            j8 += code8(x, recon, levels, nzs, done, info, b, bx, rr0, cc0, modes[b], stepz, zz, offsets, offs_f, wz,
                        mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits, skip)  # fmt: skip
    if not big16 or r0 + 16 > rows or c0 + 16 > cols:
        return j8
    if prune >= 0:  # pruned search: try 16x16 only if the four 8x8 blocks hold at most ``prune`` non-zero AC levels
        b0 = (r0 // 8) * bx + c0 // 8
        if nzs[b0] + nzs[b0 + 1] + nzs[b0 + bx] + nzs[b0 + bx + 1] > prune:
            return j8
    j8 += lam
    srec = np.empty((16, 16), np.int64)
    slev = np.empty((4, 64), np.int32)
    snz = np.empty(4, np.int64)
    sdone = np.empty(4, np.bool_)
    sinfo = np.empty((4, 2), np.int64)
    _save(recon, levels, nzs, done, info, bx, r0, c0, 16, srec, slev, snz, sdone, sinfo, False)
    jb = lam + code_big(x, recon, levels, nzs, done, info, bx, r0, c0, 16, d16, SM16, pseudo16, zpos16, nm16, stepz,
                        offsets, offs_f, wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, tag16)  # fmt: skip
    if jb < j8:
        return jb
    _save(recon, levels, nzs, done, info, bx, r0, c0, 16, srec, slev, snz, sdone, sinfo, True)
    return j8


@numba.njit(cache=False)
def closed_loop(x, steps, zz, offsets, mid, lo, hi, modes, unit, big16, nm16, big32, lam, levels, recon, info, cost,
                lam_rd, mu, rho, tex_sum, mode_bits, pseudo16, zpos16, d16, pseudo32, zpos32, d32, skip, tag16,
                prune):  # fmt: skip
    """The frame in units of ``unit`` (8: raster 8x8 blocks, 16: macroblocks, 32: 32x32 nodes whose
    quadrants are 16x16 nodes), levels / recon / info (per 8x8 block: the size of its block, the
    8x8 transform choice or the large block's prediction mode) written."""
    rows, cols = x.shape
    bx = cols // 8
    nb = (rows // 8) * bx
    nzs = np.zeros(nb, np.int64)
    done = np.zeros(nb, np.bool_)
    posc = KM.POS_FINE if nb >= KM.FINE_POSITION_BLOCKS else KM.POS_BAND
    stepz = np.empty(64)
    wz = np.empty(64)
    offs_f = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
        wz[k] = stepz[k] * stepz[k]
        offs_f[k] = offsets[k] * 0.00390625
    if unit == 8:
        for b in range(nb):
            code8(x, recon, levels, nzs, done, info, b, bx, (b // bx) * 8, (b % bx) * 8, modes[b], stepz, zz, offsets,
                  offs_f, wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits, skip)  # fmt: skip
        return
    srec = np.empty((32, 32), np.int64)
    slev = np.empty((16, 64), np.int32)
    snz = np.empty(16, np.int64)
    sdone = np.empty(16, np.bool_)
    sinfo = np.empty((16, 2), np.int64)
    for r0 in range(0, rows, unit):
        for c0 in range(0, cols, unit):
            if unit == 16:
                node16(x, recon, levels, nzs, done, info, modes, bx, r0, c0, big16, nm16, stepz, zz, offsets, offs_f, wz,
                       mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits, pseudo16, zpos16, d16,
                       skip, tag16, prune)  # fmt: skip
                continue
            js = 0.0
            for q in range(4):
                rr0 = r0 + 16 * (q // 2)
                cc0 = c0 + 16 * (q % 2)
                if rr0 < rows and cc0 < cols:
                    js += node16(x, recon, levels, nzs, done, info, modes, bx, rr0, cc0, big16, nm16, stepz, zz,
                                 offsets, offs_f, wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits,
                                 pseudo16, zpos16, d16, skip, tag16, prune)  # fmt: skip
            if not big32 or r0 + 32 > rows or c0 + 32 > cols:
                continue
            if prune >= 0:  # pruned: try 32x32 only if all four 16x16 nodes took one 16x16 block
                b0 = (r0 // 8) * bx + c0 // 8
                if not (info[b0, 0] == 16 and info[b0 + 2, 0] == 16 and info[b0 + 2 * bx, 0] == 16
                        and info[b0 + 2 * bx + 2, 0] == 16):  # fmt: skip
                    continue
            js += lam
            _save(recon, levels, nzs, done, info, bx, r0, c0, 32, srec, slev, snz, sdone, sinfo, False)
            jb = lam + code_big(x, recon, levels, nzs, done, info, bx, r0, c0, 32, d32, SM32, pseudo32, zpos32, nm16,
                                stepz, offsets, offs_f, wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc,
                                0)  # fmt: skip
            if jb >= js:
                _save(recon, levels, nzs, done, info, bx, r0, c0, 32, srec, slev, snz, sdone, sinfo, True)


def reference_decode(levels, info, modes, steps, offsets, mid, lo, hi, shape, unit) -> np.ndarray:
    """What a decoder of the variant would do, in plain NumPy from what the stream would carry
    (levels, per block the size, the 8x8 modes and transform choices, the large blocks' modes):
    walks the units in the encoder's order and reconstructs each 8x8 / 16x16 / 32x32 block. The
    loop's reconstruction must equal it (``--verify``): no sample the decoder lacks is used."""
    rows, cols = shape
    bx = cols // 8
    recon = np.zeros(shape, np.int64)
    done = np.zeros((rows // 8) * bx, bool)
    stepz = steps.ravel()[ZZ]
    ext = np.empty(KI.EXT_SIZE, np.int64)
    fext = np.empty(KI.EXT_SIZE, np.int64)
    pred = np.empty(64, np.int64)

    def deq_of(lv):
        lv = lv.astype(np.float64)
        return np.where(lv > 0, 256 * lv - offsets, np.where(lv < 0, 256 * lv + offsets, 0.0)) * stepz / 256.0

    def block(r0, c0, n):
        b = (r0 // 8) * bx + c0 // 8
        if n == 8:
            ar = r0 == 0 or c0 + 8 >= cols or done[b - bx + 1]
            _refs8(recon, r0, c0, mid, ext, fext, ar)
            KI.predict_fast(int(modes[b]), ext, fext, pred)
            bv = BASES8[KI.TX_PAIR[modes[b], 0] if info[b, 1] == 1 else 0]
            bh = BASES8[KI.TX_PAIR[modes[b], 1] if info[b, 1] == 1 else 0]
            d = np.zeros(64)
            d[ZZ] = deq_of(levels[b])
            rr = bv.T @ d.reshape(8, 8) @ bh
            recon[r0 : r0 + 8, c0 : c0 + 8] = np.clip(pred.reshape(8, 8) + np.floor(rr + 0.5).astype(np.int64), lo, hi)
            done[b] = True
            return
        s = n // 8
        tx8 = info[b, 1] >= TX8_TAG
        pseudo, zpos = (LAY16Q if tx8 else LAY16) if n == 16 else LAY32
        p = np.empty(n * n, np.int64)
        predict_big(int(info[b, 1] % TX8_TAG), recon, r0, c0, n, mid, SM16 if n == 16 else SM32, p)
        d = np.zeros(n * n)
        for pb in range(s * s):
            bi = (r0 // 8 + pb // s) * bx + c0 // 8 + pb % s
            sel = pseudo == pb
            d[sel] = deq_of(levels[bi])[zpos[sel]]
            done[bi] = True
        dct = (BLOCKDIAG16 if tx8 else DCT16) if n == 16 else DCT32
        rr = dct.T @ d.reshape(n, n) @ dct
        recon[r0 : r0 + n, c0 : c0 + n] = np.clip(p.reshape(n, n) + np.floor(rr + 0.5).astype(np.int64), lo, hi)

    def node(r0, c0, n):
        if r0 >= rows or c0 >= cols:
            return
        if n == 8 or info[(r0 // 8) * bx + c0 // 8, 0] == n:
            block(r0, c0, n)
            return
        for q in range(4):
            node(r0 + (n // 2) * (q // 2), c0 + (n // 2) * (q % 2), n // 2)

    for r0 in range(0, rows, unit):
        for c0 in range(0, cols, unit):
            node(r0, c0, unit)
    return recon


def kt_bits(symbols, contexts, nsym: int, nctx: int) -> float:
    """Ideal adaptive cost (Krichevsky-Trofimov counts) of the symbols under their contexts."""
    counts = np.full((nctx, nsym), 0.5)
    bits = 0.0
    for s, c in zip(np.asarray(symbols).tolist(), np.asarray(contexts).tolist()):
        row = counts[c]
        bits -= np.log2(row[s] / row.sum())
        row[s] += 1
    return bits


# ---------------------------------------------------------------- capture the default's intra frames
CAP: list = []
TIMES: dict = {}
DEV: list = []
VERIFY = False
FULL_MODES = False  # --full-modes: every variant pays the default's whole mode segment (no saving credited)
MODE_CHECK: list = []  # the 8x8 raster loop's real mode segment - the default's, per frame
VERIFIED: list = []
_orig_enc = intra.encode_intra_frame
_orig_lv = intra._encode_levels
_LV: list = []


def _grab_levels(levels, bx):
    out = _orig_lv(levels, bx)
    _LV.append(len(out))
    return out


def _grab(frame, coder, offsets=None, *a, **kw):
    _LV.clear()
    _SKIP.clear()
    res = _orig_enc(frame, coder, offsets, *a, **kw)
    nmode = struct.unpack("<I", res.payload[:4])[0] + 4
    CAP.append((np.array(frame), coder, None if offsets is None else np.array(offsets), res.modes.copy(), _LV[-1], nmode,
                _SKIP[-1]))  # fmt: skip
    return res


_orig_modes25 = KI.encode_modes25
_SKIP: list = []


def _grab_modes25(modes, skip, txc, bx, out):
    _SKIP.append(np.array(skip))
    return _orig_modes25(modes, skip, txc, bx, out)


intra.encode_intra_frame = _grab
intra._encode_levels = _grab_levels
KI.encode_modes25 = _grab_modes25  # intra calls it through the module: the default's flat (skipped) blocks


def mode_segment(modes, skip, info, levels, bx) -> int:
    """Bytes of the variant's mode segment by the real 2.5 coder (``encode_modes25``): each 8x8
    block's mode and (2.5's rule: coded mode other than DC, a non-zero level) its transform choice;
    a large block's 8x8 blocks code nothing (``skip``) and carry its prediction mode (0 DC, 1
    SMOOTH, 2 paeth: the 8x8 modes of those names) as their neighbours' context."""
    big = info[:, 0] > 8
    m = modes.astype(np.int64).copy()
    m[big] = info[big, 1] % TX8_TAG
    sk = (skip != 0) | big
    txc = np.where(~sk & (m > 0) & (levels != 0).any(axis=1), info[:, 1], 2).astype(np.uint8)
    out = np.empty(m.size * 4 + 1024, np.uint8)
    status, n = _orig_modes25(m, sk.astype(np.uint8), txc, bx, out)
    assert status == K.OK
    return int(n) + 4  # + the segment's length field
#: name -> (unit, 16x16 allowed, its prediction modes (0 DC, 1 SMOOTH, 2 paeth: the first n), 32x32 allowed,
#: 16x16 blocks take four 8x8 DCTs, pruning: -1 none, else the largest non-zero AC count of the four
#: 8x8 blocks for which a 16x16 block is tried, and 32x32 only over four 16x16 blocks)
VARIANTS = {
    "8x8 raster": (8, False, 1, False, False, -1),
    "8x8 Z": (16, False, 1, False, False, -1),
    "Q16 DC": (16, True, 1, False, False, -1),
    "Q16 DC/SM/paeth": (16, True, 3, False, False, -1),
    "Q16 pred, 8x8 DCT": (16, True, 3, False, True, -1),
    "Q32+Q16 DC/SM/paeth": (32, True, 3, True, False, -1),
    "Q32+Q16 DC/SM pruned 8": (32, True, 2, True, False, 8),
    "Q32+Q16 DC/SM pruned 24": (32, True, 2, True, False, 24),
    "Q32+Q16 DC bottom-up": (32, True, 1, True, False, 1 << 20),
    "Q32+Q16 DC/SM bottom-up": (32, True, 2, True, False, 1 << 20),
}


def loop_setup(frame, coder, offsets, modes, mode_seg, skip) -> tuple:
    """What a closed loop over a captured intra frame needs: (padded frame, blocks per row, blocks,
    8x8 steps, offsets, mode lambda, RD pricing (cost, lam_rd, mu, rho, tex_sum), int modes, mean
    bits per coded mode). Shared with ``explore_adaptive_quant.py``."""
    x = intra._padded(frame).astype(np.int64)
    cols = frame.shape[1]
    scaled = coder.scaled(frame)  # the default fast effort's pricing (intra.RD_PRICE "dct")
    priced = K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))
    rd = intra.rd_params(coder, frame, priced, -(-cols // 8))
    mode_bits = mode_seg * 8 / max(int((skip == 0).sum()), 1)  # mean bits per coded mode (J of the split)
    return (x, x.shape[1] // 8, x.size // 64, coder.steps.astype(np.float64).reshape(8, 8), intra._offsets(offsets),
            intra.lambda_for(coder), rd, modes.astype(np.int64), mode_bits)  # fmt: skip


def frame_points(frame, coder, offsets, modes, nbytes_default, lev_default, mode_seg, skip, names) -> dict:
    x, bx, nb, steps, offs, lam, rd, modes, mode_bits = loop_setup(frame, coder, offsets, modes, mode_seg, skip)
    cost, lam_rd, mu, rho, tex_sum = rd
    rows, cols = frame.shape
    out = {}
    for name in names:
        unit, b16, nm16, b32, tx8, prune = VARIANTS[name]
        lay16, d16, tag16 = (LAY16Q, BLOCKDIAG16, TX8_TAG) if tx8 else (LAY16, DCT16, 0)
        levels = np.zeros((nb, 64), np.int32)
        recon = np.empty_like(x)
        info = np.zeros((nb, 2), np.int64)
        t0 = time.thread_time()
        closed_loop(x, steps, ZZ, offs, np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi), modes, unit,
                    b16, nm16, b32, lam, levels, recon, info, cost, lam_rd, mu, rho, tex_sum, mode_bits, lay16[0],
                    lay16[1], d16, LAY32[0], LAY32[1], DCT32, skip.astype(np.uint8), tag16, prune)  # fmt: skip
        TIMES[name] = TIMES.get(name, 0.0) + time.thread_time() - t0
        if VERIFY:
            ref = reference_decode(levels, info, modes, steps, offs.astype(np.float64), coder.offset, coder._lo,
                                   coder._hi, x.shape, unit)  # fmt: skip
            assert np.array_equal(ref, recon), f"{name}: the loop's reconstruction is not what a decoder gets"
            VERIFIED.append(name)
        sse = float(((recon[:rows, :cols] - frame.astype(np.int64)) ** 2).sum())
        nbytes = len(_orig_lv(levels, bx))
        small = info[:, 0] == 8
        if FULL_MODES:  # conservative: the default's whole mode segment, the 8x8 choices' ideal cost on top
            sel = small & (modes > 0)
            side = mode_seg + kt_bits(info[sel, 1], KI.TX_CLASS[modes[sel]], 2, 3) / 8
        else:  # the real 2.5 mode coder on what is left to code
            side = mode_segment(modes, skip, info, levels, bx)
        tl = np.zeros(nb, bool)  # top-left 8x8 block of each 16x16 / 32x32 node: where its flag lives
        by, bxx = np.divmod(np.arange(nb), bx)
        if b16:
            tl16 = (by % 2 == 0) & (bxx % 2 == 0) & (by + 1 < x.shape[0] // 8) & (bxx + 1 < bx)
            if b32:  # 16x16 nodes inside a 32x32 block code no flag
                tl16 &= info[:, 0] != 32
            side += kt_bits((info[tl16, 0] == 16).astype(np.int64), np.zeros(int(tl16.sum()), np.int64), 2, 1) / 8
            tl = tl16 & (info[:, 0] == 16)
            if nm16 > 1:
                side += kt_bits(info[tl, 1] % TX8_TAG, np.zeros(int(tl.sum()), np.int64), nm16, 1) / 8
        if b32:
            tl32 = (by % 4 == 0) & (bxx % 4 == 0) & (by + 3 < x.shape[0] // 8) & (bxx + 3 < bx)
            side += kt_bits((info[tl32, 0] == 32).astype(np.int64), np.zeros(int(tl32.sum()), np.int64), 2, 1) / 8
            t32 = tl32 & (info[:, 0] == 32)
            side += kt_bits(info[t32, 1], np.zeros(int(t32.sum()), np.int64), nm16, 1) / 8
        rate = nbytes_default - lev_default - mode_seg + nbytes + side
        if name == "8x8 raster" and not FULL_MODES:
            MODE_CHECK.append(side - mode_seg)
        if name == "8x8 raster":  # how near the default's levels this loop gets (same modes, no bound check)
            DEV.append(nbytes - lev_default)
        area = np.array([(info[:, 0] == s).mean() for s in (8, 16, 32)])
        out[name] = (rate, sse, area)
    return out


def run(name: str, frames: np.ndarray, bits: int, signed: bool, names: tuple) -> dict:
    peak = 2.0**bits - 1
    curves: dict = {}
    areas: dict = {}
    t_enc = 0.0
    for q in QUALS:
        acc: dict = {}
        dbytes = 0
        for f in frames:
            CAP.clear()
            t0 = time.thread_time()
            buf = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
            t_enc += time.thread_time() - t0
            dbytes += len(buf)
            assert len(CAP) == 1, "one intra frame per encode"
            fr, coder, offsets, modes, lev, mseg, skip = CAP[0]
            for k, (nbt, sse, area) in frame_points(fr, coder, offsets, modes, len(buf), lev, mseg, skip,
                                                    names).items():  # fmt: skip
                a = acc.setdefault(k, [0.0, 0.0, np.zeros(3)])
                a[0] += nbt
                a[1] += sse
                a[2] += area / len(frames)
        npx = frames.size
        for k, (nbt, sse, area) in acc.items():
            mse = sse / npx
            curves.setdefault(k, []).append((nbt * 8 / npx, 10 * np.log10(peak**2 / mse) if mse > 0 else np.inf))
            areas.setdefault(k, []).append(area)
        base = curves["8x8 raster"][-1]
        print(f"  q{q}: default {dbytes * 8 / npx:.3f} bpp; loop {base[0]:.3f} bpp {base[1]:.2f} dB; "
              + "; ".join(f"{k} {curves[k][-1][0] - base[0]:+.4f} bpp {curves[k][-1][1] - base[1]:+.3f} dB "
                          f"area 16/32 {areas[k][-1][1]:.0%}/{areas[k][-1][2]:.0%}"
                          for k in curves if k != "8x8 raster"), flush=True)  # fmt: skip
    anchor = [(b, p) for b, p in curves["8x8 raster"] if 0.2 <= b <= 3.5 and np.isfinite(p)]
    res: dict = {}
    for k, c in curves.items():
        if k == "8x8 raster" or len(anchor) < 4:
            continue
        sel = [(b, p) for b, p in c if 0.2 <= b <= 3.5 and np.isfinite(p)]
        res[k] = bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in sel], [p for _, p in sel])
    print(f"{name}: BD-rate vs 8x8 raster (closed loop, {len(anchor)} points in 0.2-3.5 bpp): "
          + "; ".join(f"{k}: {v:+.2f} %" for k, v in res.items()), flush=True)  # fmt: skip
    print(f"{name}: loop CPU vs 8x8 raster: " + " ".join(f"{k}: {t / TIMES['8x8 raster']:.2f}x" for k, t in TIMES.items()),
          flush=True)  # fmt: skip
    t0 = TIMES["8x8 raster"]
    print(f"{name}: the default's whole encode {t_enc:.1f} s CPU; each variant's extra loop CPU over 8x8 raster in % "
          "of it (an encoder's extra cost): " + " ".join(f"{k}: {(t - t0) / t_enc:+.0%}" for k, t in TIMES.items()),
          flush=True)  # fmt: skip
    TIMES.clear()
    print(f"{name}: 8x8 raster level bytes - the default's, per frame: mean {np.mean(DEV):+.0f} B, "
          f"max |.| {np.max(np.abs(DEV)):.0f} B", flush=True)  # fmt: skip
    DEV.clear()
    if MODE_CHECK:
        print(f"{name}: 8x8 raster mode segment - the default's, per frame: mean {np.mean(MODE_CHECK):+.0f} B", flush=True)
    MODE_CHECK.clear()
    return res


@numba.njit(cache=False)
def inverse_all(deq, n, m, out):
    """Dense separable inverse of every n x n block of a frame (``m`` the n-point DCT), f64 sums in
    index order as the 2.5 decoder's ``reconstruct_pair`` does for 8x8 (no zero skipping)."""
    rows, cols = deq.shape
    tmp = np.empty((n, n))
    for r0 in range(0, rows, n):
        for c0 in range(0, cols, n):
            tmp[:, :] = 0.0
            for k in range(n):  # tmp = m^T D, row k of D added into every row i (contiguous)
                for i in range(n):
                    w = m[k, i]
                    for j in range(n):
                        tmp[i, j] += w * deq[r0 + k, c0 + j]
            for i in range(n):  # out = tmp m
                for j in range(n):
                    out[r0 + i, c0 + j] = 0.0
                for k in range(n):
                    w = tmp[i, k]
                    for j in range(n):
                        out[r0 + i, c0 + j] += w * m[k, j]


def decode_cost(data: Path) -> None:
    """Thread CPU of the dense inverse over a 512x512 frame with 8x8 / 16x16 / 32x32 blocks (best of
    7), against the default's whole decode of a chest CT slice at q45 and q72 (best of 7)."""
    frames, bits, signed = B.load(data / B.SERIES[0], 1)
    deq = np.random.default_rng(1).normal(size=(512, 512))
    out = np.empty_like(deq)
    mats = {8: DCT_MATRIX.astype(np.float64), 16: DCT16, 32: DCT32}
    for n, m in mats.items():
        inverse_all(deq, n, m, out)
    t = {}
    for n, m in mats.items():
        best = np.inf
        for _ in range(7):
            t0 = time.thread_time()
            inverse_all(deq, n, m, out)
            best = min(best, time.thread_time() - t0)
        t[n] = best
    for q in (45, 72):
        buf = medcodec.encode(frames[0], bits_stored=bits, signed=signed, quality=q, jobs=1)
        medcodec.decode(buf)
        best = np.inf
        for _ in range(7):
            t0 = time.thread_time()
            medcodec.decode(buf)
            best = min(best, time.thread_time() - t0)
        print(f"chest CT q{q}: default decode {best * 1e3:.1f} ms; dense inverse 8x8 {t[8] * 1e3:.1f} ms "
              f"({t[8] / best:.0%}), 16x16 {t[16] * 1e3:.1f} ms ({t[16] / best:.0%}), 32x32 {t[32] * 1e3:.1f} ms "
              f"({t[32] / best:.0%}) of it", flush=True)  # fmt: skip


def spectrum_ratio(img: np.ndarray) -> float:
    """Share of the (mean-removed) power above half the Nyquist frequency in either axis: an image
    interpolated 2x from a coarser grid has almost none there."""
    f = np.abs(np.fft.fft2(img.astype(np.float64) - img.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(img.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(img.shape[1]))[None, :]
    hi = (fy > 0.25) | (fx > 0.25)
    return float(f[hi].sum() / f.sum())


def load_any(path: Path, n: int) -> tuple[np.ndarray, int, bool]:
    import pydicom

    if path.is_dir():
        return B.load(path, n)
    ds = pydicom.dcmread(path)
    px = ds.pixel_array
    return (px[None] if px.ndim == 2 else px), int(ds.BitsStored), bool(ds.PixelRepresentation)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=B.DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--smooth", action="store_true", help="the seen smooth MRs instead of the shared series")
    ap.add_argument("--only-unseen", action="store_true", help="the unseen Siemens MR check only (run it once)")
    ap.add_argument("--only", type=str, default=None, help="comma-separated variants (8x8 raster always)")
    ap.add_argument("--no-32", action="store_true", help="without the 32x32 variant (faster)")
    ap.add_argument("--bound", action="store_true", help="only: the §12.3 bound of 8 / 16 / 32 DCT blocks")
    ap.add_argument("--full-modes", action="store_true", help="credit large blocks no mode-segment saving")
    ap.add_argument("--decode-cost", action="store_true", help="only: inverse-transform CPU per sample, 8/16/32")
    ap.add_argument("--verify", action="store_true", help="decode every variant's frame by reference_decode")
    ap.add_argument("--qualities", type=str, default=None, help="comma-separated (a quick look; BD needs >= 4)")
    args = ap.parse_args(argv)
    global QUALS, VERIFY, FULL_MODES
    VERIFY = args.verify
    FULL_MODES = args.full_modes
    if args.decode_cost:
        decode_cost(args.data)
        return 0
    if args.qualities:
        QUALS = tuple(int(v) for v in args.qualities.split(","))
    names = tuple(k for k in VARIANTS if not (args.no_32 and k.startswith("Q32")))
    if args.only:
        names = ("8x8 raster", *(k for k in args.only.split(",") if k != "8x8 raster"))
    if args.bound:
        from medcodec.codec import mdc2

        for q in (20, 45, 80):
            CAP.clear()
            f, bits, signed = B.load(args.data / B.SERIES[1], 1)
            medcodec.encode(f[0], bits_stored=bits, signed=signed, quality=q, jobs=1)
            _, coder, offsets, *_ = CAP[0]
            st = coder.steps.reshape(8, 8)
            print(f"head CT q{q}: 2.5 printed (DCT/DST pairs) {mdc2.error_bound_with_offsets(st, offsets, tx=True):.1f}; "
                  + " ".join(f"{n}x{n} DCT {big_bound(st, offsets, n):.1f}" for n in (8, 16, 32)))  # fmt: skip
        return 0
    if args.only_unseen:
        import pydicom
        from pydicom.data import get_testdata_file

        items = [(nm, Path(get_testdata_file(nm))) for nm in UNSEEN]
        del pydicom
    elif args.smooth:
        items = [(nm, args.data / nm) for nm in SMOOTH_SEEN]
    else:
        items = [(s, args.data / s) for s in B.SERIES]
    warm = np.random.default_rng(0).integers(0, 4096, (48, 48)).astype(np.uint16)  # compile before timing
    CAP.clear()
    buf = medcodec.encode(warm, bits_stored=12, signed=False, quality=50, jobs=1)
    fr, coder, offsets, modes, lev, mseg, skip = CAP[0]
    frame_points(fr, coder, offsets, modes, len(buf), lev, mseg, skip, names)
    TIMES.clear()
    DEV.clear()
    for nm, path in items:
        frames, bits, signed = load_any(path, args.frames)
        frames = frames[np.linspace(0, len(frames) - 1, min(args.frames, len(frames))).round().astype(int)]
        print(f"{nm} {frames.shape} {bits}-bit: power above half Nyquist {spectrum_ratio(frames[0]):.2e}", flush=True)
        run(nm, frames, bits, signed, names)
    if VERIFY:
        print(f"verified: {len(VERIFIED)} frames' reconstructions equal reference_decode's", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
