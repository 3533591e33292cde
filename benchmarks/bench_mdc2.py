#!/usr/bin/env python3
""".mdc v2 DCT streams (``entropy="arith"``: 2.1, multi-symbol coder; ``"arith-binary"``: 2.0) against v1
(Huffman), OpenJPEG, libjpeg-turbo and AVIF.

Usage (from the repository root)::

    python benchmarks/bench_mdc2.py                    # ../shared/data, 6 frames per series
    python benchmarks/bench_mdc2.py --frames 8 --avif  # AVIF (libaom, speed 6) too: slow

Per series (chest CT, head CT, brain MR of the shared data, evenly spaced frames), every codec
sweeps its knob; a point is (bpp over all frames, PSNR from the MSE over all frames, peak
``2**bits_stored - 1``). BD-rate (cubic, VCEG-M33) against OpenJPEG uses the points between 0.2
and 3.5 bpp, so the PSNR interval covers ~0.25-3 bpp. Speed at the quality nearest 1 bpp: one
frame at a time on the calling thread, ``time.thread_time`` (CPU time of that thread, robust to
other load), best of ``--repeat``, as a ratio to libjpeg-turbo 12-bit (> 1: faster) at its own
~1 bpp point.
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
from medcodec import external  # noqa: E402
from medcodec.codec import intra as intra_mod  # noqa: E402
from medcodec.codec import mdc as mdc_mod  # noqa: E402
from medcodec.evaluate.bjontegaard import bd_rate  # noqa: E402
from medcodec.spec import PixelSpec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")
QUALITIES = (15, 25, 35, 45, 55, 65, 72, 80, 87, 93, 97, 100)  # 97, 100: the head CT reaches ~3 bpp
J2K_PSNR = ()  # set per series from medcodec's PSNR range
JPEG_Q = (30, 50, 65, 75, 82, 88, 92, 95, 97)
AVIF_Q = (20, 35, 50, 60, 70, 78, 85, 90, 94, 97)


def load(folder: Path, n: int) -> tuple[np.ndarray, int, bool]:
    paths = sorted(folder.glob("*.dcm"))
    picks = sorted({round(i * (len(paths) - 1) / max(n - 1, 1)) for i in range(n)})
    dss = [pydicom.dcmread(paths[i]) for i in picks]
    return np.stack([d.pixel_array for d in dss]), int(dss[0].BitsStored), bool(dss[0].PixelRepresentation)


def _thread_best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return best


def codecs(bits: int, signed: bool, avif: bool) -> dict:
    spec = PixelSpec(bits_stored=bits, signed=signed)

    def mdc(rdoq_fast=False, mode_model=None, intra_rd=False, rd_price=None, intra_attrs=None, **kw):
        def enc(f, q):
            if intra_attrs:  # intra encoder switches (e.g. RD_MODE_EFFORTS, RD_EDGE_WEIGHT) for this row
                saved_attrs = {k: getattr(intra_mod, k) for k in intra_attrs}
                for k, v in intra_attrs.items():
                    setattr(intra_mod, k, v)
                try:
                    return mdc(mode_model=mode_model, intra_rd=intra_rd, rd_price=rd_price, **kw)[0](f, q)
                finally:
                    for k, v in saved_attrs.items():
                        setattr(intra_mod, k, v)
            if rd_price is not None:  # what prices the intra RD levels (intra.RD_PRICE)
                saved_price, intra_mod.RD_PRICE = intra_mod.RD_PRICE, {"fast": rd_price, "best": rd_price}
                try:
                    return mdc(mode_model=mode_model, intra_rd=intra_rd, **kw)[0](f, q)
                finally:
                    intra_mod.RD_PRICE = saved_price
            if intra_rd is not False:  # intra RD levels (mdc.INTRA_RDOQ_EFFORTS) at every effort (None: none)
                saved, mdc_mod.INTRA_RDOQ_EFFORTS = mdc_mod.INTRA_RDOQ_EFFORTS, ("fast", "best") if intra_rd else ()
                try:
                    return medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, **kw)
                finally:
                    mdc_mod.INTRA_RDOQ_EFFORTS = saved
            if mode_model is not None:  # intra frames with this mode model (1: format 2.2's)
                with intra_mod.written_mode_model(mode_model):
                    return medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, **kw)
            if rdoq_fast:  # what the RD search would cost/gain as part of the default effort
                saved, mdc_mod.RDOQ_EFFORTS = mdc_mod.RDOQ_EFFORTS, ("fast", "best")
                try:
                    return medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, **kw)
                finally:
                    mdc_mod.RDOQ_EFFORTS = saved
            return medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, **kw)

        return enc, lambda b: medcodec.decode(b, jobs=1), QUALITIES

    def j2k_enc(f, p):
        return external.jpeg2k_encode(external.to_unsigned(f, spec)[0], bits_stored=bits, psnr_db=p)

    def unsigned_dec(fn):
        return lambda b: external.from_unsigned(fn(b), spec, external.unsigned_offset(spec))

    out = {
        "mdc v1 huffman fast": mdc(entropy="huffman"),
        "mdc v2.1 arith fast": mdc(entropy="arith", intra=False, compact=False),  # the multi-symbol coder (format 2.1)
        "mdc v2.0 arith-binary fast": mdc(entropy="arith-binary"),  # the binary coder (2.0): same levels
        "mdc v2.1 arith best": mdc(entropy="arith", intra=False, effort="best", compact=False),  # RD levels priced with the coder
        "mdc v2.1 fast + rdoq": mdc(rdoq_fast=True, entropy="arith", intra=False, compact=False),  # fast with the RD levels
        # the .mdc default: intra frames with mode model 2 in the compact layout, their residual levels
        # RD-searched in the loop (mdc.INTRA_RDOQ_EFFORTS) and priced by the frame's plain DCT levels;
        # since big26 format 2.6: 16x16 DC-predicted blocks (intra.BIG_EFFORTS, docs/format.md §19); since
        # 2026-12-04 format 2.11: 2.6's levels under within-block contexts (intra.WITHIN_EFFORTS, §21),
        # and since the same day's twenty-first session 2.12: those contexts from trained starts
        # (intra.TRAINED_EFFORTS, §22)
        "mdc v2.12 default": mdc(),
        "mdc v2.11 default": mdc(intra_attrs={"TRAINED_EFFORTS": ()}),  # the default of 2026-12-04 before 2.12
        "mdc v2.6 default": mdc(intra_attrs={"WITHIN_EFFORTS": ()}),  # the default from big26 to 2026-12-04
        # the default from tx25 to big26: with format 2.5's transform choice (docs/format.md §18)
        "mdc v2.5 default": mdc(intra_attrs={"BIG_EFFORTS": ()}),
        # the default before joint26 (the DST pair tried for the RD winner only, 2 DCT-coded candidates)
        "mdc v2.5 default before joint26": mdc(intra_attrs={"TX_JOINT": {"fast": 0, "best": 0}, "BIG_EFFORTS": (),
                                                            "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}),
        "mdc v2.5 fast, joint tx, rd mode n_full 2": mdc(intra_attrs={"RD_MODE_SEARCH": {"fast": None, "best": (16, 6)},
                                                                      "BIG_EFFORTS": ()}),
        "mdc v2.4 default": mdc(intra_attrs={"TX_EFFORTS": ("best",),  # the default before tx25 (2.4)
                                             "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}),
        "mdc v2.4 fast, rounded residuals": mdc(intra_rd=None),  # the default before the intra RD levels
        "mdc v2.2 intra fast (long)": mdc(compact=False, mode_model=1),  # the default at 2026-11-30's start (2.2)
        "mdc v2.4 default, long layout": mdc(compact=False, intra_attrs={"TX_EFFORTS": ("best",),  # 2.4, long layout
                                                                         "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}),
        # the wider mode search, intra RD levels priced by an intra pass; since tx25 with format 2.5's
        # per-block transform choice (intra.TX_EFFORTS, docs/format.md §18)
        # since big26 with format 2.6's 16x16 blocks
        # since 2026-12-04 with 2.11's level contexts
        "mdc v2.12 best": mdc(effort="best"),
        "mdc v2.6 best": mdc(effort="best", intra_attrs={"WITHIN_EFFORTS": ()}),
        # best from joint26 (the joint mode / transform decision) to big26
        "mdc v2.5 best": mdc(effort="best", intra_attrs={"BIG_EFFORTS": ()}),
        "mdc v2.5 best before joint26": mdc(effort="best", intra_attrs={"TX_JOINT": {"fast": 0, "best": 0},
                                                                        "BIG_EFFORTS": ()}),
        "mdc v2.5 fast, rd mode n_full 3": mdc(intra_attrs={"TX_JOINT": {"fast": 0, "best": 0},  # no joint decision
                                                            "BIG_EFFORTS": ()}),
        "mdc v2.4 best, no tx choice": mdc(effort="best", intra_attrs={"TX_EFFORTS": ()}),  # best before tx25
        "mdc v2.4 fast, intra rd intra-priced": mdc(intra_rd=True, rd_price="intra", intra_attrs={
            "TX_EFFORTS": (), "RD_MODE_SEARCH": {"fast": None, "best": (16, 6)}}),  # one more intra pass
        "mdc v2.4 best, no intra rd": mdc(effort="best", intra_rd=None),  # best as it was before rdoqintra
        # without the mode decision that sees the RD levels (intra.RD_MODE_EFFORTS, on for both since rdmode):
        # the default and best as they were before
        "mdc v2.4 fast, no rd mode decision": mdc(intra_attrs={"RD_MODE_EFFORTS": (), "TX_EFFORTS": ()}),
        "mdc v2.4 best, no rd mode decision": mdc(effort="best", intra_attrs={"RD_MODE_EFFORTS": (), "TX_EFFORTS": ()}),
        "mdc v2.4 fast, rd mode n_full 3": mdc(intra_attrs={"RD_MODE_SEARCH": {"fast": (4, 3), "best": None}, "TX_EFFORTS": ()}),
        "mdc v2.4 best, rd mode n_full 4": mdc(effort="best",  # best before its wider search (RD_MODE_SEARCH)
                                               intra_attrs={"RD_MODE_SEARCH": {"fast": None, "best": None},
                                                            "TX_EFFORTS": ()}),
        "jpeg2000 (OpenJPEG)": (j2k_enc, unsigned_dec(external.jpeg2k_decode), J2K_PSNR),
    }
    if bits <= 12:
        out["jpeg12 (libjpeg-turbo)"] = (
            lambda f, q: external.jpeg8_encode(external.to_unsigned(f, spec)[0], bits_stored=bits, quality=q),
            unsigned_dec(external.jpeg8_decode), JPEG_Q,
        )  # fmt: skip
    if avif and bits <= 12:
        import imagecodecs

        def avif_enc(f, q):
            u = external.to_unsigned(f, spec)[0]
            rgb = np.ascontiguousarray(np.repeat(u[..., None], 3, axis=2))  # a 2-D array is coded lossless
            return bytes(imagecodecs.avif_encode(rgb, level=q, speed=6, bitspersample=12, pixelformat="yuv400",
                                                 codec="aom", numthreads=1))  # fmt: skip

        def avif_dec(b):
            d = np.asarray(imagecodecs.avif_decode(b, numthreads=1))
            return external.from_unsigned((d[..., 0] if d.ndim == 3 else d).astype(np.uint16), spec,
                                          external.unsigned_offset(spec))  # fmt: skip

        out["avif (libaom speed 6)"] = (avif_enc, avif_dec, AVIF_Q)
    return out


def sweep(frames: np.ndarray, bits: int, enc, dec, knobs) -> list[tuple[float, float, float]]:
    peak = (1 << bits) - 1
    pts = []
    for k in knobs:
        nbytes, se = 0, 0.0
        for f in frames:
            b = enc(f, k)
            d = np.asarray(dec(b)).reshape(f.shape).astype(np.float64)
            nbytes += len(b)
            se += float(np.sum((d - f) ** 2))
        mse = se / frames.size
        psnr = 10 * np.log10(peak**2 / mse) if mse > 0 else float("inf")
        pts.append((k, nbytes * 8 / frames.size, psnr))
    return pts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--avif", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated labels (substrings) to run; the rows the "
                    "OpenJPEG anchor needs and libjpeg-turbo (the speed reference) always run")
    args = ap.parse_args(argv)
    needed = ("mdc v1 huffman fast", "mdc v2.1 arith best", "jpeg2000", "jpeg12")
    only = [o for o in args.only.split(",") if o]
    summary = []
    for name in SERIES:
        frames, bits, signed = load(args.data / name, args.frames)
        print(f"\n## {name}: {frames.shape} {bits}-bit {'signed' if signed else 'unsigned'}", flush=True)
        curves, speeds = {}, {}
        for label, (enc, dec, knobs) in codecs(bits, signed, args.avif).items():
            if only and not any(o in label for o in (*only, *needed)):
                continue
            if label.startswith("jpeg2000"):  # PSNR targets spanning medcodec's PSNRs at 0.2-3.5 bpp
                ps = [p for _, b, p in curves["mdc v1 huffman fast"] + curves["mdc v2.1 arith best"] if 0.2 <= b <= 3.5]
                knobs = tuple(np.linspace(min(ps) - 2, max(ps) + 2, 10).round(1))
            pts = sweep(frames, bits, enc, dec, knobs)
            curves[label] = pts
            k1 = min(pts, key=lambda p: abs(np.log(p[1])))[0]  # knob nearest 1 bpp
            blobs = [enc(f, k1) for f in frames]
            te = sum(_thread_best(lambda f=f: enc(f, k1), args.repeat) for f in frames)
            td = sum(_thread_best(lambda b=b: dec(b), args.repeat) for b in blobs)
            speeds[label] = (k1, sum(map(len, blobs)) * 8 / frames.size, te, td)
            print(f"{label:26s} " + " ".join(f"{b:.2f}/{p:.1f}" for _, b, p in pts), flush=True)
        anchor = [(b, p) for _, b, p in curves["jpeg2000 (OpenJPEG)"] if 0.2 <= b <= 3.5 and np.isfinite(p)]
        ref = speeds.get("jpeg12 (libjpeg-turbo)")
        for label, pts in curves.items():
            sel = [(b, p) for _, b, p in pts if 0.2 <= b <= 3.5 and np.isfinite(p)]
            try:
                bd = bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in sel], [p for _, p in sel])
            except medcodec.CodecError as exc:
                bd = float("nan")
                print(f"  {label}: no BD-rate ({exc})")
            k1, bpp1, te, td = speeds[label]
            sp = f" | at {bpp1:.2f} bpp: enc {ref[2] / te:.2f}x dec {ref[3] / td:.2f}x libjpeg-turbo" if ref else ""
            print(f"  {label:26s} BD-rate vs OpenJPEG {bd:+6.1f} %{sp}", flush=True)
            summary.append((name, label, bd))
    print("\n## mean BD-rate vs OpenJPEG over the series")
    for label in dict.fromkeys(lbl for _, lbl, _ in summary):
        vals = [bd for _, lbl, bd in summary if lbl == label and np.isfinite(bd)]
        print(f"  {label:26s} {np.mean(vals):+6.1f} % (per series: {', '.join(f'{v:+.1f}' for v in vals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
