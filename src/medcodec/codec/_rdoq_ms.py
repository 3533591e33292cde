"""RD-optimised quantization priced with the 2.1 multi-symbol coder's own model (array -> array).

:mod:`._rdoq` decides levels with the code lengths of JPEG's Huffman run/size symbols; the
range coder of format 2.1 (:mod:`._kernels_ms`, ``docs/format.md`` §13) codes the same levels
with other symbols, so those prices are wrong there (``effort="best"`` with the Huffman trellis
came out larger than plain rounding on 2.1). Here the price of a level is what the 2.1 syntax
spends on it:

* **Rate model** (:func:`symbol_counts`, :func:`symbol_costs`): a first pass walks the rounded
  levels of the frame through the 2.1 block syntax (the same contexts as the encoder: the
  non-zero count under the neighbours' counts, the AC base symbol under (position class,
  remaining count, neighbours' magnitudes)) and counts the symbols per context; a symbol costs
  ``-log2((count + 1/2) / (total + n/2))`` bits (at most 13, the coder's floor), the sign 1 bit.
  This is a static picture of the adaptive coder's statistics of that frame.
* **Block rate**: the non-zero count symbol(s), and for every AC position up to the last
  non-zero one the base symbol under its context (which knows how many non-zero levels remain),
  plus one bit per sign. The continuation and escape symbols of magnitudes >= 3 and the DC are
  left out: no move tried below changes them (exact, not an approximation). The kernel prices a
  move by its change alone (:func:`_prefix_rates`: the earlier positions' bits under their
  contexts and with one non-zero fewer, refreshed when a level becomes 0); the twin recomputes
  the whole block.
* **Search** (:func:`rdoq_levels`, the same greedy as :func:`._rdoq.texture_levels_reference`):
  blocks in coding order; levels start rounded; from the last non-zero AC position back to the
  first, a +-1 may become 0 and a +-2 may become +-1 when that lowers

      J = D + lambda R + mu max(0, rho |x_AC| - |r_AC|)^2

  with ``D = sum_k step_k^2 (|x_k| - r_k)^2`` and ``r_k = |l_k| - o_k`` the decoder's
  reconstruction (centroid offsets ``o_k`` in steps, :func:`.mdc2.reconstruction_offsets` of the
  rounded levels) and the texture penalty of :mod:`._rdoq` (zero while a block keeps its AC
  energy). **Approximations**: the costs are those of the rounded levels (one pass, not
  iterated); a block's decision does not see what it does to its right and lower neighbours'
  contexts (their neighbour-magnitude buckets and non-zero count context) nor to the adaptive
  state; the centroid offsets are those of the rounded levels during the search.
* **Error bound** (``safe``): a move is allowed only when the coefficient's error stays within
  the ``(1/2 + o_k)`` steps that :func:`.mdc2.error_bound_with_offsets` assumes (zeroing
  ``|x| <= 1/2 + o_k``; ``2 -> 1`` never qualifies); :func:`enforce_bound` then puts back the
  rounded level wherever the final offsets would break it.

Plain-Python twins written from this description: :func:`symbol_counts_reference`,
:func:`rdoq_levels_reference`, :func:`enforce_bound_reference` (``tests/codec/test_rdoq_ms.py``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._kernels_ms import (
    ALPHABET,
    FINE_POSITION_BLOCKS,
    NBR_BUCKETS,
    NBR_LUT,
    O_BASE,
    O_NZ,
    O_NZH,
    O_NZL,
    OFFSET,
    POS_FINE,
    REM_BUCKETS,
    REM_LUT,
)
from ._kernels_v2 import POS_BAND, _nz_ctx

__all__ = ["symbol_counts", "symbol_costs", "rdoq_levels", "rdoq_block", "rdoq_block_given", "rdoq_block_counted",
           "neighbour_buckets", "enforce_bound", "blocks_over",
           "symbol_counts_reference", "rdoq_levels_reference", "enforce_bound_reference", "blocks_over_reference",
           "COST_PRIOR", "MAX_SYMBOL_BITS"]  # fmt: skip

_jit = numba.njit(cache=True, nogil=True)
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]

#: Pseudo-count added to every symbol of a context when its counts become costs.
COST_PRIOR = 0.5
#: No symbol costs more (the coder keeps every frequency >= 4 / 32768).
MAX_SYMBOL_BITS = 13.0
#: Slack of the error-bound test (steps), far below the 1/256-step offset unit.
BOUND_EPS = 1e-9


@_jit
def symbol_counts(levels, bx, counts):
    """Add to ``counts`` (flat, :data:`._kernels_ms.OFFSET`) the non-zero count and AC base
    symbols the 2.1 encoder codes for (nblocks, 64) zigzag ``levels``, ``bx`` blocks a row."""
    nblocks = levels.shape[0]
    posc = POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    for i in range(nblocks):
        nz = np.int64(0)
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        nzs[i] = nz
        counts[O_NZ + 16 * _nz_ctx(nzs, i, bx) + min(nz, 15)] += 1.0
        if nz >= 15:
            counts[O_NZH + ((nz - 15) >> 2)] += 1.0
            counts[O_NZL + ((nz - 15) & 3)] += 1.0
        has_left = i % bx > 0
        has_up = i >= bx
        rem = nz
        k = 1
        while rem > 0:
            m = abs(np.int64(levels[i, k]))
            nsum = np.int64(0)
            if has_left:
                nsum += abs(np.int64(levels[i - 1, k]))
            if has_up:
                nsum += abs(np.int64(levels[i - bx, k]))
            nbk = NBR_LUT[min(nsum, np.int64(21))]
            counts[O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem]) * NBR_BUCKETS + nbk) + min(m, 3)] += 1.0
            if m != 0:
                rem -= 1
            k += 1
    return counts


def symbol_costs(counts: np.ndarray) -> np.ndarray:
    """Bits per symbol (flat, as ``counts``): ``-log2((c + COST_PRIOR) / (total + n COST_PRIOR))``
    per context of ``n`` symbols, at most :data:`MAX_SYMBOL_BITS`."""
    counts = np.asarray(counts, dtype=np.float64)
    starts = OFFSET[:-1]
    totals = np.add.reduceat(counts, starts)
    per = np.repeat(totals + ALPHABET * COST_PRIOR, ALPHABET)
    return np.minimum(-np.log2((counts + COST_PRIOR) / per), MAX_SYMBOL_BITS)


@_helper
def _nz_rate(nz, nzc, cost):
    """Bits of the non-zero count symbol(s)."""
    r = cost[O_NZ + 16 * nzc + min(nz, 15)]
    if nz >= 15:
        r += cost[O_NZH + ((nz - 15) >> 2)] + cost[O_NZL + ((nz - 15) & 3)]
    return r


@_helper
def _prefix_rates(m, nbk, posc, cost, upto, rem, p0, p1):
    """For positions 1..``upto`` of magnitudes ``m``: ``rem[j]`` (non-zero levels at positions
    >= j), ``p0[j]`` the bits of the base symbols at positions 1..j-1 under their contexts, ``p1[j]``
    the same with one non-zero fewer remaining; returns the block's non-zero count."""
    nz = np.int64(0)
    for k in range(1, 64):
        if m[k] != 0:
            nz += 1
    _prefix_rates_nz(m, nz, nbk, posc, cost, upto, rem, p0, p1)
    return nz


