#!/usr/bin/env python3
"""The two range coders of ``.mdc`` 2.x DCT levels, A/B on the same levels: format 2.0's binary
coder (``entropy="arith-binary"``) against 2.1's multi-symbol coder (``"arith-multi"``).

Usage (from the repository root)::

    nice -n 10 python benchmarks/bench_entropy_v21.py            # 3 frames per series, best of 7
    nice -n 10 python benchmarks/bench_entropy_v21.py --big      # + CR 1760x1760, DX 2128x2000

Per image set and quality: bytes of the coded levels (multi / binary, the same levels), and the
thread CPU time (``time.thread_time``) of the level coders alone and of the whole
``medcodec.encode`` / ``decode`` of a frame; A and B alternate inside each repetition (ABAB...)
and each keeps its best, so other load on the machine hits both alike. Ratios > 1: the
multi-symbol coder is faster.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec.codec import container, levelshift, mdc2, quantize  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.mdc import arith_range_bits  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
BINARY, MULTI = container.ENTROPY_ARITH, container.ENTROPY_MULTI


def series(folder: Path, n: int) -> tuple[np.ndarray, int, bool]:
    paths = sorted(folder.glob("*.dcm"))
    picks = sorted({round(i * (len(paths) - 1) / max(n - 1, 1)) for i in range(n)})
    dss = [pydicom.dcmread(paths[i]) for i in picks]
    return np.stack([d.pixel_array for d in dss]), int(dss[0].BitsStored), bool(dss[0].PixelRepresentation)


def single(path: Path) -> tuple[np.ndarray, int, bool]:
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    return (a if a.ndim == 3 else a[None]), int(ds.BitsStored), bool(ds.PixelRepresentation)


def image_sets(data: Path, frames: int, big: bool) -> dict[str, tuple[np.ndarray, int, bool]]:
    sets = {
        "chest CT 512": series(data / "ct_chest_lungpetctdx_A0001_philips", frames),
        "head CT 512": series(data / "ct_head_phantom_philips_ingenuity", frames),
        "brain MR 256": series(data / "mr_head_ge_signa_t1_ctk", frames),
        "MR 384": single(data / "singles" / "mr_384x384_12bit_unsigned.dcm"),
        "MR 64 (10 frames)": single(data / "singles" / "mr_enhanced_multiframe_10f_64x64_rle.dcm"),
    }
    try:  # pydicom-data's NEMA MR2 (1024 x 1024): a large frame, per-position contexts
        import data_store

        sets["pydicom-data MR2 1024"] = single(Path(data_store.__file__).parent / "data" / "MR2_UNCR.dcm")
    except ImportError:
        print("pydicom-data not installed: MR2 left out", file=sys.stderr)
    if big:
        sets["CR 1760"] = single(data / "singles" / "cr_RG3_1760x1760_10bit_uncompressed.dcm")
        sets["DX 2128x2000"] = single(data / "singles" / "dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm")
    return sets


def ab(fa, fb, repeat: int) -> tuple[float, float]:
    """Best thread CPU time of fa and of fb, alternating them ``repeat`` times."""
    ta = tb = float("inf")
    for _ in range(repeat):
        t = time.thread_time()
        fa()
        ta = min(ta, time.thread_time() - t)
        t = time.thread_time()
        fb()
        tb = min(tb, time.thread_time() - t)
    return ta, tb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--qualities", type=int, nargs="+", default=[30, 50, 70, 90])
    ap.add_argument("--big", action="store_true", help="add CR 1760x1760 and DX 2128x2000 (slow)")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; times: thread CPU, best of {args.repeat}")
    print("set | q | bpp | bytes multi/binary | levels enc | levels dec | encode() | decode()  (speed: binary/multi)")
    ratios, enc_r, dec_r = [], [], []
    for name, (img, bits, signed) in image_sets(args.data, args.frames, args.big).items():
        lo, hi = levelshift.check_range(img, bits, signed)
        rbits = arith_range_bits(levelshift.content_range_bits(img, lo, hi, bits), bits, img)
        for q in args.qualities:
            coder = FrameCoder.for_table(quantize.quant_table(q, rbits), bits, signed)
            nb = nm = 0
            t = np.zeros(8)
            for f in img:
                lv = np.ascontiguousarray(coder.levels(f), np.int32)
                bx = -(-f.shape[1] // 8)
                cb, cm = mdc2.encode_levels(lv, bx, BINARY), mdc2.encode_levels(lv, bx, MULTI)
                back = mdc2.decode_levels(np.frombuffer(cm, np.uint8), 0, len(cm), len(lv), bx, coder=MULTI)
                if not np.array_equal(back, lv):
                    raise SystemExit(f"{name} q{q}: multi-symbol round trip differs")
                nb, nm = nb + len(cb), nm + len(cm)
                ab_, am = np.frombuffer(cb, np.uint8), np.frombuffer(cm, np.uint8)
                t[0:2] += ab(lambda: mdc2.encode_levels(lv, bx, BINARY), lambda: mdc2.encode_levels(lv, bx, MULTI),
                             args.repeat)  # fmt: skip
                t[2:4] += ab(lambda: mdc2.decode_levels(ab_, 0, len(cb), len(lv), bx, coder=BINARY),
                             lambda: mdc2.decode_levels(am, 0, len(cm), len(lv), bx, coder=MULTI), args.repeat)  # fmt: skip
                kw = dict(bits_stored=bits, signed=signed, quality=q, jobs=1)
                t[4:6] += ab(lambda: medcodec.encode(f, entropy="arith-binary", **kw),
                             lambda: medcodec.encode(f, entropy="arith-multi", **kw), max(2, args.repeat // 2))  # fmt: skip
                sb, sm = medcodec.encode(f, entropy="arith-binary", **kw), medcodec.encode(f, entropy="arith-multi", **kw)
                t[6:8] += ab(lambda: medcodec.decode(sb, jobs=1), lambda: medcodec.decode(sm, jobs=1), args.repeat)
            bpp = nb * 8 / img.size
            ratios.append(nm / nb)
            enc_r.append(t[4] / t[5])
            dec_r.append(t[6] / t[7])
            print(f"{name} | {q} | {bpp:.2f} | {nm / nb:.4f} | {t[0] * 1e3:.2f}/{t[1] * 1e3:.2f} ms {t[0] / t[1]:.2f}x"
                  f" | {t[2] * 1e3:.2f}/{t[3] * 1e3:.2f} ms {t[2] / t[3]:.2f}x"
                  f" | {t[4] * 1e3:.1f}/{t[5] * 1e3:.1f} ms {t[4] / t[5]:.2f}x"
                  f" | {t[6] * 1e3:.2f}/{t[7] * 1e3:.2f} ms {t[6] / t[7]:.2f}x", flush=True)  # fmt: skip
    print(f"bytes multi/binary: mean {np.mean(ratios):.4f}, max {np.max(ratios):.4f}; whole encode "
          f"{min(enc_r):.2f}-{max(enc_r):.2f}x, decode {min(dec_r):.2f}-{max(dec_r):.2f}x faster")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
