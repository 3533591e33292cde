"""``medcodec fetch``: download, resume with Range after an interruption, verify."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from medcodec.cli.main import main
from medcodec.service.client import FetchError, IntegrityError, fetch, verify_archive

pytestmark = pytest.mark.realdata


def test_fetch_precomputed_and_verify(server, tmp_path):
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, extract=True)
    info = verify_archive(path)
    assert info["files"] == len(server.chest_files)
    etag = server.get(f"/studies/{server.chest_study}/archive.zip?preset=diagnostic").headers["etag"]
    assert f'"{info["sha256"]}"' == etag
    assert len(list((tmp_path / path.stem).rglob("*.dcm"))) == len(server.chest_files)


def test_fetch_resumes_a_partial_download(server, tmp_path):
    url = f"/studies/{server.chest_study}/archive.zip?preset=diagnostic"
    full = server.get(url)
    name = f"{server.chest_study}_diagnostic.zip"
    # an interrupted earlier run left the first third and its ETag
    (tmp_path / (name + ".part")).write_bytes(full.content[: len(full.content) // 3])
    (tmp_path / (name + ".part.etag")).write_text(full.headers["etag"])
    seen = []
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path,
                 progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert path.read_bytes() == full.content
    assert seen[0][0] > len(full.content) // 3  # it continued, it did not start over
    assert not (tmp_path / (name + ".part")).exists()


def test_fetch_detects_a_corrupt_partial(server, tmp_path):
    url = f"/studies/{server.chest_study}/archive.zip?preset=diagnostic"
    full = server.get(url)
    name = f"{server.chest_study}_diagnostic.zip"
    bad = bytearray(full.content[: len(full.content) // 2])
    bad[1000] ^= 0xFF  # a flipped byte in what was already downloaded
    (tmp_path / (name + ".part")).write_bytes(bytes(bad))
    (tmp_path / (name + ".part.etag")).write_text(full.headers["etag"])
    with pytest.raises(IntegrityError, match="sha256"):
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert not (tmp_path / (name + ".part")).exists()  # the next run starts clean
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == full.headers["etag"].strip('"')


def test_fetch_live_archive_and_cli(server, tmp_path, capsys):
    code = main(["fetch", server.url, "--study", server.head_study, "--preset", "preview", "-o", str(tmp_path),
                 "--live"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert f"{len(server.head_files)} files" in out
    with zipfile.ZipFile(tmp_path / f"{server.head_study}_preview.zip") as zf:
        assert zf.testzip() is None


def test_fetch_errors(server, tmp_path):
    with pytest.raises(FetchError) as info:
        fetch(server.url, study="1.2.3.4.5.6.7", out_dir=tmp_path)
    assert info.value.status == 404
    with pytest.raises(FetchError, match="network"):
        fetch("http://127.0.0.1:1", study="1.2.3", out_dir=tmp_path, retries=1)
    assert main(["fetch", server.url, "--study", "../etc", "-o", str(tmp_path)]) == 2