@_helper
def _prefix_rates_nz(m, nz, nbk, posc, cost, upto, rem, p0, p1):
    """:func:`_prefix_rates` given the non-zero count ``nz`` of ``m`` (positions 1..63)."""
    r = nz
    s0 = 0.0
    s1 = 0.0
    p0[1] = 0.0
    p1[1] = 0.0
    for k in range(1, upto + 1):
        rem[k] = r
        if r > 0:
            row = O_BASE + 4 * (posc[k] * REM_BUCKETS * NBR_BUCKETS + nbk[k]) + min(m[k], 3)
            s0 += cost[row + 4 * NBR_BUCKETS * REM_LUT[r]]
            s1 += cost[row + 4 * NBR_BUCKETS * REM_LUT[r - 1]]
        p0[k + 1] = s0
        p1[k + 1] = s1
        if m[k] != 0:
            r -= 1


@_helper
def _recon(m, o):
    return m - o if m > 0 else 0.0


@_helper
def _future(k, mk, rem_r, oth_r, sym_r, rem_d, oth_d, sym_d, posc, cost):
    """Bits the right and lower neighbours (their rounded levels) spend on their base symbol at
    position ``k`` when this block's magnitude there is ``mk`` (it sets their neighbour bucket)."""
    r = 0.0
    if rem_r[k] > 0:
        nbk = NBR_LUT[min(oth_r[k] + mk, np.int64(21))]
        r += cost[O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem_r[k]]) * NBR_BUCKETS + nbk) + sym_r[k]]
    if rem_d[k] > 0:
        nbk = NBR_LUT[min(oth_d[k] + mk, np.int64(21))]
        r += cost[O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem_d[k]]) * NBR_BUCKETS + nbk) + sym_d[k]]
    return r


