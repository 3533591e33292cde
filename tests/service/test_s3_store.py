"""A store on S3 (``--store s3://bucket/prefix``, s3fs) end to end: ingest, pre-compute, serve.

S3 cannot exist on this machine, so the one stand-in in the suite is moto's S3 server (a real HTTP
server on loopback speaking the S3 API, started here); everything on our side is the production
path: fsspec/s3fs, configured the way a deployment would be, through ``FSSPEC_S3_*`` environment
variables (fsspec reads them in every process, so the server's encoder processes see them too).
"""

from __future__ import annotations

import hashlib
import io
import socket
import zipfile
from pathlib import Path

import httpx
import pydicom
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def s3_env():
    from moto import server as moto_server  # a test dependency: missing is a failure, not a skip

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "FSSPEC_S3_KEY": "medcodec-test",
        "FSSPEC_S3_SECRET": "medcodec-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_env, monkeypatch, tmp_path):
    import fsspec
    import fsspec.config

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    conf = {"endpoint_url": s3_env["FSSPEC_S3_ENDPOINT_URL"], "key": "medcodec-test", "secret": "medcodec-test"}
    monkeypatch.setitem(fsspec.config.conf, "s3", conf)  # this process read its environment at import
    bucket = f"medcodec-{tmp_path.name.lower().replace('_', '-')}"[:60]
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/store", f"sqlite:///{tmp_path / 'catalog.sqlite'}"


def test_store_on_s3_ingests_precomputes_and_checks(shared_data: Path, s3_store) -> None:
    from medcodec.delivery import open_store
    from medcodec.delivery.precompute import precompute

    url, catalog = s3_store
    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:3]
    with open_store(url, catalog=catalog) as store:
        report = store.ingest(files, precompress=False)
        assert report.ok and len(report.stored) == 3, report.summary()
        study = report.outcomes[0].study_uid
        assert store.ingest(files, precompress=False).duplicates  # re-ingest: a no-op
        for record in store.instances(study):
            with store.open_original(record) as fh:
                assert hashlib.sha256(fh.read()).hexdigest() in {
                    hashlib.sha256(p.read_bytes()).hexdigest() for p in files
                }
        precompute(store, [study], presets=["diagnostic"], scheduler="threads")
        archive = store.archive(study, None, "diagnostic")
        with store.open_archive(archive) as fh:
            body = fh.read()
        assert hashlib.sha256(body).hexdigest() == archive.etag
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            assert zf.testzip() is None and len(zf.namelist()) == 4  # 3 files + manifest.json
        check = store.check()
        assert check.consistent and not check.orphans


def test_server_on_s3_streams_a_live_archive_from_its_encoder_processes(shared_data, s3_store, s3_env, spawn_server):
    from medcodec.delivery import open_store

    url, catalog = s3_store
    files = sorted((shared_data / "ct_head_phantom_philips_ingenuity").glob("*.dcm"))[:4]
    with open_store(url, catalog=catalog) as store:
        report = store.ingest(files, precompress=False)
        assert report.ok, report.summary()
        study = report.outcomes[0].study_uid
    _, base, _ = spawn_server(url, extra=["--catalog", catalog, "--processes", "2"], env=s3_env)
    with httpx.Client(base_url=base, timeout=120) as client:
        assert client.get("/health").json()["live_processes"] == 2
        r = client.get(f"/studies/{study}/archive.zip", params={"preset": "diagnostic", "live": "1"})
        # the original archive assembled from the objects on S3: a range read inside the third file
        original = client.get(f"/studies/{study}/archive.zip", params={"preset": "original"})
        part = client.get(f"/studies/{study}/archive.zip", params={"preset": "original"},
                          headers={"Range": "bytes=1100000-1199999"})  # fmt: skip
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = [n for n in zf.namelist() if n != "manifest.json"]
        assert len(names) == 4
        for name in names:
            ds = pydicom.dcmread(io.BytesIO(zf.read(name)))
            assert ds.LossyImageCompression == "01" and ds.pixel_array.shape == (512, 512)
    assert original.headers["x-medcodec-archive"] == "assembled"
    assert part.status_code == 206 and part.content == original.content[1100000:1200000]
    with zipfile.ZipFile(io.BytesIO(original.content)) as zf:
        assert zf.testzip() is None
        assert sorted(zf.read(n) for n in zf.namelist() if n != "manifest.json") == sorted(f.read_bytes() for f in files)


def test_backup_from_and_to_s3(shared_data: Path, s3_store, tmp_path) -> None:
    """``store backup`` through fsspec both ways: an S3 store into a folder (which is then a local
    store with every object), and a local store into an S3 prefix (its catalog uploaded last; a
    second backup there copies only what is new)."""
    import fsspec

    from medcodec.delivery import open_store

    url, catalog = s3_store
    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:3]
    with open_store(url, catalog=catalog) as store:
        assert store.ingest(files, presets=("diagnostic",)).ok
        report = store.backup(tmp_path / "local-copy")
        referenced = store.catalog.referenced()
    assert report.complete and report.copied == len(referenced) and report.instances == 3
    with open_store(tmp_path / "local-copy", create=False) as copy:
        assert copy.check().consistent and len(copy.find_studies({})) == 1
    target = url.rsplit("/", 1)[0] + "/backup"
    with open_store(tmp_path / "local-store") as local:
        assert local.ingest(files[:2], precompress=False).ok
        first = local.backup(target)
        assert local.ingest(files[2:], precompress=False).ok
        second = local.backup(target)
    assert (first.copied, second.copied, second.present) == (2, 1, 2)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    restored = tmp_path / "restored"
    fs.get(target.removeprefix("s3://"), str(restored), recursive=True)  # a restore is a copy back
    with open_store(restored, create=False) as back:
        assert back.check().consistent and len(back.catalog.referenced()) == 3
