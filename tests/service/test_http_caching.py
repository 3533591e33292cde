"""What caches may do with the server's answers (medcodec.service.caching), with the server and a
real caching proxy (nginx, as a CDN would sit in front) started as subprocesses on loopback.

An outside audit (2026-12-02) put nginx and Varnish in front of ``medcodec serve`` and found: a
pre-computed archive served ``public, max-age=31536000, immutable`` at a URL whose study later
changed (caches kept the old study for a year, after a deletion too); archives fetched with the
bearer token marked ``public`` (a cache gave them to clients without it); WADO-RS answers chosen
by ``Accept`` without ``Vary: Accept`` and without Cache-Control (a cache gave the lossy .51 to a
client that asked for the original); ``If-Match`` ignored; 32 overlapping ranges answered with 32
copies of the archive. Every test here fails on the code before the fix.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pydicom
import pytest

from conftest import CHEST, free_port  # tests/service/conftest.py
from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_12 = "1.2.840.10008.1.2.4.51"
TOKEN = "caching-test-token-0123456789abcdef"


def _archive(server, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"preset": "diagnostic", **params}.items())
    return f"/studies/{server.chest_study}/archive.zip?{query}"


def test_the_versioned_url_is_under_the_public_url(server, spawn_server):
    """Behind a proxy that serves the server under a path prefix (``--public-url
    https://host/prefix``), Content-Location was the bare ``/studies/...``: outside the prefix, a
    404 for whoever followed it (curl -C - / wget -c are told to resume there; an outside audit,
    2026-12-03). Without --public-url it stays relative, for a CDN to keep as its own."""
    _, url, _ = spawn_server(server.store, extra=["--public-url", "https://pacs.example.org/imaging/"])
    r = httpx.get(url + _archive(server), timeout=60)
    etag = r.headers["etag"].strip('"')
    location = r.headers["content-location"]
    assert location.startswith(f"https://pacs.example.org/imaging/studies/{server.chest_study}/archive.zip?")
    assert f"version={etag}" in location
    direct = httpx.get(url + location.removeprefix("https://pacs.example.org/imaging"), timeout=60)
    assert direct.status_code == 200 and direct.content == r.content  # what the proxy forwards to


def test_a_precomputed_archive_is_revalidated_and_its_versioned_url_is_immutable(server):
    stable = server.get(_archive(server))
    assert stable.status_code == 200 and stable.headers["x-medcodec-archive"] == "precomputed"
    assert stable.headers["cache-control"] == "public, no-cache"  # a study changes: revalidate each use
    etag = stable.headers["etag"]
    location = stable.headers["content-location"]
    assert location.startswith(f"/studies/{server.chest_study}/archive.zip?")
    assert f"version={etag.strip(chr(34))}" in location
    versioned = server.get(location)
    assert versioned.status_code == 200 and versioned.content == stable.content and versioned.headers["etag"] == etag
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-location" not in versioned.headers
    r = server.get(location, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    modified = stable.headers["last-modified"]  # when the archive was built
    r = server.get(_archive(server), headers={"If-Modified-Since": modified})
    assert r.status_code == 304 and r.headers["last-modified"] == modified
    r = server.get(_archive(server), headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200
    r = server.get(_archive(server), headers={"If-Modified-Since": modified, "If-None-Match": '"other"'})
    assert r.status_code == 200  # If-None-Match decides when both are sent (RFC 9110 §13.1.3)
    gone = server.get(_archive(server, version="0" * 64))
    assert gone.status_code == 404 and "gone" in gone.json()["detail"]
    assert gone.headers["cache-control"] == "no-store"
    assert server.get(_archive(server, version="abc", live="1")).status_code == 400
    assert server.get(_archive(server, live="")).status_code == 400  # an empty live= is not "yes"


def test_if_match_is_evaluated(server):
    """RFC 9110 §13.1.1: an origin MUST evaluate If-Match; a resumed download conditional on an old
    ETag got 206 bytes of another archive."""
    url = _archive(server)
    etag = server.get(url).headers["etag"]
    r = server.get(url, headers={"If-Match": '"0123"', "Range": "bytes=10-19"})
    assert r.status_code == 412 and r.headers["cache-control"] == "no-store" and "If-Match" in r.json()["detail"]
    r = server.get(url, headers={"If-Match": f'"0123", {etag}', "Range": "bytes=10-19"})
    assert r.status_code == 206 and len(r.content) == 10
    assert server.get(url, headers={"If-Match": f"W/{etag}"}).status_code == 412  # strong comparison
    assert server.get(url, headers={"If-Match": "*"}).status_code == 200
    live = f"/studies/{server.head_study}/archive.zip?preset=diagnostic"
    r = httpx.head(server.url + live, headers={"If-Match": '"x"'}, timeout=60)
    assert r.status_code == 412  # a live archive has no ETag: no listed tag can match
    r = httpx.head(server.url + live, headers={"If-Match": "*"}, timeout=60)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    # any other answer: it carries no ETag, so a listed one fails; an unknown resource stays 404
    instances = f"/dicomweb/studies/{server.chest_study}/instances"
    assert server.get(instances, headers={"If-Match": '"x"'}).status_code == 412
    assert server.get(instances, headers={"If-Match": "*"}).status_code == 200
    unknown = "/dicomweb/studies/1.2.3.4/series/1.2.3/instances/1.2.3.5/metadata"
    assert server.get(unknown, headers={"If-Match": '"x"'}).status_code == 404


def test_overlapping_ranges_are_coalesced(server):
    """RFC 9110 §17.13: 32 overlapping ranges made the origin send 32 copies of the archive."""
    url = _archive(server)
    size = len(server.get(url).content)
    r = server.get(url, headers={"Range": "bytes=" + ",".join(["0-"] * 32)})
    assert r.status_code == 206 and int(r.headers["content-length"]) == size == len(r.content)
    assert r.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    r = server.get(url, headers={"Range": "bytes=0-9,5-20"})
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes 0-20/{size}" and len(r.content) == 21
    r = server.get(url, headers={"Range": "bytes=20-29,0-9"})  # disjoint: two parts, as asked
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")


def test_dicomweb_answers_vary_on_accept_and_errors_are_never_stored(server):
    ds = pydicom.dcmread(server.chest_files[0], stop_before_pixels=True)
    instance = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    for path, accept in ((instance, f"application/dicom; transfer-syntax={JPEG_12}"),
                         (instance + "/frames/1", "application/octet-stream"),
                         (instance + "/rendered", "image/png"), (instance + "/metadata", "application/dicom+json"),
                         (f"/dicomweb/studies?StudyInstanceUID={ds.StudyInstanceUID}", "application/dicom+json"),
                         (f"/wado?requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}"
                          f"&objectUID={ds.SOPInstanceUID}", "application/dicom")):  # fmt: skip
        r = server.get(path, headers={"Accept": accept})
        assert r.status_code == 200, (path, r.text[:200])
        vary = {v.strip().lower() for v in r.headers.get("vary", "").split(",")}
        assert "accept" in vary, (path, r.headers.get("vary"))
        assert r.headers["cache-control"] == "no-cache", path
    for path in (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/1.2.3/instances/1.2.3.4/metadata",
                 "/studies/1.2.3/archive.zip", "/dicomweb/studies/..%2f..%2fetc/series"):  # fmt: skip
        r = server.get(path)
        assert r.status_code in (400, 404) and r.headers["cache-control"] == "no-store", path
    r = server.get(instance, headers={"Accept": "application/dicom; transfer-syntax=1.2.3.4"})
    assert r.status_code == 406 and r.headers["cache-control"] == "no-store"


def test_fetch_restarts_when_a_206_does_not_continue_its_part() -> None:
    from medcodec.service.client import _continues

    def resp(etag: str | None, content_range: str | None) -> httpx.Response:
        headers = {k: v for k, v in (("etag", etag), ("content-range", content_range)) if v is not None}
        return httpx.Response(206, headers=headers)

    assert _continues(resp('"a"', "bytes 100-199/200"), 100, '"a"')
    assert not _continues(resp('"b"', "bytes 100-199/200"), 100, '"a"')  # another archive's bytes
    assert not _continues(resp('"a"', "bytes 0-199/200"), 100, '"a"')  # not where the part ends
    assert not _continues(resp(None, "bytes 100-199/200"), 100, '"a"')
    assert not _continues(resp('"a"', None), 100, '"a"')


# --------------------------------------------------------------------------- behind a real cache


def _nginx_conf(folder: Path, routes: dict[int, str]) -> Path:
    """A caching reverse proxy as a CDN recipe has it: keeps 200 / 206 answers that say nothing
    for 10 minutes (``proxy_cache_valid``), honours Cache-Control, revalidates with validators;
    ``X-Cache-Status`` tells a hit from a miss. ``routes``: listen port -> origin URL."""
    for sub in ("cache", "tmp"):
        (folder / sub).mkdir(exist_ok=True)
    servers = "".join(
        f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {origin};
            proxy_cache c;
            proxy_cache_valid 200 206 10m;
            proxy_cache_revalidate on;
            proxy_http_version 1.1;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}"""
        for port, origin in routes.items()
    )
    tmp = folder / "tmp"
    conf = folder / "nginx.conf"
    conf.write_text(f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {folder}/cache levels=1:2 keys_zone=c:1m max_size=300m inactive=1h use_temp_path=off;
    {servers}
}}
""")
    return conf


@pytest.fixture
def nginx(tmp_path: Path):
    """``nginx({port: origin})`` starts nginx with :func:`_nginx_conf`; stopped at teardown."""
    binary = require_tool("nginx")
    started: list[subprocess.Popen[bytes]] = []

    def start(routes: dict[int, str]) -> None:
        (tmp_path / "nginx").mkdir()
        conf = _nginx_conf(tmp_path / "nginx", routes)
        proc = subprocess.Popen([binary, "-p", str(tmp_path / "nginx"), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        started.append(proc)
        deadline = time.monotonic() + 20
        for port in routes:
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, (tmp_path / "nginx" / "error.log").read_text()[-2000:]
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _part_syntax(body: bytes) -> str:
    """The transfer-syntax of a multipart/related answer's first part."""
    head = body[: body.find(b"\r\n\r\n", body.find(b"Content-Type"))].decode("latin-1")
    return head.split("transfer-syntax=")[1].split(";")[0].split("\r")[0].strip().strip('"')