@_helper
def _neighbour(levels, j, rem, sym):
    """``rem[k]``: non-zero AC levels of block ``j`` at positions >= k (0: k not coded there);
    ``sym[k]``: its base symbol at k."""
    c = np.int64(0)
    for k in range(63, 0, -1):
        m = abs(np.int64(levels[j, k]))
        if m != 0:
            c += 1
        rem[k] = c
        sym[k] = min(m, 3)


@_jit
def rdoq_levels(scaled, levels, bx, cost, weights, offs, lam, mu, rho, dc_floor, safe, lookahead, out):
    """Greedy RD levels into ``out`` (nblocks, 64) int32 from the rounded ``levels`` of ``scaled``
    (zigzag coefficients / steps); ``cost``: :func:`symbol_costs`; ``weights``: squared steps
    (zigzag); ``offs``: reconstruction offsets in steps (zigzag, ``offs[0] = 0``); blocks whose
    scaled DC lies below ``dc_floor`` have no energy target; ``safe``: only moves that keep the
    coefficient within ``(1/2 + o_k)`` steps; ``lookahead``: the rate counts what a move does to
    the right and lower neighbours' base symbols at that position (their rounded levels).
    Returns the number of levels changed."""
    nblocks = levels.shape[0]
    posc = POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    m = np.zeros(64, dtype=np.int64)
    nbk = np.zeros(64, dtype=np.int64)
    a = np.zeros(64)
    rem_r = np.zeros(64, dtype=np.int64)
    oth_r = np.zeros(64, dtype=np.int64)
    sym_r = np.zeros(64, dtype=np.int64)
    rem_d = np.zeros(64, dtype=np.int64)
    oth_d = np.zeros(64, dtype=np.int64)
    sym_d = np.zeros(64, dtype=np.int64)
    rem = np.zeros(65, dtype=np.int64)
    p0 = np.zeros(65)
    p1 = np.zeros(65)
    changed = 0
    for i in range(nblocks):
        has_left = i % bx > 0
        out[i, 0] = levels[i, 0]
        movable = 0
        last = 0
        for k in range(1, 64):
            v = levels[i, k]
            out[i, k] = v
            m[k] = abs(np.int64(v))
            if v != 0:
                last = k
                if m[k] <= 2:
                    movable += 1
        if movable == 0:  # nothing to try: the block stays rounded
            nz = np.int64(0)
            for k in range(1, 64):
                if m[k] != 0:
                    nz += 1
            nzs[i] = nz
            continue
        tgt2 = 0.0
        if mu > 0.0 and scaled[i, 0] >= dc_floor:
            for k in range(1, 64):
                tgt2 += weights[k] * scaled[i, k] * scaled[i, k]
        kept2 = 0.0
        neighbour_buckets(out, i, bx, last, nbk)  # positions past the last non-zero: zero, never coded
        for k in range(1, last + 1):
            a[k] = abs(scaled[i, k])
            rk = _recon(m[k], offs[k])
            kept2 += weights[k] * rk * rk
        rem_r[:] = 0
        rem_d[:] = 0
        if lookahead:
            if i % bx < bx - 1 and i + 1 < nblocks:  # right: its upper neighbour is final
                _neighbour(levels, i + 1, rem_r, sym_r)
                for k in range(1, last + 1):
                    oth_r[k] = abs(np.int64(out[i + 1 - bx, k])) if i + 1 >= bx else 0
            if i + bx < nblocks:  # lower: its left neighbour still rounded
                _neighbour(levels, i + bx, rem_d, sym_d)
                for k in range(1, last + 1):
                    oth_d[k] = abs(np.int64(levels[i + bx - 1, k])) if has_left else 0
        target = rho * math.sqrt(tgt2)
        nzc = _nz_ctx(nzs, i, bx)
        nz = _prefix_rates(m, nbk, posc, cost, last, rem, p0, p1)
        deficit = target - math.sqrt(kept2)
        pen = mu * deficit * deficit if deficit > 0.0 else 0.0
        for k in range(last, 0, -1):
            mk = m[k]
            if mk == 0 or mk > 2:
                continue
            cand = mk - 1
            rc = _recon(cand, offs[k])
            rm = _recon(mk, offs[k])
            if safe and abs(a[k] - rc) > 0.5 + offs[k] + BOUND_EPS:
                continue
            dd = weights[k] * ((a[k] - rc) ** 2 - (a[k] - rm) ** 2)
            row = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem[k]]) * NBR_BUCKETS + nbk[k])
            if mk == 2:  # the same positions coded, under the same contexts
                dr = cost[row + 1] - cost[row + 2]
            else:  # one non-zero fewer: its sign, the count symbol, every earlier position's context
                dr = _nz_rate(nz - 1, nzc, cost) - _nz_rate(nz, nzc, cost) - 1.0
                if rem[k] == 1:  # the last one: coding stops at the previous non-zero
                    prev = k - 1
                    while prev > 0 and m[prev] == 0:
                        prev -= 1
                    dr += p1[prev + 1] - p0[k] - cost[row + 1]
                else:
                    row0 = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem[k] - 1]) * NBR_BUCKETS + nbk[k])
                    dr += cost[row0] - cost[row + 1] + p1[k] - p0[k]
            if lookahead:
                dr += _future(k, cand, rem_r, oth_r, sym_r, rem_d, oth_d, sym_d, posc, cost) - _future(
                    k, mk, rem_r, oth_r, sym_r, rem_d, oth_d, sym_d, posc, cost)  # fmt: skip
            new_kept2 = kept2 + weights[k] * (rc * rc - rm * rm)
            deficit = target - math.sqrt(max(new_kept2, 0.0))
            new_pen = mu * deficit * deficit if deficit > 0.0 else 0.0
            if dd + lam * dr + new_pen - pen < 0.0:
                kept2, pen = new_kept2, new_pen
                m[k] = cand
                changed += 1
                if cand == 0:  # the earlier positions' remaining counts drop by one
                    nz = _prefix_rates(m, nbk, posc, cost, k, rem, p0, p1)
        nz = np.int64(0)
        for k in range(1, 64):
            out[i, k] = -m[k] if scaled[i, k] < 0 else m[k]
            if m[k] != 0:
                nz += 1
        nzs[i] = nz
    return changed


