"""``medcodec ingest`` when the infrastructure fails: a bad or unreachable Dask scheduler, the scheduler
lost mid pre-computation, no worker connected, an S3 store whose bucket is missing, whose endpoint is
down, or whose Dask workers lack its credentials.

Everything is real and on 127.0.0.1: ``dask scheduler`` / ``dask worker`` processes, moto's S3 server
(the one stand-in: S3 cannot exist here), ``medcodec ingest`` run as a command. Each failure must be
one ``error:`` line naming what failed and where (no traceback, no "internal error"), exit 2, the
summary of what was stored printed, and nothing hanging.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_data import CHEST, MR, series_files

from medcodec.cli.main import main
from medcodec.delivery import open_store

pytestmark = pytest.mark.realdata

INGEST = [sys.executable, "-m", "medcodec.cli.main", "ingest"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ended with {proc.returncode} before listening on {port}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Cluster:
    """A real ``dask scheduler`` on 127.0.0.1 and the ``dask worker`` processes started for it."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--dashboard-address", "127.0.0.1:0", "--no-show"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        _wait_listening(self.port, self.scheduler)

    def start_worker(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--nworkers", "1",
             "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--local-directory", str(self.tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp_path, env=env,
        )  # fmt: skip
        self.workers.append(worker)
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(len(self.workers), timeout=60)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            _stop(worker)
        _stop(self.scheduler)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- --scheduler


@pytest.mark.parametrize(
    ("scheduler", "said"),
    [
        ("http://127.0.0.1:{free}", "unknown scheme 'http'"),
        ("tcp://127.0.0.1", "no port"),
        ("foo", "no port"),
        ("tcp://127.0.0.1:{free}", "connection refused"),  # nothing listening there
    ],
)
def test_a_bad_scheduler_is_refused_at_once_before_any_file_is_stored(
    shared_data: Path, tmp_path: Path, scheduler: str, said: str
) -> None:
    scheduler = scheduler.format(free=_free_port())
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, MR, 5)]
    started = time.monotonic()
    done = subprocess.run(
        [*INGEST, *files, "--store", str(store_path), "--scheduler", scheduler, "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert _error_lines(done.stderr) == done.stderr.splitlines(), done.stderr  # one line, no traceback
    assert said in done.stderr and scheduler in done.stderr.replace("'", "")
    assert "internal error" not in done.stderr and done.stdout == ""
    assert not store_path.exists()  # refused before anything was stored (not even the store made)
    assert elapsed < 20, f"took {elapsed:.0f} s (Dask's connect retries, or Client.__del__ waiting)"


def test_host_port_without_scheme_is_a_dask_address(shared_data: Path, tmp_path: Path, cluster: Cluster) -> None:
    cluster.start_worker()
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, MR, 3)]
    done = subprocess.run(
        [*INGEST, *files, "--store", str(store_path), "--scheduler", f"127.0.0.1:{cluster.port}",
         "--presets", "diagnostic", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 stored" in done.stdout and "pre-computed 2" in done.stdout  # study + its series
    with open_store(store_path, create=False) as store:
        (study,) = store.catalog.study_uids()
        assert store.archive(study, None, "diagnostic") is not None


# --------------------------------------------------------------------------- scheduler lost, no workers


def test_scheduler_lost_mid_precompute_is_one_line_after_the_summary(
    shared_data: Path, tmp_path: Path, cluster: Cluster
) -> None:
    cluster.start_worker()
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, CHEST, 40)]
    proc = subprocess.Popen(
        [*INGEST, *files, "--store", str(store_path), "--scheduler", cluster.address, "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while not (store_path / "renditions").exists():  # the originals stored, the presets being computed
            assert proc.poll() is None, f"ended ({proc.returncode}) before the scheduler could be killed"
            time.sleep(0.01)
        cluster.scheduler.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert err.splitlines() == _error_lines(err), err  # no Dask log, no traceback
    (line,) = _error_lines(err)
    assert line.startswith(f"error: lost the Dask scheduler {cluster.address}"), line
    assert "40 stored, 0 duplicate" in out and "STOPPED: lost the Dask scheduler" in out  # what was done is said
    with open_store(store_path, create=False) as store:
        assert len(store.instances(store.catalog.study_uids()[0])) == 40
        assert store.check(verify_hashes=False).consistent


def test_no_worker_connected_is_said_once_and_the_ingest_goes_on_when_one_comes(
    shared_data: Path, tmp_path: Path, cluster: Cluster
) -> None:
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, MR, 3)]
    proc = subprocess.Popen(
        [*INGEST, *files, "--store", str(store_path), "--scheduler", cluster.address, "--presets", "diagnostic",
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    warned = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("warning: no Dask workers connected"):
                warned.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert warned.wait(60), f"no warning after 60 s without a worker: {lines}"
        cluster.start_worker()
        out, _ = proc.communicate(timeout=300)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, lines
    assert lines == [
        f"warning: no Dask workers connected to {cluster.address}: waiting (Ctrl-C to stop; the originals are stored)"
    ]
    assert "3 stored" in out and "pre-computed 2" in out


# --------------------------------------------------------------------------- S3


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto import server as moto_server

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_env(endpoint: str, *, credentials: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FSSPEC_S3_", "AWS_"))}
    env.update(
        FSSPEC_S3_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        # no credentials looked for beyond these (never the instance metadata service: only 127.0.0.1 traffic)
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
    )
    if credentials:
        env.update(FSSPEC_S3_KEY="medcodec-test", FSSPEC_S3_SECRET="medcodec-test")
    return env


def _bucket(endpoint: str, name: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(
        key="medcodec-test", secret="medcodec-test", client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
    )
    fs.mkdir(name)
    return name


def _ingest_to_s3(shared_data: Path, tmp_path: Path, store: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    files = [str(p) for p in series_files(shared_data, MR, 2)]
    return subprocess.run(
        [*INGEST, *files, "--store", store, "--catalog", f"sqlite:///{tmp_path / 'c.sqlite'}", "--no-progress"],
        capture_output=True, text=True, timeout=300, env=_s3_env(endpoint),
    )  # fmt: skip


def test_s3_missing_bucket_names_the_store_the_bucket_and_the_endpoint(
    shared_data: Path, tmp_path: Path, moto_endpoint: str
) -> None:
    done = _ingest_to_s3(shared_data, tmp_path, "s3://nosuchbucket/store", moto_endpoint)
    assert done.returncode == 2, done.stderr
    (line,) = _error_lines(done.stderr)
    assert line.startswith("error: s3://nosuchbucket/store: the bucket s3://nosuchbucket"), line
    assert "does not exist" in line and moto_endpoint in line
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_s3_endpoint_down_is_a_delivery_error_naming_it(shared_data: Path, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listening
    done = _ingest_to_s3(shared_data, tmp_path, "s3://somebucket/store", endpoint)
    assert done.returncode == 2, done.stderr  # not 3, "internal error ... please report it"
    line = _error_lines(done.stderr)[-1]
    assert line.startswith("error: s3://somebucket/store: cannot reach the storage endpoint of s3://somebucket"), line
    assert endpoint in line and "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_dask_workers_without_the_s3_credentials_are_named(
    shared_data: Path, tmp_path: Path, moto_endpoint: str, cluster: Cluster
) -> None:
    cluster.start_worker(env=_s3_env(moto_endpoint, credentials=False))  # as a worker lacking FSSPEC_S3_KEY/SECRET
    bucket = _bucket(moto_endpoint, f"medcodec-{tmp_path.name.lower().replace('_', '-')}"[:60])
    url = f"s3://{bucket}/store"
    files = [str(p) for p in series_files(shared_data, MR, 3)]
    done = subprocess.run(
        [*INGEST, *files, "--store", url, "--catalog", f"sqlite:///{tmp_path / 'c.sqlite'}",
         "--scheduler", cluster.address, "--presets", "diagnostic", "--no-progress"],
        capture_output=True, text=True, timeout=300, env=_s3_env(moto_endpoint),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == _error_lines(done.stderr), done.stderr
    (line,) = _error_lines(done.stderr)
    assert line.startswith(f"error: on a Dask worker of {cluster.address}: {url}: no credentials"), line
    assert "FSSPEC_S3_KEY" in line
    assert "3 stored" in done.stdout  # the originals: stored by this process, which has the credentials


# --------------------------------------------------------------------------- store check


def test_store_check_lists_the_orphans_it_counts(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "store"
    files = [str(p) for p in series_files(shared_data, MR, 1)]
    assert main(["ingest", *files, "--store", str(store_path), "--no-precompress", "--no-progress"]) == 0
    orphans = sorted(f"tmp/{i:02d}.part" for i in range(23))
    for rel in orphans:
        (store_path / rel).write_bytes(b"left by an interrupted write")
    capsys.readouterr()
    assert main(["store", "check", "--store", str(store_path)]) == 0  # orphans are no damage
    out = capsys.readouterr().out
    assert "23 orphan(s)" in out
    listed = [line.removeprefix("orphan: ") for line in out.splitlines() if line.startswith("orphan: ")]
    assert listed == orphans[:20]  # bounded
    assert "... 3 more orphan(s)" in out
