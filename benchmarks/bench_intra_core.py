#!/usr/bin/env python3
"""The EXPERIMENTAL intra prediction core (:mod:`medcodec.codec.intra`) against the real 2.1 fast encoder.

Usage (from the repository root)::

    nice -n 10 python benchmarks/bench_intra_core.py            # 6 slices per series

Per series (bench_mdc2's three), six slices, qualities 25/45/65/80/93: the intra core at the 2.1
steps of each quality (``quant_table`` at the range bits 2.1 picks), WITHOUT 2.1's deblocking and
restoration filters and centroid offsets (not wired to the intra loop yet), its payload plus the
container and FRAM bytes of a one-frame 2.1 stream; against ``medcodec.encode(..., entropy="arith", intra=False)``
(2.1 fast, filters included). PSNR peak ``2^bits - 1``. BD-rate < 0: the intra core is smaller.
Times: wall time of one thread, both after a warm-up, ratio intra / 2.1 (noisy on a shared machine).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec.codec import container, intra, levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SERIES = (("ct_chest_lungpetctdx_A0001_philips", 12, False), ("ct_head_phantom_philips_ingenuity", 12, False),
          ("mr_head_ge_signa_t1_ctk", 16, True))  # fmt: skip
QUALITIES = (25, 45, 65, 80, 93)
FRAME_BYTES = container.FIXED_BYTES + mdc2.DCT_FRAME_OVERHEAD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MEDCODEC_DATA", DATA)))
    args = ap.parse_args()
    w = np.full((16, 16), 100, np.uint16)  # warm-up (numba compilation) of both
    c = FrameCoder.for_table(quantize.quant_table(50, 12), 12, False)
    intra.decode_intra_frame(intra.encode_intra_frame(w, c).payload, 16, 16, c)
    medcodec.decode(medcodec.encode(w, quality=50, bits_stored=12, signed=False, jobs=1, entropy="arith", intra=False), jobs=1)
    print("series | BD-rate intra core vs 2.1 fast | encode time x | decode time x")
    for series, bits, signed in SERIES:
        files = sorted((args.data / series).glob("*.dcm"))
        frames = [pydicom.dcmread(files[i]).pixel_array for i in np.linspace(0, len(files) - 1, args.frames).astype(int)]
        ref, test = [], []
        te = [0.0, 0.0]
        td = [0.0, 0.0]
        for q in QUALITIES:
            nb, se, n = [0, 0], [0.0, 0.0], 0
            for f in frames:
                vr = levelshift.check_range(f[None], bits, signed)
                rb = arith_range_bits(levelshift.content_range_bits(f[None], vr[0], vr[1], bits), bits, f[None])
                coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
                x = f.astype(coder._dtype)
                t = time.perf_counter()
                enc = intra.encode_intra_frame(x, coder)
                te[0] += time.perf_counter() - t
                t = time.perf_counter()
                dec = intra.decode_intra_frame(enc.payload, *f.shape, coder)
                td[0] += time.perf_counter() - t
                t = time.perf_counter()
                s = medcodec.encode(x, quality=q, bits_stored=bits, signed=signed, jobs=1, entropy="arith", intra=False)
                te[1] += time.perf_counter() - t
                t = time.perf_counter()
                r = np.asarray(medcodec.decode(s, jobs=1)).reshape(f.shape)
                td[1] += time.perf_counter() - t
                nb[0] += len(enc.payload) + FRAME_BYTES
                nb[1] += len(s)
                se[0] += float(np.sum((dec.astype(np.float64) - f) ** 2))
                se[1] += float(np.sum((r.astype(np.float64) - f) ** 2))
                n += f.size
            peak = (1 << bits) - 1
            test.append((nb[0] * 8 / n, 10 * np.log10(peak**2 * n / se[0])))
            ref.append((nb[1] * 8 / n, 10 * np.log10(peak**2 * n / se[1])))
            print(f"  {series} q{q}: 2.1 fast {ref[-1][0]:.3f} bpp {ref[-1][1]:.2f} dB | intra {test[-1][0]:.3f} bpp "
                  f"{test[-1][1]:.2f} dB")  # fmt: skip
        bd = bd_rate([a for a, _ in ref], [b for _, b in ref], [a for a, _ in test], [b for _, b in test])
        print(f"{series} | {bd:+.1f} % | {te[0] / te[1]:.2f} | {td[0] / td[1]:.2f}")


if __name__ == "__main__":
    main()