@_helper
def rdoq_block(scaled_b, out, i, bx, nzs, posc, cost, weights, offs, lam, mu, rho, texture, safe, m, nbk, a, rem,
               p0, p1):  # fmt: skip
    """:func:`rdoq_levels`' search for one block, without the lookahead, in place: ``out[i]`` holds
    the rounded levels of ``scaled_b`` (64 zigzag coefficients / steps) on entry and the RD levels
    on return; the contexts read the final levels of blocks ``i - 1`` and ``i - bx`` in ``out`` and
    their non-zero counts in ``nzs`` (``nzs[i]`` is set); ``posc``: the position classes of the
    frame (:data:`._kernels_ms.POS_FINE` or ``POS_BAND`` by its block count); ``texture``: the block
    has an energy target. For a loop that must decide a block's levels before the next block
    exists (the intra encoder: its reconstruction predicts the next block). ``m``, ``nbk`` (64
    int64), ``a`` (64 float), ``rem`` (65 int64), ``p0``, ``p1`` (65 float): scratch. Returns the
    number of levels changed."""
    last = 0
    movable = 0
    for k in range(1, 64):
        v = abs(np.int64(out[i, k]))
        if v != 0:
            last = k
            if v <= 2:
                movable += 1
    if movable > 0:  # else the search returns at once
        neighbour_buckets(out, i, bx, last, nbk)
    return rdoq_block_given(scaled_b, out, i, nzs, _nz_ctx(nzs, i, bx), posc, cost, weights, offs, lam, mu, rho,
                            texture, safe, m, nbk, a, rem, p0, p1)  # fmt: skip


@_helper
def neighbour_buckets(out, i, bx, upto, nbk):
    """``nbk[k]``, k = 1..``upto``: the neighbour bucket of block ``i``'s base symbol at position k
    (``NBR_LUT`` of the summed magnitudes of blocks ``i - 1`` and ``i - bx`` in ``out`` there)."""
    has_left = i % bx > 0
    has_up = i >= bx
    for k in range(1, upto + 1):
        nsum = np.int64(0)
        if has_left:
            nsum += abs(np.int64(out[i - 1, k]))
        if has_up:
            nsum += abs(np.int64(out[i - bx, k]))
        nbk[k] = NBR_LUT[min(nsum, np.int64(21))]


