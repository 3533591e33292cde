"""What the server sends a browser cannot be turned against its user (``service/security.py``).

An outside audit (2026-12-05) ran script on the server's origin from an Encapsulated Document
declared ``text/html``, read every study from a page of another site under a name rebound to
127.0.0.1, framed the viewer from anywhere, and crashed the bulk data answer with a MIME type
holding a line break. Checked here in Debian's chromium and with plain requests.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from test_viewer import VIEWPORT, browser  # noqa: F401 (fixture)

from medcodec.errors import InvalidInputError
from medcodec.service.settings import Settings
from medcodec.testing.server import stow_body

SCRIPT = b"<html><body><script>document.title = 'XSS-RAN';</script></body></html>"


def _document(mime: str, content: bytes, study: str) -> tuple[bytes, str]:
    """An Encapsulated PDF Storage instance declaring ``mime``; its bulk data path."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Doc^Test", "DOC-1", "DOC"
    ds.MIMETypeOfEncapsulatedDocument = mime
    ds.EncapsulatedDocument = content + b"\0" * (len(content) % 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    path = f"/dicomweb/studies/{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/bulkdata/00420011"
    return out.getvalue(), path


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from medcodec.testing.server import start_server, stop_server

    store = tmp_path_factory.mktemp("safety") / "store"
    proc, url, log = start_server(store)
    study = generate_uid()
    made = {name: _document(mime, SCRIPT, study) for name, mime in
            (("html", "text/html"), ("svg", "image/svg+xml"), ("crlf", "text/plain\r\nX-Injected:yes"))}  # fmt: skip
    body, content_type = stow_body(*(data for data, _ in made.values()))
    assert httpx.post(f"{url}/dicomweb/studies", content=body, headers={"Content-Type": content_type}).status_code == 200
    try:
        yield url, {name: path for name, (_, path) in made.items()}, log
    finally:
        stop_server(proc)


def test_a_stored_html_document_runs_no_script_in_a_browser(documents: Any, browser: Any) -> None:
    url, paths, _log = documents
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(url + paths["html"])
        assert page.title() != "XSS-RAN"  # the document is shown, its script does not run
        assert page.evaluate("() => { try { return localStorage.length, 'origin' } catch (e) { return 'none' } }") == "none"
    finally:
        context.close()
    for name in ("html", "svg"):
        r = httpx.get(url + paths[name], timeout=30)
        assert r.status_code == 200 and r.content.startswith(b"<html>")
        assert "sandbox" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"


def test_a_mime_type_with_a_line_break_is_octet_stream(documents: Any) -> None:
    url, paths, log = documents
    r = httpx.get(url + paths["crlf"], timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert "x-injected" not in r.headers and r.content.startswith(b"<html>")
    assert "Traceback" not in log.read_text()


def test_a_server_without_a_token_answers_for_loopback_names_only(documents: Any) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 is refused (421)."""
    url, _paths, _log = documents
    port = url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1", f"localhost.:{port}", f"[::1]:{port}",
                 "127.1", "2130706433", "127.0.0.1."):  # fmt: skip
        assert httpx.get(url + "/dicomweb/studies", headers={"Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", "127.0.0.1.evil.example", f"pacs.example.org:{port}"):
        r = httpx.get(url + "/dicomweb/studies", headers={"Host": host})
        assert r.status_code == 421 and r.json()["error"] == "MisdirectedRequestError", host
        assert r.headers["cache-control"] == "no-store"
    body, content_type = stow_body(b"not dicom")
    r = httpx.post(url + "/dicomweb/studies", content=body, headers={"Content-Type": content_type, "Host": "evil.example"})
    assert r.status_code == 421  # nothing written under a foreign name either
    assert httpx.get(url + "/health", headers={"Host": "probe.internal"}).status_code == 200  # no data there


def test_the_viewer_cannot_be_framed_and_every_answer_says_nosniff(documents: Any) -> None:
    url, _paths, _log = documents
    viewer = httpx.get(url + "/viewer/")
    assert viewer.status_code == 200 and viewer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in viewer.headers["content-security-policy"]
    assert "script-src 'self'" in viewer.headers["content-security-policy"]
    for path in ("/dicomweb/studies", "/health", "/no/such/route", "/viewer/api/studies/1.2.3/series/1.2.4/stack"):
        r = httpx.get(url + path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert "sandbox" in r.headers["content-security-policy"], path


def test_cors_for_every_origin_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="needs a bearer token"):
        Settings(store="x", cors_origins=("*",))
    Settings(store="x", cors_origins=("*",), token="a-token-of-16-chars-or-more")
    Settings(store="x", cors_origins=("http://localhost:3000",))  # a named origin is the operator's choice
