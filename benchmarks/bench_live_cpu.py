"""CPU per instance of the live ``diagnostic`` encode, as the server's encoder processes do it, on
real series, with and without the live shortcuts (``medcodec.delivery.fastread`` and ``fastwrite``:
the reader, the writer, the numpy pixel read, all switched by ``presets._FAST_IO``).

The series are ingested into a temporary store (nothing pre-computed) and each instance is
coded with the mapping the server uses (``Store.series_mapping``: one per series, from the
catalog's statistics of every instance). Columns:

* ``encode``: ``Preset.encode_instance(measure=False)`` on the stored file's bytes (the full path),
  with the shortcuts off and on;
* ``template``: ``template.encode_live``, what the encoder processes call: the series' template
  (``medcodec.delivery.template``) once it is built and checked, the full path otherwise;
* ``worker task``: the whole task an encoder process runs per instance
  (``live._encode_in_process``: read from the store, encode from the template, pack for the ZIP).

Process CPU time (``time.process_time``), one thread, so other work on a shared machine disturbs
it far less than wall time; the variants alternate in each of ``--repeat`` rounds and the best
round of each is printed.

    python benchmarks/bench_live_cpu.py [--data DIR] [--files 40] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pydicom

from medcodec.delivery import live, presets, template
from medcodec.delivery.presets import PRESETS
from medcodec.delivery.store import open_store

SERIES = ("ct_head_phantom_philips_ingenuity", "ct_chest_lungpetctdx_A0001_philips", "mr_head_ge_signa_t1_ctk")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _best_ms(run: Callable[[], None], n: int, best: float) -> float:
    t0 = time.process_time()
    run()
    return min(best, (time.process_time() - t0) / n * 1e3)


def _encode_all(preset: Any, datas: list[bytes], mapping: Any) -> None:
    for data in datas:
        preset.encode_instance(data, mapping=mapping, measure=False)


def _live_all(preset: Any, datas: list[bytes], mapping: Any) -> None:
    for data in datas:
        template.encode_live(preset, data, mapping)


def _tasks(records: list[Any], mapping: Any) -> None:
    for record in records:
        live._encode_in_process(record.path, "diagnostic", mapping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("MEDCODEC_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--files", type=int, default=40, help="instances per series")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    preset = PRESETS["diagnostic"]
    with tempfile.TemporaryDirectory(prefix="medcodec-live-cpu-") as tmp, open_store(tmp) as store:
        names = {}
        for name in SERIES:
            files = sorted((Path(args.data) / name).glob("*.dcm"))[: args.files]
            store.ingest(files, precompress=False)
            names[str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)] = name
        live._WORKER_OBJECTS = store.objects  # what an encoder process opens (live._worker_init)
        by_series: dict[str, list[Any]] = {}
        for record in store.catalog.instances(None, None, None):
            by_series.setdefault(record.series_uid, []).append(record)
        for uid, records in by_series.items():
            mapping = store.series_mapping(records[0].series_uid, "diagnostic")
            datas = []
            for record in records:
                with store.open_original(record) as fh:
                    datas.append(fh.read())
            for data in datas[:3]:  # warm-up (numba kernels, caches)
                preset.encode_instance(data, mapping=mapping, measure=False)

            encode_all = partial(_encode_all, preset, datas, mapping)
            tasks = partial(_tasks, records, mapping)
            live_all = partial(_live_all, preset, datas, mapping)
            live_all()  # the template built and checked, as in an encoder process after its first instances
            best = {"pydicom-only": 1e9, "shortcuts": 1e9, "template": 1e9, "worker task": 1e9}
            try:
                for _ in range(args.repeat):
                    presets._FAST_IO = False
                    best["pydicom-only"] = _best_ms(encode_all, len(datas), best["pydicom-only"])
                    presets._FAST_IO = True
                    best["shortcuts"] = _best_ms(encode_all, len(datas), best["shortcuts"])
                    best["template"] = _best_ms(live_all, len(datas), best["template"])
                    best["worker task"] = _best_ms(tasks, len(records), best["worker task"])
            finally:
                presets._FAST_IO = True
            mb = sum(map(len, datas)) / len(datas) / 1e6
            print(f"{names.get(uid, uid)}: {len(records)} x {mb:.2f} MB: encode pydicom-only "
                  f"{best['pydicom-only']:.2f} ms, with shortcuts {best['shortcuts']:.2f} ms (ratio "
                  f"{best['shortcuts'] / best['pydicom-only']:.2f}); from the series template {best['template']:.2f} ms "
                  f"({best['template'] / best['shortcuts']:.2f} of the full path); worker task {best['worker task']:.2f} ms "
                  "per instance", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