@_helper
def rdoq_block_given(scaled_b, out, i, nzs, nzc, posc, cost, weights, offs, lam, mu, rho, texture, safe, m, nbk, a,
                     rem, p0, p1):  # fmt: skip
    """:func:`rdoq_block` with its contexts given: ``nzc`` the non-zero count's context
    (``_nz_ctx``), ``nbk[k]`` the neighbour buckets (:func:`neighbour_buckets`) of at least the
    positions up to the block's last non-zero level (read only). The intra encoder tries several
    candidates of one block, whose contexts are the same: it finds them once."""
    movable = 0
    last = 0
    nz = np.int64(0)
    for k in range(1, 64):
        v = out[i, k]
        m[k] = abs(np.int64(v))
        if v != 0:
            nz += 1
            last = k
            if m[k] <= 2:
                movable += 1
    return rdoq_block_counted(scaled_b, out, i, nzs, nzc, posc, cost, weights, offs, lam, mu, rho, texture, safe, m,
                              nbk, a, rem, p0, p1, nz, last, movable)  # fmt: skip


@_helper
def rdoq_block_counted(scaled_b, out, i, nzs, nzc, posc, cost, weights, offs, lam, mu, rho, texture, safe, m, nbk, a,
                       rem, p0, p1, nz, last, movable):  # fmt: skip
    """:func:`rdoq_block_given` with its first walk done by the caller: ``m[1:64]`` the magnitudes of
    ``out[i]``, ``nz`` their non-zero count, ``last`` the last non-zero position (0: none),
    ``movable`` how many are 1 or 2."""
    if movable == 0:
        nzs[i] = nz
        return 0
    tgt2 = 0.0
    kept2 = 0.0
    if mu > 0.0 and texture:  # both sums in one loop (each in its order): two chains side by side
        for k in range(1, last + 1):
            s = scaled_b[k]
            tgt2 += weights[k] * s * s
            a[k] = abs(s)
            rk = _recon(m[k], offs[k])
            kept2 += weights[k] * rk * rk
        for k in range(last + 1, 64):
            tgt2 += weights[k] * scaled_b[k] * scaled_b[k]
    else:
        for k in range(1, last + 1):
            a[k] = abs(scaled_b[k])
            rk = _recon(m[k], offs[k])
            kept2 += weights[k] * rk * rk
    target = rho * math.sqrt(tgt2)
    _prefix_rates_nz(m, nz, nbk, posc, cost, last, rem, p0, p1)  # nz: counted above
    deficit = target - math.sqrt(kept2)
    pen = mu * deficit * deficit if deficit > 0.0 else 0.0
    changed = 0
    for k in range(last, 0, -1):
        mk = m[k]
        if mk == 0 or mk > 2:
            continue
        cand = mk - 1
        rc = _recon(cand, offs[k])
        rm = _recon(mk, offs[k])
        if safe and abs(a[k] - rc) > 0.5 + offs[k] + BOUND_EPS:
            continue
        dd = weights[k] * ((a[k] - rc) ** 2 - (a[k] - rm) ** 2)
        row = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem[k]]) * NBR_BUCKETS + nbk[k])
        if mk == 2:
            dr = cost[row + 1] - cost[row + 2]
        else:
            dr = _nz_rate(nz - 1, nzc, cost) - _nz_rate(nz, nzc, cost) - 1.0
            if rem[k] == 1:
                prev = k - 1
                while prev > 0 and m[prev] == 0:
                    prev -= 1
                dr += p1[prev + 1] - p0[k] - cost[row + 1]
            else:
                row0 = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem[k] - 1]) * NBR_BUCKETS + nbk[k])
                dr += cost[row0] - cost[row + 1] + p1[k] - p0[k]
        new_kept2 = kept2 + weights[k] * (rc * rc - rm * rm)
        deficit = target - math.sqrt(max(new_kept2, 0.0))
        new_pen = mu * deficit * deficit if deficit > 0.0 else 0.0
        if dd + lam * dr + new_pen - pen < 0.0:
            kept2, pen = new_kept2, new_pen
            m[k] = cand
            changed += 1
            if cand == 0:  # one non-zero fewer
                nz -= 1
                _prefix_rates_nz(m, nz, nbk, posc, cost, k, rem, p0, p1)
    nz = np.int64(0)
    for k in range(1, 64):
        out[i, k] = -m[k] if scaled_b[k] < 0 else m[k]
        if m[k] != 0:
            nz += 1
    nzs[i] = nz
    return changed