def _zip_names(data: bytes) -> list[str]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    return [n for n in zf.namelist() if n != "manifest.json"]


def test_behind_a_caching_proxy_nobody_gets_an_old_study_a_wrong_syntax_or_anothers_data(
    shared_data: Path, tmp_path: Path, spawn_server, nginx
) -> None:
    from medcodec.delivery import open_store

    slices = sorted((shared_data / CHEST).glob("*.dcm"))[:4]
    store_path = tmp_path / "store"
    with open_store(store_path) as store:
        assert store.ingest(slices[:3], precompress=True).ok
    _, origin, _ = spawn_server(store_path)
    _, origin_token, _ = spawn_server(store_path, extra=["--token", TOKEN])
    cdn, cdn_token = free_port(), free_port()
    nginx({cdn: origin, cdn_token: origin_token})
    ds = pydicom.dcmread(slices[0], stop_before_pixels=True)
    study = str(ds.StudyInstanceUID)
    archive = f"/studies/{study}/archive.zip?preset=diagnostic"

    # the stable URL: never an old study (it was a cache HIT with 3 files after the 4th came)
    first = httpx.get(f"http://127.0.0.1:{cdn}{archive}", timeout=60)
    assert first.status_code == 200 and len(_zip_names(first.content)) == 3
    assert httpx.get(f"http://127.0.0.1:{cdn}{archive}", timeout=60).content == first.content
    with open_store(store_path) as store:
        assert store.ingest(slices[3:], precompress=True).ok
    after = httpx.get(f"http://127.0.0.1:{cdn}{archive}", timeout=60)
    direct = httpx.get(origin + archive, timeout=60)
    assert after.headers["etag"] == direct.headers["etag"] != first.headers["etag"]
    assert len(_zip_names(after.content)) == 4
    # its versioned URL is what a CDN keeps; the old version is gone at the origin
    versioned = after.headers["content-location"]
    a = httpx.get(f"http://127.0.0.1:{cdn}{versioned}", timeout=60)
    b = httpx.get(f"http://127.0.0.1:{cdn}{versioned}", timeout=60)
    assert a.content == b.content == after.content and b.headers["x-cache-status"] == "HIT"
    assert httpx.get(origin + first.headers["content-location"], timeout=60).status_code == 404

    # WADO-RS: each client gets the syntax it asked for, whoever asked first
    instance = (f"/dicomweb/studies/{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}")
    for ts in (JPEG_12, EXPLICIT, JPEG_12, "*"):
        accept = {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={ts}'}
        r = httpx.get(f"http://127.0.0.1:{cdn}{instance}", headers=accept, timeout=60)
        mine = httpx.get(origin + instance, headers=accept, timeout=60)
        assert r.status_code == mine.status_code == 200
        assert _part_syntax(r.content) == _part_syntax(mine.content) == (ts if ts != "*" else _part_syntax(r.content))
        assert ts != EXPLICIT or _part_syntax(r.content) == EXPLICIT
    # a 404 is not kept (a study ingested after it would stay unknown)
    missing = "/dicomweb/studies/1.2.826.0.1.3680043.2.1143.999/metadata"
    assert httpx.get(f"http://127.0.0.1:{cdn}{missing}", timeout=60).status_code == 404
    assert httpx.get(f"http://127.0.0.1:{cdn}{missing}", timeout=60).headers["x-cache-status"] != "HIT"

    # with a token: what one authorised client fetched is not given to a client without it
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in (archive, instance, versioned):
        got = httpx.get(f"http://127.0.0.1:{cdn_token}{path}", headers=auth, timeout=60)
        assert got.status_code == 200 and "private" in got.headers["cache-control"], path
        assert "public" not in got.headers["cache-control"]
        again = httpx.get(f"http://127.0.0.1:{cdn_token}{path}", timeout=60)
        assert again.status_code == 401, (path, again.headers.get("x-cache-status"))


def test_conditional_requests_after_a_second_look(server):
    """A second outside audit of these rules (2026-12-02): If-Match on an unknown study's archive
    was 412 (RFC 9110 §13.2.1: 404); the 304 left out Content-Location; an asctime
    If-Modified-Since, If-Unmodified-Since and a dated If-Range were ignored; a quoted, padded or
    repeated version= was taken as the immutable one."""
    url = _archive(server)
    full = server.get(url)
    etag, modified, location = full.headers["etag"], full.headers["last-modified"], full.headers["content-location"]
    assert server.get("/studies/1.2.3.4/archive.zip", headers={"If-Match": '"x"'}).status_code == 404
    r = server.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.headers["content-location"] == location
    from email.utils import parsedate_to_datetime

    asctime = parsedate_to_datetime(modified).strftime("%a %b %d %H:%M:%S %Y").replace(" 0", "  ", 1)
    assert server.get(url, headers={"If-Modified-Since": asctime}).status_code == 304
    r = server.get(url, headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 412 and r.headers["cache-control"] == "no-store"
    assert server.get(url, headers={"If-Unmodified-Since": modified}).status_code == 200
    r = server.get(url, headers={"Range": "bytes=0-9", "If-Range": modified})
    assert r.status_code == 206 and r.content == full.content[:10]
    r = server.get(url, headers={"Range": "bytes=0-9", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200 and r.content == full.content
    tag = etag.strip('"')
    for bad in (f'"{tag}"', f" {tag}", tag.upper()):
        assert server.get(_archive(server, version=bad.replace(" ", "%20").replace('"', "%22"))).status_code == 400
    assert server.get(_archive(server, version=tag) + f"&version={tag}").status_code == 400
    assert "live" not in server.get(_archive(server, version="")).json()["detail"]
