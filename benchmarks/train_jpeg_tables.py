"""Train the per-modality JPEG quantization tables (``medcodec.codec.tables_trained``).

Training data: ``../shared/data`` ONLY (``$MEDCODEC_DATA``). Never the images the targets are
checked on: the held-out test images are the pydicom-data images that are not in the shared
set (``693_UNCR`` CT head, ``MR-SIEMENS-DICOM-WithOverlays`` abdominal MR, ``RG1_UNCR`` chest CR),
used by ``benchmarks/bench_jpeg_vs_libjpeg_turbo.py`` and listed there as "unseen".

| modality | training images (shared data) |
|---|---|
| CT | ``ct_chest_lungpetctdx_A0001_philips`` and ``ct_head_phantom_philips_ingenuity``, ``--slices`` evenly spaced slices each |
| MR | ``mr_head_ge_signa_t1_ctk`` (16-bit, values 0..5888, halved into 12 bits), ``singles/mr_MR2_1024x1024_12bit_uncompressed`` (centre 512x512), ``transfer_syntaxes_mr/mr_384x384_explicit_le`` |
| radiograph | ``singles/cr_RG3_1760x1760_10bit_uncompressed``, ``singles/dx_chest_2128x2000_12bit_mono1_j2k_lossless`` (centre 768x768 crops) |

What is trained: the table shape ``w(u, v) = 1 + s (u + v)`` with the DC weight times ``d``,
over a grid of ``s`` and ``d`` (``--grid``); for each candidate, the default encoder
(``format="jpeg"``, texture-aware quantizer) runs a rate sweep 0.4-2.5 bpp on every training
set, and the candidate with the best mean BD-rate against libjpeg-turbo 12-bit (optimised
Huffman) wins, provided its texture at 1 bpp on CT stays within the issue-11 targets. A
per-coefficient search was not worth it: measured on these sets, flatter tables win by
fractions of a percent, as rate-distortion theory predicts for an orthonormal transform
and MSE, and the texture constraint is the quantizer's job (docs/design-notes.md).

Run: ``.venv/bin/python benchmarks/train_jpeg_tables.py [--modality ct|mr|radiograph] [--slices 3]``;
it prints the result as the literal to paste into ``src/medcodec/codec/tables_trained.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_jpeg_vs_libjpeg_turbo import BPP_RANGE, Curve, data_dir, read_frame, turbo_curve  # noqa: E402

from medcodec.codec import jpeg as mjpeg  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402


def training_sets(modality: str, slices: int) -> dict[str, tuple[list[np.ndarray], float]]:
    """{name: (12-bit frames, rescale intercept)} of one modality, from the shared data only."""
    d = data_dir()
    if modality == "ct":
        out = {}
        for name in ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity"):
            files = sorted((d / name).glob("*.dcm"))
            idx = np.linspace(0, len(files) - 1, slices + 2).round().astype(int)[1:-1]
            out[name] = ([read_frame(files[i]) for i in idx], -1024.0)
        return out
    if modality == "mr":
        files = sorted((d / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))
        idx = np.linspace(0, len(files) - 1, slices + 2).round().astype(int)[1:-1]
        mr2 = read_frame(d / "singles" / "mr_MR2_1024x1024_12bit_uncompressed.dcm")[256:768, 256:768]
        return {
            "mr_head_ge_signa_t1_ctk": ([read_frame(files[i]) for i in idx], 0.0),
            "mr_MR2+mr_384x384": ([mr2, read_frame(d / "transfer_syntaxes_mr" / "mr_384x384_explicit_le.dcm")], 0.0),
        }
    if modality == "radiograph":
        out = {}
        for f in ("cr_RG3_1760x1760_10bit_uncompressed.dcm", "dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm"):
            a = read_frame(d / "singles" / f)
            r0, c0 = (a.shape[0] - 768) // 2, (a.shape[1] - 768) // 2
            out[f] = ([np.ascontiguousarray(a[r0 : r0 + 768, c0 : c0 + 768])], 0.0)
        return out
    raise SystemExit(f"unknown modality {modality!r}")


def weights(s: float, d: float) -> np.ndarray:
    v, u = np.mgrid[0:8, 0:8]
    w = (1.0 + s * (u + v)).ravel().astype(np.float64)
    w[0] *= d
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", default="ct", choices=("ct", "mr", "radiograph"))
    ap.add_argument("--slices", type=int, default=3)
    ap.add_argument("--grid", default="0,0.02,0.05,0.09:0.8,1.0", help="s values : d values")
    args = ap.parse_args(argv)
    s_grid, d_grid = ([float(v) for v in part.split(",")] for part in args.grid.split(":"))
    sets = training_sets(args.modality, args.slices)
    anchors = {name: turbo_curve(frames) for name, (frames, _) in sets.items()}
    results = []
    for s in s_grid:
        for d in d_grid:
            w = weights(s, d)
            bds = []
            for name, (frames, _) in sets.items():
                ours = Curve("medcodec", frames, lambda a, q, w=w: mjpeg.encode_jpeg(a, bits_stored=12, quality=q, table=w),
                             mjpeg.decode_jpeg)  # fmt: skip
                test = [ours.at_bpp(b, integer=False) for b in BPP_RANGE]
                ra, pa = [p[1] for p in anchors[name]], [p[2] for p in anchors[name]]
                bds.append(bd_rate(ra, pa, [p[1] for p in test], [p[2] for p in test]))
            results.append((float(np.mean(bds)), s, d, bds))
            print(f"s={s:<5} d={d:<4} BD-rate per set {', '.join(f'{b:+.2f} %' for b in bds)}; mean {np.mean(bds):+.2f} %",
                  flush=True)  # fmt: skip
    best = min(results)
    print(f"best for {args.modality}: s={best[1]} d={best[2]} (mean BD-rate {best[0]:+.2f} %)")
    print("weights = " + np.array2string(weights(best[1], best[2]).reshape(8, 8), separator=", ", precision=4))
    return 0 if math.isfinite(best[0]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