@_jit
def enforce_bound(levels, rounded, scaled, offs):
    """In place: every AC level whose error ``| |x| - (|l| - o_k) |`` (zero levels: ``|x|``) exceeds
    ``1/2 + o_k`` steps goes back to its rounded level; returns how many did."""
    n = 0
    for i in range(levels.shape[0]):
        for k in range(1, 64):
            v = levels[i, k]
            if v == rounded[i, k]:
                continue
            if abs(abs(scaled[i, k]) - _recon(abs(np.int64(v)), offs[k])) > 0.5 + offs[k] + BOUND_EPS:
                levels[i, k] = rounded[i, k]
                n += 1
    return n


@_jit
def blocks_over(recon, frame, bound, bx, bad):
    """Mark in ``bad`` (one bool per 8x8 block, ``bx`` a row) the blocks where some sample of
    ``recon`` differs from ``frame`` by more than ``bound``; returns how many were marked."""
    n = 0
    for y in range(frame.shape[0]):
        for x in range(frame.shape[1]):
            if abs(np.float64(recon[y, x]) - np.float64(frame[y, x])) > bound:
                b = (y >> 3) * bx + (x >> 3)
                if not bad[b]:
                    bad[b] = True
                    n += 1
    return n


# ----------------------------------------------------------------------------- plain-Python twins


