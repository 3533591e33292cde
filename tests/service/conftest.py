"""A real ``medcodec serve`` for the service tests: a uvicorn subprocess on a free loopback port.

``server`` (session scope) ingests real images from the shared data into a temporary store:

* ``chest``: 12 slices of the chest CT, pre-computed (``diagnostic``, ``preview``): archives
  come from storage (Content-Length, ETag, Range);
* ``head``: 40 slices (21 MB) of the head CT phantom, NOT pre-computed: archives are compressed live;
* ``singles``: a colour ultrasound (passed through by lossy presets), a 10-frame enhanced MR
  (RLE) and a small signed CT;

then starts ``python -m medcodec.cli.main serve --store ... --port N`` (``--create`` when the
store does not exist yet: ``serve`` refuses a missing store without it) and waits for
``GET /health``. The server's stderr goes to ``server.log`` in the store's folder (printed when
a test fails to start it).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from medcodec.testing.server import free_port, start_server, stop_server

__all__ = ["free_port", "start_server", "stop_server", "Server"]

CHEST = "ct_chest_lungpetctdx_A0001_philips"
HEAD = "ct_head_phantom_philips_ingenuity"
SINGLES = ("us_US1_480x640_rgb_uncompressed.dcm", "mr_enhanced_multiframe_10f_64x64_rle.dcm",
           "ct_CT1_small_128x128_signed16.dcm")  # fmt: skip


@dataclass
class Server:
    """A running server and what was ingested into its store."""

    url: str
    store: Path
    process: subprocess.Popen[bytes]
    log: Path
    chest_study: str = ""
    chest_series: str = ""
    head_study: str = ""
    head_series: str = ""
    chest_files: list[Path] = field(default_factory=list)
    head_files: list[Path] = field(default_factory=list)
    singles: dict[str, Path] = field(default_factory=dict)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=60, **kwargs)  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture(scope="session")
def server(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("served")
    store_path = root / "store"
    chest = sorted((shared_data / CHEST).glob("*.dcm"))[:12]
    head = sorted((shared_data / HEAD).glob("*.dcm"))[:40]
    singles = {name: shared_data / "singles" / name for name in SINGLES}
    with open_store(store_path) as store:
        report = store.ingest(chest, precompress=True)
        assert report.ok and len(report.stored) == 12, report.summary()
        report = store.ingest(head + list(singles.values()), precompress=False)
        assert len(report.stored) == 40 + len(singles), report.summary()
    import pydicom

    c, h = pydicom.dcmread(chest[0], stop_before_pixels=True), pydicom.dcmread(head[0], stop_before_pixels=True)
    proc, url, log = start_server(store_path)
    srv = Server(url=url, store=store_path, process=proc, log=log, chest_study=str(c.StudyInstanceUID),
                 chest_series=str(c.SeriesInstanceUID), head_study=str(h.StudyInstanceUID),
                 head_series=str(h.SeriesInstanceUID), chest_files=chest, head_files=head, singles=singles)  # fmt: skip
    try:
        yield srv
    finally:
        stop_server(proc)


@pytest.fixture
def spawn_server():
    """``spawn_server(store, extra=[...], env={...}, host=...) -> (process, url, log)``; all stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(store: Path, **kwargs: object) -> tuple[subprocess.Popen[bytes], str, Path]:
        proc, url, log = start_server(store, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc, url, log

    spawn.free_port = free_port  # type: ignore[attr-defined]
    yield spawn
    for proc in started:
        stop_server(proc)
