#!/usr/bin/env python3
"""Where the ``.mdc`` DEFAULT decoder spends its time, stage by stage (issue 12's decode target).

Usage (from the repository root)::

    nice -n 10 python benchmarks/profile_mdc_decode.py [--bpp 1.0] [--repeat 15]

For the middle slice of the chest CT, the head CT and the 256x256 MR, a default-effort stream
(``medcodec.encode(f, quality=q)``, format 2.12 intra) at the quality whose stream is nearest
``--bpp``, decoded by ``medcodec.decode(data, jobs=1)`` and by its stages: container parse and
CRCs, the FRAM header, level decoding (:func:`._kernels_ms.decode_coefficients_ms`), modes +
prediction + inverse transform (:func:`._kernels_intra.decode_intra26` for the 2.6 default, ``decode_intra25``
for 2.5; its mode symbols are
interleaved with the reconstruction, not separable), deblocking and the restoration filter if
the frame has them, the output conversion (crop and dtype), and "Python overhead" (the whole
minus the stages). libjpeg-turbo 12-bit (via imagecodecs) decodes the same slice at its quality
nearest ``--bpp`` in the same rounds. Thread CPU time (``time.thread_time``), stages measured
round-robin (A B C ... A B C ...: the same load on each), best of ``--repeat``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec import external  # noqa: E402
from medcodec.codec import _kernels_v2 as K  # noqa: E402
from medcodec.codec import container, intra, mdc2  # noqa: E402
from medcodec.codec.framecoder import FrameCoder  # noqa: E402
from medcodec.codec.transform import DCT_MATRIX  # noqa: E402
from medcodec.codec.zigzag import ZIGZAG  # noqa: E402
from medcodec.spec import PixelSpec  # noqa: E402
from _timing import nearest_quality, round_robin  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")


def decode_stages(data: bytes) -> tuple[dict[str, Callable[[], object]], str]:
    """The default decoder's stages on a one-frame intra stream, and a line describing the frame."""
    header, index = container.parse_container(data)
    fr = mdc2.read_dct_frame(data, header, index[0])
    if not fr.intra:
        raise SystemExit("the default stream's frame is not intra: this script profiles format 2.2+ intra frames")
    payload = fr.intra_payload if fr.intra_payload is not None else data[fr.start : fr.end]
    pdata = np.frombuffer(payload, np.uint8)
    coder = FrameCoder.for_table(header.qtables[0], header.bits_stored, header.signed)
    rows, cols = header.rows, header.cols
    prow, pcol = rows + (-rows % 8), cols + (-cols % 8)
    bx, nb = pcol // 8, prow * pcol // 64
    nmode = int.from_bytes(payload[:4], "little")
    levels = np.zeros((nb, 64), np.int32)
    within = header.version >= container.VERSION_211 and fr.mode_model == 4  # 2.11's level contexts (§21)
    trained = within and header.version >= container.VERSION_212  # 2.12's trained starts (§22)
    if intra.KM.decode_coefficients_ms(pdata, 4 + nmode, pdata.size, bx, levels, within, trained) != intra.KM.OK:
        raise SystemExit("the level segment did not decode")
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    zz = ZIGZAG.astype(np.int64)
    offs = intra._offsets(fr.offsets)
    tol = intra.flat_tolerance(coder)
    lo, hi = coder._lo, coder._hi
    recon = np.empty((prow, pcol), np.int32)

    split = np.zeros(((prow // 8 + 1) // 2) * ((bx + 1) // 2), np.uint8)

    def reconstruct() -> None:  # format 2.6 (the default since big26) or 2.5
        if fr.mode_model == 4:
            intra.KI.decode_intra26(pdata, 4, 4 + nmode, levels, steps, zz, offs, DCT_MATRIX, np.int64(coder.offset),
                                    np.int64(lo), np.int64(hi), recon, np.zeros(nb, np.int64), tol, intra.KI.DST7,
                                    np.zeros(nb, np.uint8), split, intra.KI.DCT16, False, trained)  # fmt: skip
            return
        intra.KI.decode_intra25(pdata, 4, 4 + nmode, levels, steps, zz, offs, DCT_MATRIX, np.int64(coder.offset),
                                np.int64(lo), np.int64(hi), recon, np.zeros(nb, np.int64), tol, intra.KI.DST7,
                                np.zeros(nb, np.uint8))  # fmt: skip

    reconstruct()
    img = recon[:rows, :cols].astype(coder._dtype)
    deb = img.copy()
    if fr.deblock:
        K.deblock(deb, *fr.deblock, lo, hi)
    work = np.empty_like(img)

    stages: dict[str, Callable[[], object]] = {
        "decode (whole, medcodec.decode)": lambda: medcodec.decode(data, jobs=1),
        "  parse + CRCs (parse_container)": lambda: container.parse_container(data),
        "  FRAM header (read_dct_frame)": lambda: mdc2.read_dct_frame(data, header, index[0]),
        "  level decoding": lambda: intra.KM.decode_coefficients_ms(pdata, 4 + nmode, pdata.size, bx,
                                                                    np.zeros((nb, 64), np.int32), within,
                                                                    trained),  # fmt: skip
        "  modes + prediction + inverse transform": reconstruct,
        "  deblocking": (lambda: K.deblock(img.copy(), *fr.deblock, lo, hi)) if fr.deblock else (lambda: None),
        "  restoration filter": (lambda: fr.restoration.apply(deb, lo, hi, out=work)) if fr.restoration
        else (lambda: None),  # fmt: skip
        "  output conversion (crop, dtype)": lambda: recon[:rows, :cols].astype(coder._dtype),
    }
    ncls = 0 if fr.restoration is None else len(fr.restoration.weights)
    desc = (f"format {header.version[0]}.{header.version[1]}, mode model {fr.mode_model}, deblocking "
            f"{'on' if fr.deblock else 'off'}, restoration {ncls} classes, {nb} blocks, "
            f"{int(np.count_nonzero(levels))} non-zero levels")  # fmt: skip
    return stages, desc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--bpp", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    for name in SERIES:
        paths = sorted((args.data / name).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        f = ds.pixel_array
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)

        def mdc_bpp(q: int, f: np.ndarray = f, bits: int = bits, signed: bool = signed) -> float:
            return len(medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)) * 8 / f.size

        q = nearest_quality(mdc_bpp, args.bpp)
        data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
        stages, desc = decode_stages(data)
        spec = PixelSpec(bits_stored=bits, signed=signed)
        u = external.to_unsigned(f, spec)[0].astype(np.uint16)
        jb = None
        if bits <= 12:
            jq = nearest_quality(lambda q: len(external.jpeg8_encode(u, bits_stored=bits, quality=q)) * 8 / f.size,
                                 args.bpp)  # fmt: skip
            jb = external.jpeg8_encode(u, bits_stored=bits, quality=jq)
            stages["libjpeg-turbo decode (same slice)"] = lambda: external.jpeg8_decode(jb)
        t = round_robin(stages, args.repeat)
        whole = t["decode (whole, medcodec.decode)"]
        parts = sum(v for k, v in t.items() if k.startswith("  "))
        print(f"\n## {name} middle slice {f.shape[0]}x{f.shape[1]}, q{q}: {len(data) * 8 / f.size:.3f} bpp; {desc}")
        for k, v in t.items():
            share = f"  {100 * v / whole:5.1f} %" if k.startswith("  ") else ""
            print(f"{k:44s} {v:7.3f} ms{share}")
        print(f"{'  Python overhead (whole - stages)':44s} {whole - parts:7.3f} ms  {100 * (whole - parts) / whole:5.1f} %")
        if jb is not None:
            jt = t["libjpeg-turbo decode (same slice)"]
            print(f"libjpeg-turbo q{jq}: {len(jb) * 8 / f.size:.3f} bpp; decode ratio (libjpeg-turbo / medcodec, "
                  f"per thread): {jt / whole:.3f}x")  # fmt: skip
    print(f"\nload average {open('/proc/loadavg').read().split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
