"""CPU per instance of the live ``diagnostic`` encode (``Preset.encode_instance(measure=False)``),
with and without the live shortcuts (``medcodec.delivery.fastread`` and ``fastwrite``: the
reader, the writer, the numpy pixel read, all switched by ``presets._FAST_IO``), on real series.

Process CPU time (``time.process_time``), one thread, so other work on a shared machine disturbs
it far less than wall time; the two variants alternate in each of ``--repeat`` rounds and the
best round of each is printed, with their ratio.

    python benchmarks/bench_live_cpu.py [--data DIR] [--files 40] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pydicom

from medcodec.delivery import presets
from medcodec.delivery.presets import PRESETS, stats_of
from medcodec.dicom import get_syntax, pixel_spec_from_dataset, plan_series_mapping
from medcodec.dicom.compress import dataset_frames

SERIES = ("ct_head_phantom_philips_ingenuity", "ct_chest_lungpetctdx_A0001_philips", "mr_head_ge_signa_t1_ctk")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("MEDCODEC_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--files", type=int, default=40, help="instances per series")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    preset = PRESETS["diagnostic"]
    for name in SERIES:
        files = sorted((Path(args.data) / name).glob("*.dcm"))[: args.files]
        datas = [p.read_bytes() for p in files]
        ds = pydicom.dcmread(files[0])
        spec = pixel_spec_from_dataset(ds)
        point = preset.operating_point(ds)
        assert point is not None
        bits, signed = get_syntax(point.syntax).target(spec.bits_stored, spec.signed)
        mapping = plan_series_mapping(stats_of(dataset_frames(ds, spec), spec), bits_stored=bits, signed=signed)
        for data in datas[:3]:  # warm-up (numba kernels)
            preset.encode_instance(data, mapping=mapping, measure=False)
        best = {False: 1e9, True: 1e9}
        try:
            for _ in range(args.repeat):
                for fast in (False, True):
                    presets._FAST_IO = fast
                    t0 = time.process_time()
                    for data in datas:
                        preset.encode_instance(data, mapping=mapping, measure=False)
                    best[fast] = min(best[fast], (time.process_time() - t0) / len(datas) * 1e3)
        finally:
            presets._FAST_IO = True
        mb = sum(map(len, datas)) / len(datas) / 1e6
        print(f"{name:38s} {mb:.2f} MB/file  pydicom-only {best[False]:6.2f} ms  shortcuts {best[True]:6.2f} ms "
              f"per instance  ratio {best[True] / best[False]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
