#!/usr/bin/env python3
"""Intra mode models compared on real slices: the adaptive coding cost of the default encoder's modes.

Usage (from the repository root)::

    nice -n 10 python benchmarks/explore_mode_model.py      # NF=3 slices per series (env)

Per series (bench_mdc2's three), ``NF`` evenly spaced slices, qualities 25-80 (~0.2-1.5 bpp): the
2.2 intra core (effort fast) gives modes, levels and the reconstruction; every model below is
charged the ideal cost (``-log2 p``) of the same modes under the multi-symbol coder's adaptation
(:func:`._kernels_ms._adapt`, floor 4, rate 1/2 .. 1/2**cap), beside the bytes of the levels
segment. Models (context of the 16-ary mode symbol):

- ``left``: 2.2's (the left neighbour's mode; first column: the one above).
- ``left+above``: 256 contexts (left, above).
- ``left+aclass``: left x the above mode's class (DC/SMOOTH, paeth, vertical-ish, horizontal-ish).
- ``left+same``: left x (above == left).
- ``*_flat``: blocks whose references (top[0:16], left[0:8], corner) are all equal code no mode
  (every mode predicts the same block); their implied mode is the context's.
- ``rate5``: the contexts adapt at most at 1/32 (cap 5) instead of 1/128.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from medcodec.codec import _kernels_intra as KI  # noqa: E402
from medcodec.codec import intra, levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402
from medcodec.codec.transform import DCT_MATRIX  # noqa: E402
from medcodec.codec.zigzag import ZIGZAG  # noqa: E402

DATA = Path(os.environ.get("MEDCODEC_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
SERIES = (("ct_chest_lungpetctdx_A0001_philips", 12, False), ("ct_head_phantom_philips_ingenuity", 12, False),
          ("mr_head_ge_signa_t1_ctk", 16, True))  # fmt: skip
QUALITIES = (25, 45, 65, 80)
#: Mode class: 0 DC/SMOOTH, 1 paeth, 2 vertical-ish (from above), 3 horizontal-ish (from the left).
CLASS = np.array([0, 0, 1] + [2 if f == 1 else 3 for f, _ in KI.ANGULAR], dtype=np.int64)


@numba.njit(cache=True)
def cost(sym, ctx, nctx, cap, same=0):
    """Ideal bits of 16-ary symbols under adaptive CDFs (the 2.1 coder's rule); sym < 0: not coded.
    ``same`` > 0: context k's row starts with frequency ``same`` / 32768 on mode k % 16, the rest uniform."""
    c = np.zeros((nctx, 17), np.int64)
    cnt = np.zeros(nctx, np.int64)
    for k in range(nctx):
        for i in range(17):
            c[k, i] = i * 32768 // 16
        if same > 0:
            m = k % 16
            f = (32768 - same) // 15
            for i in range(17):
                c[k, i] = i * f + (same - f if i > m else 0)
            c[k, 16] = 32768
    bits = 0.0
    for b in range(sym.size):
        s = sym[b]
        if s < 0:
            continue
        k = ctx[b]
        bits += np.log2(32768.0 / (c[k, s + 1] - c[k, s]))
        rate = min(cap, int(np.log2(cnt[k] + 1)) + 1)
        for i in range(1, 16):
            t = i * 4 + ((32768 - 64) if i > s else 0)
            c[k, i] += (t - c[k, i]) >> rate
        if cnt[k] < 127:
            cnt[k] += 1
    return bits


def flat_blocks(rec: np.ndarray) -> np.ndarray:
    """Per block: are all its references (as the decoder builds them) equal?"""
    rows, cols = rec.shape
    bx = cols // 8
    out = np.zeros(rows * cols // 64, bool)
    for by in range(rows // 8):
        for bxi in range(bx):
            r0, c0 = by * 8, bxi * 8
            if r0 == 0 and c0 == 0:
                out[0] = True
                continue
            v = []
            if r0 > 0:
                v.append(rec[r0 - 1, c0 : min(c0 + 16, cols)])
            if c0 > 0:
                v.append(rec[r0 : r0 + 8, c0 - 1])
            if r0 > 0 and c0 > 0:
                v.append(rec[r0 - 1, c0 - 1 : c0])
            a = np.concatenate(v)
            out[by * bx + bxi] = a.min() == a.max()
    return out


def models(modes: np.ndarray, bx: int, flat: np.ndarray) -> dict[str, float]:
    nb = modes.size
    b = np.arange(nb)
    left = np.where(b % bx > 0, modes[b - 1], np.where(b >= bx, modes[b - bx], 0))
    above = np.where(b >= bx, modes[np.maximum(b - bx, 0)], left)
    ctxs = {
        "left": (left, 16),
        "left+above": (above * 16 + left, 256),
        "left+aclass": (CLASS[above] * 16 + left, 64),
        "left+same": ((above == left) * 16 + left, 32),
    }
    out = {}
    for name, (ctx, n) in ctxs.items():
        out[name] = cost(modes, ctx, n, 7)
        out[name + "_rate5"] = cost(modes, ctx, n, 5)
        out[name + "_flat"] = cost(np.where(flat, -1, modes), ctx, n, 7)
        if name == "left":
            for same in (8192, 16384, 24576):
                out[f"left_flat_init{same}"] = cost(np.where(flat, -1, modes), ctx, n, 7, same)
    return out


def main() -> None:
    nf = int(os.environ.get("NF", 3))
    for name, bits, signed in SERIES:
        files = sorted((DATA / name).glob("*.dcm"))
        frames = [pydicom.dcmread(files[i]).pixel_array for i in np.linspace(0, len(files) - 1, nf).astype(int)]
        for q in QUALITIES:
            tot: dict[str, float] = {}
            lv_bytes = n_px = nflat = nblk = 0
            for f in frames:
                vr = levelshift.check_range(f[None], bits, signed)
                rb = arith_range_bits(levelshift.content_range_bits(f[None], vr[0], vr[1], bits), bits, f[None])
                coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
                x = f.astype(coder._dtype)
                sc = coder.scaled(x)
                offs = mdc2.reconstruction_offsets(mdc2.round_scaled(sc), sc)
                xp = intra._padded(x)
                nb, bx = xp.size // 64, xp.shape[1] // 8
                levels, modes, rec = np.empty((nb, 64), np.int32), np.empty(nb, np.int64), np.empty_like(xp)
                KI.encode_intra(xp, coder.steps.astype(float).reshape(8, 8), ZIGZAG.astype(np.int64),
                                intra._offsets(offs), DCT_MATRIX, intra.lambda_for(coder), np.int64(coder.offset),
                                np.int64(coder._lo), np.int64(coder._hi), levels, modes, rec)  # fmt: skip
                lv_bytes += len(intra._encode_levels(levels, bx))
                n_px += f.size
                flat = flat_blocks(rec)
                nflat += int(flat.sum())
                nblk += nb
                for k, v in models(modes, bx, flat).items():
                    tot[k] = tot.get(k, 0.0) + v
            base = tot["left"]
            total = base / 8 + lv_bytes
            print(f"{name[:12]} q{q}: {total * 8 / n_px:.3f} bpp, modes {base / 8 / total * 100:.1f} %, "
                  f"flat refs {nflat / nblk * 100:.0f} % of blocks | "
                  + " ".join(f"{k} {(v - base) / 8 / total * 100:+.2f}" for k, v in tot.items() if k != "left"),
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
