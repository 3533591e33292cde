#!/usr/bin/env python3
"""Intra mode model 2 (format 2.4) against mode model 1 (2.2): BD-rate, mode-bit share, time.

Usage (from the repository root)::

    nice -n 10 python benchmarks/bench_mode_model.py          # NF=5 slices per series (env)

Per series (bench_mdc2's three), ``NF`` evenly spaced slices, qualities 25-93: the intra core
(:func:`medcodec.codec.intra.encode_intra_frame`, effort fast, 2.1's steps and centroid
offsets, no deblocking / restoration filter) with each mode model; bytes = the intra payload +
container and FRAM overhead, PSNR peak ``2^bits - 1``. Prints per quality the bpp, PSNR and the
share of the mode segment in the payload, per series the BD-rate of model 2 against model 1,
and the encode and decode time (thread CPU, summed; compiled first) of model 2 over model 1.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from medcodec.codec import container, intra, levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402

DATA = Path(os.environ.get("MEDCODEC_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
SERIES = (("ct_chest_lungpetctdx_A0001_philips", 12, False), ("ct_head_phantom_philips_ingenuity", 12, False),
          ("mr_head_ge_signa_t1_ctk", 16, True))  # fmt: skip
QUALITIES = (25, 45, 65, 80, 93)
MODELS = (1, 2)


def main() -> None:
    nf = int(os.environ.get("NF", 5))
    warm = FrameCoder.for_table(quantize.quant_table(50, 12), 12, False)
    for m in MODELS:  # compile
        w = intra.encode_intra_frame(np.full((16, 16), 100, np.uint16), warm, mode_model=m)
        intra.decode_intra_frame(w.payload, 16, 16, warm, mode_model=m)
    bds, t_enc, t_dec = [], dict.fromkeys(MODELS, 0.0), dict.fromkeys(MODELS, 0.0)
    for name, bits, signed in SERIES:
        files = sorted((DATA / name).glob("*.dcm"))
        frames = [pydicom.dcmread(files[i]).pixel_array for i in np.linspace(0, len(files) - 1, nf).astype(int)]
        curves: dict[int, list[tuple[float, float]]] = {m: [] for m in MODELS}
        for q in QUALITIES:
            acc = {m: [0, 0.0, 0, 0] for m in MODELS}
            for f in frames:
                vr = levelshift.check_range(f[None], bits, signed)
                rb = arith_range_bits(levelshift.content_range_bits(f[None], vr[0], vr[1], bits), bits, f[None])
                coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
                x = f.astype(coder._dtype)
                sc = coder.scaled(x)
                offs = mdc2.reconstruction_offsets(mdc2.round_scaled(sc), sc)
                for m in MODELS:
                    t = time.thread_time()
                    fr = intra.encode_intra_frame(x, coder, offs, "fast", mode_model=m)
                    t_enc[m] += time.thread_time() - t
                    t = time.thread_time()
                    dec = intra.decode_intra_frame(fr.payload, *x.shape, coder, offs, mode_model=m)
                    t_dec[m] += time.thread_time() - t
                    assert np.array_equal(dec, fr.recon)
                    acc[m][0] += len(fr.payload) + container.FIXED_BYTES + mdc2.DCT_FRAME_OVERHEAD
                    acc[m][1] += float(np.sum((fr.recon.astype(np.float64) - f) ** 2))
                    acc[m][2] += f.size
                    acc[m][3] += int.from_bytes(fr.payload[:4], "little")
            line = f"{name[:14]} q{q}:"
            for m in MODELS:
                nbytes, se, n, nmode = acc[m]
                curves[m].append((nbytes * 8 / n, 10 * np.log10(((1 << bits) - 1) ** 2 * n / se)))
                line += f" | model {m}: {curves[m][-1][0]:.3f} bpp {curves[m][-1][1]:.2f} dB, modes {nmode / nbytes:.1%}"
            print(line, flush=True)
        a, b = curves[1], curves[2]
        bd = bd_rate([r for r, _ in a], [p for _, p in a], [r for r, _ in b], [p for _, p in b])
        bds.append(bd)
        print(f"{name}: model 2 vs model 1 BD-rate {bd:+.2f} %", flush=True)
    print(f"mean BD-rate {np.mean(bds):+.2f} % | time model 2 / model 1: encode {t_enc[2] / t_enc[1]:.2f}, "
          f"decode {t_dec[2] / t_dec[1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