def blocks_over_reference(recon: np.ndarray, frame: np.ndarray, bound: float) -> np.ndarray:
    """Twin of :func:`blocks_over`: bool per block (raster order)."""
    err = np.abs(np.asarray(recon, np.float64) - np.asarray(frame, np.float64)) > bound
    rows, cols = err.shape
    pad = np.zeros((-(-rows // 8) * 8, -(-cols // 8) * 8), bool)
    pad[:rows, :cols] = err
    return pad.reshape(pad.shape[0] // 8, 8, pad.shape[1] // 8, 8).any(axis=(1, 3)).ravel()


def _nz_ctx_reference(nzs: list[int], i: int, bx: int) -> int:
    """The non-zero count context (:func:`._kernels_v2._nz_ctx`): bucket of twice the mean of the
    left and upper blocks' counts (one of them twice when the other is missing)."""
    edges = (1, 2, 4, 6, 9, 14, 20, 30, 50)  # _kernels_v2._nz_bucket: v below edges[j] -> j
    left, up = i % bx > 0, i >= bx
    if not (left or up):
        return 0
    v = (nzs[i - 1] if left else nzs[i - bx]) + (nzs[i - bx] if up else nzs[i - 1])
    return next((j for j, e in enumerate(edges) if v < e), len(edges))


def _contexts_reference(nblocks: int) -> np.ndarray:
    return POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND


def symbol_counts_reference(levels: np.ndarray, bx: int) -> np.ndarray:
    """Twin of :func:`symbol_counts` (fresh counts)."""
    counts = np.zeros(int(OFFSET[-1]))
    posc = _contexts_reference(len(levels))
    nzs: list[int] = []
    for i, blk in enumerate(np.asarray(levels, dtype=np.int64)):
        nz = int(np.count_nonzero(blk[1:]))
        nzs.append(nz)
        counts[O_NZ + 16 * _nz_ctx_reference(nzs, i, bx) + min(nz, 15)] += 1
        if nz >= 15:
            counts[O_NZH + ((nz - 15) >> 2)] += 1
            counts[O_NZL + ((nz - 15) & 3)] += 1
        for k, ctx in _base_contexts_reference(levels, i, bx, blk, posc):
            counts[ctx + min(abs(int(blk[k])), 3)] += 1
    return counts


def _base_contexts_reference(levels: np.ndarray, i: int, bx: int, blk: np.ndarray,
                             posc: np.ndarray) -> list[tuple[int, int]]:  # fmt: skip
    """(position, base context row) of every AC position coded in block ``i`` whose levels are ``blk``
    (the neighbours' from ``levels``)."""
    rem = int(np.count_nonzero(blk[1:]))
    out = []
    k = 1
    while rem > 0:
        nsum = (abs(int(levels[i - 1, k])) if i % bx > 0 else 0) + (abs(int(levels[i - bx, k])) if i >= bx else 0)
        nbk = int(NBR_LUT[min(nsum, 21)])
        out.append((k, O_BASE + 4 * ((int(posc[k]) * REM_BUCKETS + int(REM_LUT[rem])) * NBR_BUCKETS + nbk)))
        if blk[k] != 0:
            rem -= 1
        k += 1
    return out


def rdoq_levels_reference(scaled: np.ndarray, levels: np.ndarray, bx: int, cost: np.ndarray, weights: np.ndarray,
                          offs: np.ndarray, lam: float, mu: float, rho: float, dc_floor: float,
                          safe: bool, lookahead: bool) -> np.ndarray:  # fmt: skip
    """Twin of :func:`rdoq_levels`: each move judged by the whole block's ``J`` computed from scratch."""
    scaled = np.asarray(scaled, dtype=np.float64)
    out = np.array(levels, dtype=np.int32)
    posc = _contexts_reference(len(levels))
    nzs: list[int] = []
    o = [float(v) for v in offs]
    w = [float(v) for v in weights]
    for i in range(len(out)):
        a = [abs(float(v)) for v in scaled[i]]
        target = rho * math.sqrt(sum(w[k] * a[k] ** 2 for k in range(1, 64)))
        if not (mu > 0 and scaled[i, 0] >= dc_floor):
            target = 0.0
        nzc = _nz_ctx_reference(nzs, i, bx)

        def recon(mag: int, k: int) -> float:
            return mag - o[k] if mag > 0 else 0.0

        def cost_of(mags: list[int], i: int = i, a: list[float] = a, target: float = target, nzc: int = nzc) -> float:
            blk = np.array(mags, dtype=np.int64)
            bits = 0.0
            nz = sum(1 for v in mags[1:] if v)
            bits += cost[O_NZ + 16 * nzc + min(nz, 15)]
            if nz >= 15:
                bits += cost[O_NZH + ((nz - 15) >> 2)] + cost[O_NZL + ((nz - 15) & 3)]
            for k, ctx in _base_contexts_reference(out, i, bx, blk, posc):
                bits += cost[ctx + min(mags[k], 3)] + (1.0 if mags[k] else 0.0)
            if lookahead:  # the right and lower neighbours' base symbols, their rounded levels
                trial = np.array(levels, dtype=np.int64)
                trial[: i + 1] = out[: i + 1]
                trial[i] = blk
                for j in ((i + 1,) if i % bx < bx - 1 and i + 1 < len(out) else ()) + (
                    (i + bx,) if i + bx < len(out) else ()
                ):
                    for k, ctx in _base_contexts_reference(trial, j, bx, trial[j], posc):
                        bits += cost[ctx + min(abs(int(trial[j, k])), 3)]
            d = sum(w[k] * (a[k] - recon(mags[k], k)) ** 2 for k in range(1, 64))
            deficit = target - math.sqrt(sum(w[k] * recon(mags[k], k) ** 2 for k in range(1, 64)))
            return d + lam * bits + (mu * deficit * deficit if deficit > 0 else 0.0)

        mags = [abs(int(v)) for v in out[i]]
        current = cost_of(mags)
        for k in range(63, 0, -1):
            if mags[k] not in (1, 2):
                continue
            cand = mags[k] - 1
            if safe and abs(a[k] - recon(cand, k)) > 0.5 + o[k] + BOUND_EPS:
                continue
            trial = mags.copy()
            trial[k] = cand
            c = cost_of(trial)
            if c < current:
                mags, current = trial, c
        for k in range(1, 64):
            out[i, k] = -mags[k] if scaled[i, k] < 0 else mags[k]
        nzs.append(sum(1 for v in mags[1:] if v))
    return out


def enforce_bound_reference(levels: np.ndarray, rounded: np.ndarray, scaled: np.ndarray,
                            offs: np.ndarray) -> np.ndarray:  # fmt: skip
    """Twin of :func:`enforce_bound` (returns a fixed copy)."""
    out = np.array(levels, dtype=np.int32)
    mag = np.abs(out[:, 1:]).astype(np.float64)
    rec = np.where(mag > 0, mag - offs[1:], 0.0)
    bad = (np.abs(np.abs(scaled[:, 1:]) - rec) > 0.5 + offs[1:] + BOUND_EPS) & (out[:, 1:] != rounded[:, 1:])
    out[:, 1:][bad] = np.asarray(rounded)[:, 1:][bad]
    return out
