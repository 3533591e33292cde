#!/usr/bin/env python3
"""Issue 12: would adaptive quantization per block (a signalled step scale per 16x16 macroblock)
pay for the ``.mdc`` default? Measurement only, no format change.

Usage (from the repository root; a few minutes per series on a shared 2-core machine)::

    nice -n 10 .venv/bin/python benchmarks/explore_adaptive_quant.py                # shared series
    nice -n 10 .venv/bin/python benchmarks/explore_adaptive_quant.py --only-unseen  # pydicom-data's unseen CT / MR

The closed-loop intra coder of ``explore_large_transforms.py`` (the default's intra frames
captured without 16x16 blocks, i.e. format 2.5, its 8x8 modes held fixed, each 8x8 block the DCT or its mode's DST-VII pair with the RD
level search; the decoder's predictor on its own reconstruction) re-codes every frame in 16x16
macroblocks (Z order inside each). Per macroblock the encoder tries each step scale of a set (the
frame's table times ``s``), codes the four 8x8 blocks with it and keeps the scale of least
``J = SSE + lambda x bits`` (the mode decision's lambda and static bit estimate), as an encoder
of such a format would. Rate: the default stream's bytes with its levels and mode segment
replaced by the loop's (the real 2.1 level coder, the real 2.5 mode coder), plus the ideal
adaptive cost (KT counts, one context per left / above neighbour's choice) of the scales.
Distortion: the loop's reconstruction before the restoration filter. BD-rate (cubic, 0.2-3.5
bpp) of each scale set against the same loop with the scale 1 only (the anchor: identical but
for the choice).

Why it could pay: the RD level search and the mode decision already spend bits by ``lambda``
inside a block; what they cannot do is make the step itself finer where a block's error costs
more than its bits (edges next to smooth tissue) and coarser in noise. Classical theory says
uniform steps are near-optimal for MSE at high rate; this measures what is left at our rates.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
from pathlib import Path

import numba
import numpy as np

import medcodec
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import intra
from medcodec.evaluate.bjontegaard import bd_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mdc2 as B  # noqa: E402
import explore_large_transforms as E  # noqa: E402  (captures the default's intra frames when imported)

intra.BIG_EFFORTS = ()  # the loop is format 2.5's (8x8 blocks only): the capture needs 2.5 frames

#: name -> step scales tried per macroblock (the first is the anchor's only scale)
SETS = {
    "anchor (scale 1)": (1.0,),
    "AQ3 x2^(+-1/4)": (1.0, 2 ** -0.25, 2**0.25),
    "AQ3 x2^(+-1/2)": (1.0, 2 ** -0.5, 2**0.5),
    "AQ5 x2^(+-1/4, +-1/2)": (1.0, 2 ** -0.25, 2**0.25, 2 ** -0.5, 2**0.5),
}


@numba.njit(cache=False)
def closed_loop_aq(x, stepz0, wz0, zz, offsets, offs_f, mid, lo, hi, modes, scales, lam, levels, recon, info, cost,
                   lam_rd, mu, rho, tex_sum, mode_bits, skip, choice):  # fmt: skip
    """The frame in 16x16 macroblocks (8x8 blocks in Z order), each coded at the scale of least J."""
    rows, cols = x.shape
    bx = cols // 8
    nb = (rows // 8) * bx
    nzs = np.zeros(nb, np.int64)
    done = np.zeros(nb, np.bool_)
    posc = KM.POS_FINE if nb >= KM.FINE_POSITION_BLOCKS else KM.POS_BAND
    s0 = (np.empty((16, 16), np.int64), np.empty((4, 64), np.int32), np.empty(4, np.int64), np.empty(4, np.bool_),
          np.empty((4, 2), np.int64))  # fmt: skip
    sb = (np.empty((16, 16), np.int64), np.empty((4, 64), np.int32), np.empty(4, np.int64), np.empty(4, np.bool_),
          np.empty((4, 2), np.int64))  # fmt: skip
    stepz = np.empty(64)
    wz = np.empty(64)
    mbx = (cols + 15) // 16
    for r0 in range(0, rows, 16):
        for c0 in range(0, cols, 16):
            n = 16 if (r0 + 16 <= rows and c0 + 16 <= cols) else 8  # an edge macroblock: its first block only
            E._save(recon, levels, nzs, done, info, bx, r0, c0, n, s0[0], s0[1], s0[2], s0[3], s0[4], False)
            best_j = 1e300
            best = 0
            for si in range(scales.size):
                if si > 0:
                    E._save(recon, levels, nzs, done, info, bx, r0, c0, n, s0[0], s0[1], s0[2], s0[3], s0[4], True)
                for k in range(64):
                    stepz[k] = stepz0[k] * scales[si]
                    wz[k] = wz0[k] * scales[si] * scales[si]
                j = 0.0
                for q in range(4):
                    rr0 = r0 + 8 * (q // 2)
                    cc0 = c0 + 8 * (q % 2)
                    if rr0 < rows and cc0 < cols:
                        b = (rr0 // 8) * bx + cc0 // 8
                        j += E.code8(x, recon, levels, nzs, done, info, b, bx, rr0, cc0, modes[b], stepz, zz, offsets,
                                     offs_f, wz, mid, lo, hi, lam, cost, lam_rd, mu, rho, tex_sum, posc, mode_bits,
                                     skip)  # fmt: skip
                if j < best_j:
                    best_j = j
                    best = si
                    E._save(recon, levels, nzs, done, info, bx, r0, c0, n, sb[0], sb[1], sb[2], sb[3], sb[4], False)
            E._save(recon, levels, nzs, done, info, bx, r0, c0, n, sb[0], sb[1], sb[2], sb[3], sb[4], True)
            choice[(r0 // 16) * mbx + c0 // 16] = best


def scale_bits(choice: np.ndarray, mbx: int, nsym: int) -> float:
    """Ideal adaptive cost of the macroblocks' scale indices, context = whether the left and the
    above neighbours chose scale 1 (0, 1 or 2 of them did)."""
    c = choice.reshape(-1, mbx)
    left = np.zeros_like(c)
    left[:, 1:] = c[:, :-1]
    above = np.zeros_like(c)
    above[1:, :] = c[:-1, :]
    ctx = (left != 0).astype(np.int64) + (above != 0).astype(np.int64)
    return E.kt_bits(c.ravel(), ctx.ravel(), nsym, 3)


def frame_points(frame, coder, offsets, modes, nbytes_default, lev_default, mode_seg, skip) -> dict:
    x, bx, nb, steps, offs, lam, rd, modes, mode_bits = E.loop_setup(frame, coder, offsets, modes, mode_seg, skip)
    cost, lam_rd, mu, rho, tex_sum = rd
    rows, cols = frame.shape
    stepz = np.array([steps[E.ZZ[k] // 8, E.ZZ[k] % 8] for k in range(64)])
    wz = stepz * stepz
    offs_f = offs * 0.00390625
    mbx = (x.shape[1] + 15) // 16
    out = {}
    for name, scales in SETS.items():
        levels = np.zeros((nb, 64), np.int32)
        recon = np.empty_like(x)
        info = np.zeros((nb, 2), np.int64)
        choice = np.zeros(((x.shape[0] + 15) // 16) * mbx, np.int64)
        closed_loop_aq(x, stepz, wz, E.ZZ, offs, offs_f, np.int64(coder.offset), np.int64(coder._lo),
                       np.int64(coder._hi), modes, np.asarray(scales, np.float64), lam, levels, recon, info, cost,
                       lam_rd, mu, rho, tex_sum, mode_bits, skip.astype(np.uint8), choice)  # fmt: skip
        sse = float(((recon[:rows, :cols] - frame.astype(np.int64)) ** 2).sum())
        side = E.mode_segment(modes, skip, info, levels, bx)
        if len(scales) > 1:
            side += scale_bits(choice, mbx, len(scales)) / 8
        rate = nbytes_default - lev_default - mode_seg + len(E._orig_lv(levels, bx)) + side
        out[name] = (rate, sse, np.bincount(choice, minlength=len(scales)) / choice.size)
    return out


def run(name: str, frames: np.ndarray, bits: int, signed: bool) -> dict:
    peak = 2.0**bits - 1
    curves: dict = {}
    for q in E.QUALS:
        acc: dict = {}
        for f in frames:
            E.CAP.clear()
            buf = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
            fr, coder, offsets, modes, lev, mseg, skip = E.CAP[0]
            for k, (nbt, sse, share) in frame_points(fr, coder, offsets, modes, len(buf), lev, mseg, skip).items():
                a = acc.setdefault(k, [0.0, 0.0, 0.0])
                a[0], a[1] = a[0] + nbt, a[1] + sse
                a[2] = a[2] + share / len(frames)
        npx = frames.size
        for k, (nbt, sse, share) in acc.items():
            curves.setdefault(k, []).append((nbt * 8 / npx, 10 * np.log10(peak**2 / (sse / npx)) if sse else np.inf))
        base = curves["anchor (scale 1)"][-1]
        print(f"  q{q}: anchor {base[0]:.3f} bpp {base[1]:.2f} dB; "
              + "; ".join(f"{k} {curves[k][-1][0] - base[0]:+.4f} bpp {curves[k][-1][1] - base[1]:+.3f} dB "
                          f"(scale shares {np.round(acc[k][2], 2).tolist()})"
                          for k in curves if k != "anchor (scale 1)"), flush=True)  # fmt: skip
    anchor = [(b, p) for b, p in curves["anchor (scale 1)"] if 0.2 <= b <= 3.5 and np.isfinite(p)]
    res = {}
    for k, c in curves.items():
        sel = [(b, p) for b, p in c if 0.2 <= b <= 3.5 and np.isfinite(p)]
        if k != "anchor (scale 1)" and len(anchor) >= 4 and len(sel) >= 4:
            res[k] = bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in sel], [p for _, p in sel])
    print(f"{name}: BD-rate vs the anchor (closed loop, 0.2-3.5 bpp): "
          + "; ".join(f"{k}: {v:+.2f} %" for k, v in res.items()), flush=True)  # fmt: skip
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=B.DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--only-unseen", action="store_true", help="pydicom-data's unseen CT and MR (run it once)")
    args = ap.parse_args(argv)
    if args.only_unseen:
        from pydicom.data import get_testdata_file

        items = [(nm, Path(get_testdata_file(nm))) for nm in ("MR-SIEMENS-DICOM-WithOverlays.dcm",
                                                               "J2K_pixelrep_mismatch.dcm", "693_UNCR.dcm")]  # fmt: skip
    else:
        items = [(s, args.data / s) for s in B.SERIES]
    results = {}
    for nm, path in items:
        frames, bits, signed = E.load_any(path, args.frames)
        frames = frames[np.linspace(0, len(frames) - 1, min(args.frames, len(frames))).round().astype(int)]
        print(f"{nm} {frames.shape} {bits}-bit", flush=True)
        results[nm] = run(nm, frames, bits, signed)
    for k in SETS:
        vals = [r[k] for r in results.values() if k in r]
        if vals:
            print(f"mean {k}: {np.mean(vals):+.2f} % ({', '.join(f'{v:+.2f}' for v in vals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
