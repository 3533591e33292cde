#!/usr/bin/env python3
"""Where a default ``.mdc`` encode spends its time (issue 12): stage split by thread CPU.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/profile_mdc_encode.py [--bpp 1.0] [--repeat 7] [--counts]

For the middle slice of the chest CT, the head CT (512x512) and the 256x256 MR, at the quality
whose default stream is nearest ``--bpp``: the whole ``medcodec.encode(x, quality=q, jobs=1)``
(one full encode: ``quality=`` runs no rate search; ``ratio=`` / ``psnr=`` run one intra encode
per probe of the search, see ``resolve_quality``), libjpeg-turbo 12-bit at the same bpp, and the
encoder's stages: the centroid offsets (a frame DCT, rounding), the RD pricing (symbol counts of
those rounded levels, costs, texture weight), the intra loop (:func:`._kernels_intra.encode_intra25`)
and, to split it, the same loop with features taken away (no RD levels; RD levels of the winner
only; the RD mode decision; 2.5 with the pair tried for the winner only), the mode and level
coders, the deblocking and the restoration filters' fitting. Thread CPU time
(``time.thread_time``), the stages round-robin (the same load on each), best of ``--repeat``.

``--counts``: runs the loop once more as plain Python (``py_func``) calling the compiled helpers
through counting wrappers, and prints how many calls per block each helper gets (predictions,
coarse SADs, DCT and DST-pair trials, RD searches ``rdoq_block``, reconstructions), and the
per-call cost of each helper from a compiled loop. Slow (tens of seconds per slice).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import imagecodecs  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec.codec import _kernels_intra as KI  # noqa: E402
from medcodec.codec import _kernels_v2 as K  # noqa: E402
from medcodec.codec import intra, mdc, mdc2, quantize  # noqa: E402
from medcodec.codec.transform import DCT_MATRIX  # noqa: E402
from medcodec.codec.zigzag import ZIGZAG  # noqa: E402
from _timing import nearest_quality, round_robin  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")


class Loop:
    """The default's intra loop on one slice, its arguments prepared as :func:`.intra.encode_intra_frame` has them."""

    def __init__(self, f: np.ndarray, q: int, bits: int, signed: bool) -> None:
        sample = f[None]
        lo, hi = medcodec.codec.levelshift.check_range(sample, bits, signed)
        rbits = medcodec.codec.levelshift.content_range_bits(sample, lo, hi, bits)
        rbits = mdc.arith_range_bits(rbits, bits, sample)
        self.coder = coder = medcodec.codec.framecoder.FrameCoder.for_table(quantize.quant_table(q, rbits), bits, signed)
        self.f = f
        scaled = coder.scaled(f)
        self.offsets = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
        self.big = "fast" in intra.BIG_EFFORTS  # format 2.6 (16x16 blocks), the default since big26
        self.rd_bound = mdc2.error_bound_with_offsets(coder.steps, self.offsets, tx=True, big=self.big)
        self.x = intra._padded(f)
        self.nb = self.x.size // 64
        self.bx = self.x.shape[1] // 8
        priced = K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))
        self.rdp = intra.rd_params(coder, f, priced, -(-f.shape[1] // 8))
        self.levels = np.empty((self.nb, 64), np.int32)
        self.modes = np.empty(self.nb, np.int64)
        self.skip = np.zeros(self.nb, np.uint8)
        self.txc = np.full(self.nb, 2, np.uint8)
        self.split = np.full(((self.x.shape[0] // 8 + 1) // 2) * ((self.bx + 1) // 2), 2, np.uint8)
        self.recon = np.empty_like(self.x)

    def args(self, trained: bool = False) -> tuple:
        """The loops' common arguments; ``trained``: the lambda of frames with trained starts (the default's)."""
        c = self.coder
        return (self.x, c.steps.astype(np.float64).reshape(8, 8), ZIGZAG.astype(np.int64), intra._offsets(self.offsets),
                DCT_MATRIX, intra.lambda_for(c, trained), np.int64(c.offset), np.int64(c._lo), np.int64(c._hi), self.levels,
                self.modes, self.recon, self.skip)  # fmt: skip

    def run(self, variant: str, kernel: Callable | None = None) -> None:
        """``variant``: default (2.5 joint), post (2.5, the pair for the winner only), rdmode (2.4 RD
        mode decision), rd (2.4, RD levels of the winner), plain (2.4, no RD levels)."""
        nc, nf = intra.RD_MODE_SEARCH["fast"]
        trained = variant == "default"  # the default's 2.12 frames: their lambda and rate weight (intra.mode_lambda)
        base = (*self.args(trained), nc, nf, KI.MODE2_SCALE, KI.MODE2_BIAS, intra.flat_tolerance(self.coder))
        cost, lam_rd, mu, rho, tex = self.rdp
        rd = (cost, lam_rd, mu, rho, tex, float(self.rd_bound))
        if variant in ("default", "post"):
            fn = kernel or KI.encode_intra25
            fn(*base, *rd, intra.mode_lambda(trained)[1], float(intra.RD_MODE_MARGIN["fast"]), float(intra.RD_EDGE_WEIGHT),
               KI.DST7, self.txc, int(intra.TX_JOINT["fast"]) if variant == "default" else 0,
               self.big and variant == "default", KI.DCT16, self.split,
               int(intra.BIG_MODE_TRIALS["fast"]), trained)  # fmt: skip
        elif variant == "rdmode":
            KI.encode_intra2_rdmode(*base, *rd, True, float(intra.RD_MODE_RATE), float(intra.RD_MODE_MARGIN["fast"]),
                                    float(intra.RD_EDGE_WEIGHT))  # fmt: skip
        elif variant == "rd":
            KI.encode_intra2_rd(*base, *rd)
        else:
            KI.encode_intra2(*base)


def stages_of(f: np.ndarray, bits: int, signed: bool, q: int, jf: np.ndarray | None,
              jq: int) -> tuple[dict[str, Callable[[], object]], Loop]:  # fmt: skip
    L = Loop(f, q, bits, signed)
    coder = L.coder
    L.run("default")
    levels, modes, skip, txc, recon = L.levels.copy(), L.modes.copy(), L.skip.copy(), L.txc.copy(), L.recon.copy()
    rows, cols = f.shape
    _, idecoded = mdc2.deblocked_frame(coder, None, L.offsets, f, base=recon[:rows, :cols].astype(coder._dtype))

    def offsets() -> None:
        scaled = coder.scaled(f)
        mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)

    scaled = coder.scaled(f)
    rounded = K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))

    def pricing() -> None:  # the rounded levels are the offsets' (mdc._intra_frame passes them on)
        intra.rd_params(coder, f, rounded, -(-cols // 8))

    def coding() -> None:
        out = np.empty(L.nb + 1024, np.uint8)
        KI.encode_modes25(modes, skip, txc, L.bx, out)
        intra._encode_levels(levels, L.bx)

    base = recon[:rows, :cols].astype(coder._dtype)
    peer = {} if jf is None else {
        "libjpeg-turbo 12-bit (same bpp)": lambda: imagecodecs.jpeg8_encode(jf, level=jq, bitspersample=12,
                                                                             optimize=True)}  # fmt: skip
    return {
        "encode (whole, default)": lambda: medcodec.encode(f, quality=q, bits_stored=bits, signed=signed, jobs=1),
        **peer,
        "  offsets (frame DCT, rounding, centroids)": offsets,
        "  RD pricing (symbol counts, costs, texture weight)": pricing,
        "  intra loop (encode_intra25, joint; 16x16 blocks if BIG_EFFORTS)": lambda: L.run("default"),
        "    loop, 2.5 pair for the winner only": lambda: L.run("post"),
        "    loop, 2.4 RD mode decision": lambda: L.run("rdmode"),
        "    loop, 2.4 RD levels of the winner": lambda: L.run("rd"),
        "    loop, 2.4 no RD levels": lambda: L.run("plain"),
        "  mode + level coding": coding,
        "  deblocking search": lambda: mdc2.deblocked_frame(coder, None, L.offsets, f, base=base),
        "  restoration search": lambda: mdc2.choose_restoration(coder, idecoded, f, mdc2.FAST_FILTER_CLASSES),
    }, L


#: Helpers the loop calls directly (and no compiled helper it calls does): an RD level search
#: (``rdoq_block``) is a ``_rd_trial`` (a candidate's) or a ``_rd_levels`` (the winner's, not tried before).
COUNTED = ("flat_refs", "coarse_sad", "predict_fast", "_trial", "_trial_pair", "_rd_trial", "_rd_levels")


def _core_py(*a: object) -> object:
    """:func:`._kernels_intra.encode_intra25` as plain Python (its arguments mapped onto the core's)."""
    (x, steps, zz, offs, dct, lam, mid, lo, hi, levels, modes, recon, skip, nc, nf, ms, mb, tol, cost, lam_rd, mu,
     rho, tex, bound, rml, rmm, ew, dst, txc, joint, big, c16, split, trials) = a  # fmt: skip
    return KI._encode_intra_core.py_func(x, steps, zz, offs, dct, lam, mid, lo, hi, levels, modes, recon, nc, nf, ms,
                                         mb, True, skip, tol, True, cost, lam_rd, mu, rho, tex, bound, True, rml, rmm,
                                         ew, True, dst, txc, joint, big, c16, split, trials)  # fmt: skip


def count_calls(L: Loop) -> Counter:
    """Calls of each helper in one run of the default loop, the loop run as plain Python."""
    calls: Counter = Counter()
    saved = {n: getattr(KI, n) for n in COUNTED}

    def wrap(name: str, fn: Callable) -> Callable:
        def counted(*a: object) -> object:
            calls[name] += 1
            return fn(*a)

        return counted

    for n in COUNTED:
        setattr(KI, n, wrap(n, saved[n]))
    try:
        L.run("default", kernel=_core_py)
    finally:
        for n, fn in saved.items():
            setattr(KI, n, fn)
    return calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bpp", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--counts", action="store_true", help="helper calls per block (slow)")
    ap.add_argument("--series", nargs="*", default=list(SERIES))
    args = ap.parse_args(argv)
    for name in args.series:
        paths = sorted((args.data / name).glob("**/*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        f = ds.pixel_array
        bits, signed = int(ds.BitsStored), f.dtype.kind == "i"
        q = nearest_quality(lambda v: len(medcodec.encode(f, quality=v, bits_stored=bits, signed=signed, jobs=1))
                            * 8 / f.size, args.bpp, 1, 100)  # fmt: skip
        peer = f.min() >= 0 and f.max() < 4096  # libjpeg-turbo 12-bit takes it as it is
        jf = f.astype(np.uint16) if peer else None
        jq = nearest_quality(lambda v: len(imagecodecs.jpeg8_encode(jf, level=v, bitspersample=12, optimize=True))
                             * 8 / f.size, args.bpp, 1, 100) if peer else 0  # fmt: skip
        data = medcodec.encode(f, quality=q, bits_stored=bits, signed=signed, jobs=1)
        stages, L = stages_of(f, bits, signed, q, jf, jq)
        t = round_robin(stages, args.repeat)
        jbpp = len(imagecodecs.jpeg8_encode(jf, level=jq, bitspersample=12, optimize=True)) * 8 / f.size if peer else 0
        print(f"\n{name} {f.shape[0]}x{f.shape[1]}: .mdc q{q} {len(data) * 8 / f.size:.3f} bpp, libjpeg-turbo "
              f"level {jq} {jbpp:.3f} bpp; thread CPU ms, best of {args.repeat}")  # fmt: skip
        whole = t["encode (whole, default)"]
        for k, v in t.items():
            print(f"  {k:55s} {v:8.2f} ms  {100 * v / whole:5.1f} %")
        parts = sum(v for k, v in t.items() if k.startswith("  ") and not k.startswith("    ") and "whole" not in k)
        print(f"  {'  Python / container / rest (whole - stages)':55s} {whole - parts:8.2f} ms")
        if peer:
            print(f"  ratio to libjpeg-turbo (its time / ours): {t['libjpeg-turbo 12-bit (same bpp)'] / whole:.3f}")
        else:
            print("  (libjpeg-turbo 12-bit: samples outside 0..4095, not run)")
        if args.counts:
            calls = count_calls(L)
            flat = int(L.skip.sum())
            print(f"  blocks {L.nb}, flat (no search) {flat}; helper calls per block:")
            for n in COUNTED:
                print(f"    {n:20s} {calls[n] / L.nb:7.2f}  ({calls[n]} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
