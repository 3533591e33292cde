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

Then, per series, the worker task split into its stages, each timed alone over every instance
(``--no-stages`` skips it): reading the stored file, the file meta and the template's cache key,
the walk along the template's elements (the header "parse"), the pixel read, the series mapping,
the JPEG encode (medcodec's 12-bit .51 kernel), the rest of the coding step, the per-instance
elements (UIDs, lossy ratio, derivation, padding), assembling the output file and its manifest row,
the ZIP packing (CRC-32 and the header deflated), pickling the result to the server and unpickling
it there, and the ZIP framing in the server. The HTTP send is not here (the server's process CPU,
measured by ``bench_delivery.py``).

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


class _Stages:
    """CPU time of named stages, exclusive: a stage's time excludes the stages it calls."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.stack: list[list[float]] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append([time.process_time(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                t0, inner = self.stack.pop()
                spent = time.process_time() - t0
                self.ms[name] = self.ms.get(name, 0.0) + (spent - inner) * 1e3
                if self.stack:
                    self.stack[-1][1] += spent

        return timed


def _stage_split(preset: Any, records: list[Any], mapping: Any, repeat: int) -> dict[str, float]:
    """CPU ms per instance of each stage of the encoder-process task (module docstring): the real
    task (``live._encode_in_process``) run on every record with its stages' functions wrapped in
    timers (exclusive times; what no stage claims is "the rest"); then pickling the results to the
    server and back, and the server's ZIP framing. Best of ``repeat`` rounds per stage."""
    import pickle

    from medcodec.delivery.zipstream import ZipStream
    from medcodec.dicom.coding import SeriesCoder
    from medcodec.dicom.mapping import SeriesMapping

    class _Read:  # the store's open + read, timed as one stage
        def __init__(self, open_: Callable[[str], Any], path: str):
            with open_(path) as fh:
                self.data = fh.read()

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def read(self) -> bytes:
            return self.data

    patches = [
        (live._WORKER_OBJECTS, "open", "read stored file", lambda f: partial(_Read, f)),
        (template, "_read_meta", "file meta, template lookup", None),
        (template, "_series_key", "file meta, template lookup", None),
        (template.SeriesTemplate, "_walk", "walk the header (compare, parse what differs)", None),
        (template.SeriesTemplate, "_frames", "pixel read", None),
        (SeriesMapping, "map", "series mapping", None),
        (SeriesCoder, "encode", "JPEG encode (12-bit .51 kernel)", None),
        (template, "code_frames", "coding step, the rest", None),
        (template.SeriesTemplate, "_per_instance", "per-instance elements (UIDs, lossy, derivation)", None),
        (template.SeriesTemplate, "apply", "assemble file + manifest row", None),
        (live, "pack", "ZIP pack (CRC-32, header deflate)", None),
    ]
    best: dict[str, float] = {}
    results: list[Any] = []
    for _ in range(repeat):
        stages = _Stages()
        saved = []
        for owner, attr, name, make in patches:
            original = getattr(owner, attr)
            saved.append((owner, attr, original))
            setattr(owner, attr, stages.wrap(name, make(original) if make else original))
        try:
            t0 = time.process_time()
            results = [live._encode_in_process(r.path, preset.name, mapping) for r in records]
            total = (time.process_time() - t0) * 1e3
            if any(isinstance(r, live.WorkerFailure) for r in results):
                return {}
        finally:
            for owner, attr, original in reversed(saved):
                if owner is live._WORKER_OBJECTS:
                    delattr(owner, attr)  # an instance attribute over the class's method
                else:
                    setattr(owner, attr, original)
        split = {name: ms / len(records) for name, ms in stages.ms.items()}
        split["the rest of the task"] = (total - sum(stages.ms.values())) / len(records)
        t0 = time.process_time()
        pickled = pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
        split["pickle (encoder process)"] = (time.process_time() - t0) * 1e3 / len(records)
        t0 = time.process_time()
        pickle.loads(pickled)
        split["unpickle (server)"] = (time.process_time() - t0) * 1e3 / len(records)
        t0 = time.process_time()
        z = ZipStream()
        for record, (packed, _) in zip(records, results):
            b"".join(z.add(live.archive_name(record), packed))
        split["ZIP framing (server)"] = (time.process_time() - t0) * 1e3 / len(records)
        split["task (timers included)"] = total / len(records)
        for name, ms in split.items():
            best[name] = min(best.get(name, 1e9), ms)
    best["result bytes pickled per instance"] = len(pickle.dumps(results, pickle.HIGHEST_PROTOCOL)) / len(records)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("MEDCODEC_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--files", type=int, default=40, help="instances per series")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-stages", dest="stages", action="store_false", help="skip the per-stage split")
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
            if args.stages:
                split = _stage_split(preset, records, mapping, args.repeat)
                if not split:
                    print("  (a worker task failed: no stage split)")
                for stage, ms in split.items():
                    unit = "bytes" if stage.startswith("result bytes") else "ms"
                    print(f"  {stage:50s} {ms:8.3f} {unit}")


if __name__ == "__main__":
    main()
