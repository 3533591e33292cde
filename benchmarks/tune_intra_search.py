#!/usr/bin/env python3
"""The 2.2 intra encoder's mode search: BD-rate and loop time of (n_coarse, n_full) settings.

Usage (from the repository root)::

    nice -n 10 python benchmarks/tune_intra_search.py 16,3 4,3 4,2 3,2 2,1   # NF=3 slices per series

Per series (bench_mdc2's three), ``NF`` evenly spaced slices (env, default 4), qualities 25-93:
the intra core (:func:`medcodec.codec._kernels_intra.encode_intra` with the 2.1 steps and centroid
offsets, no deblocking / restoration filter) for each setting ``n_coarse,n_full`` given; bytes =
mode and level segments + container and FRAM overhead, PSNR peak ``2^bits - 1``. BD-rate of every
setting against the first one, and its loop time (thread CPU, summed) as a ratio to the first's.
``16,3`` is the first encoder's search (every mode predicted in full, 3 trials).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from medcodec.codec import _kernels_intra as KI  # noqa: E402
from medcodec.codec import container, intra, levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402
from medcodec.codec.transform import DCT_MATRIX  # noqa: E402
from medcodec.codec.zigzag import ZIGZAG  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402

DATA = Path(os.environ.get("MEDCODEC_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
SERIES = (("ct_chest_lungpetctdx_A0001_philips", 12, False), ("ct_head_phantom_philips_ingenuity", 12, False),
          ("mr_head_ge_signa_t1_ctk", 16, True))  # fmt: skip
QUALITIES = (25, 45, 65, 80, 93)


def encode(x: np.ndarray, coder: FrameCoder, offs: np.ndarray, n_coarse: int, n_full: int,
           mode_same: float = KI.MODE_BITS_SAME, mode_other: float = KI.MODE_BITS_OTHER) -> tuple[int, np.ndarray, float]:
    """(bytes of a one-frame stream, reconstruction, loop seconds) of the intra core."""
    xp = intra._padded(x)
    nb, bx = xp.size // 64, xp.shape[1] // 8
    levels, modes, rec = np.empty((nb, 64), np.int32), np.empty(nb, np.int64), np.empty_like(xp)
    t = time.thread_time()
    KI.encode_intra(xp, coder.steps.astype(float).reshape(8, 8), ZIGZAG.astype(np.int64), intra._offsets(offs),
                    DCT_MATRIX, intra.lambda_for(coder), np.int64(coder.offset), np.int64(coder._lo),
                    np.int64(coder._hi), levels, modes, rec, n_coarse, n_full, float(mode_same),
                    float(mode_other))  # fmt: skip
    dt = time.thread_time() - t
    out = np.empty(nb + 1024, np.uint8)
    _, n = KI.encode_modes(modes, bx, out)
    size = 4 + n + len(intra._encode_levels(levels, bx)) + container.FIXED_BYTES + mdc2.DCT_FRAME_OVERHEAD
    return size, rec[: x.shape[0], : x.shape[1]], dt


def main() -> None:
    # n_coarse,n_full[,mode_same,mode_other]: the mode bits the RD test charges (default 1 and 4.5)
    variants = [tuple(float(v) if i >= 2 else int(v) for i, v in enumerate(a.split(","))) for a in sys.argv[1:]] or [
        (16, 3), (4, 3), (4, 2)]
    nf = int(os.environ.get("NF", 4))
    w = np.full((16, 16), 100, np.uint16)
    c = FrameCoder.for_table(quantize.quant_table(50, 12), 12, False)
    for v in variants:  # compile
        encode(w, c, None, *v)
    bds = {v: [] for v in variants}
    times = dict.fromkeys(variants, 0.0)
    for name, bits, signed in SERIES:
        files = sorted((DATA / name).glob("*.dcm"))
        frames = [pydicom.dcmread(files[i]).pixel_array for i in np.linspace(0, len(files) - 1, nf).astype(int)]
        curves = {v: [] for v in variants}
        for q in QUALITIES:
            acc = {v: [0, 0.0, 0] for v in variants}
            for f in frames:
                vr = levelshift.check_range(f[None], bits, signed)
                rb = arith_range_bits(levelshift.content_range_bits(f[None], vr[0], vr[1], bits), bits, f[None])
                coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
                x = f.astype(coder._dtype)
                sc = coder.scaled(x)
                offs = mdc2.reconstruction_offsets(mdc2.round_scaled(sc), sc)
                for v in variants:
                    size, rec, dt = encode(x, coder, offs, *v)
                    times[v] += dt
                    acc[v][0] += size
                    acc[v][1] += float(np.sum((rec.astype(float) - f) ** 2))
                    acc[v][2] += f.size
            for v in variants:
                nbytes, se, n = acc[v]
                curves[v].append((nbytes * 8 / n, 10 * np.log10(((1 << bits) - 1) ** 2 * n / se)))
        base = curves[variants[0]]
        line = name
        for v in variants:
            bd = bd_rate([a for a, _ in base], [b for _, b in base], [a for a, _ in curves[v]], [b for _, b in curves[v]])
            bds[v].append(bd)
            line += f" | {v}: {bd:+.2f} %"
        print(line, flush=True)
    print("mean BD-rate vs the first, loop time ratio: "
          + " | ".join(f"{v}: {np.mean(bds[v]):+.2f} % t={times[v] / times[variants[0]]:.2f}" for v in variants))  # fmt: skip


if __name__ == "__main__":
    main()
