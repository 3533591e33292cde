"""The download client of ``medcodec fetch``: resumes with Range, verifies what it got.

Flow for ``fetch(url, study=..., preset=...)``::

    GET {url}/studies/{study}[/series/{series}]/archive.zip?preset=NAME
      into DIR/<name>.zip.part (+ <name>.zip.part.etag: the ETag the bytes belong to)
    interrupted? the next call sends Range: bytes=<have>- and If-Range: <etag>
      206 → append (only when its ETag and Content-Range continue the .part; else start over);
      200 (the archive changed, or a live one) → start over
    done: size = Content-Length, sha256 = ETag (a pre-computed archive's ETag, 64 hex digits, is
          the sha256 of the ZIP; an assembled ``original`` one's, ``a-`` + 64, is not),
          the ZIP reads back (every CRC-32) and has manifest.json → rename to DIR/<name>.zip

Live archives have no length or ETag: they cannot be resumed, only restarted, and are
verified by their CRC-32s and manifest; a live download that fails leaves nothing behind.
Network failures are retried (``retries`` in a row without progress), each retry resuming
where the last one stopped: every byte received is on disk before the next is read, so a link
that drops every few hundred kilobytes still finishes (until 2026-12-02 the bytes after the last
whole MiB were lost at each drop, and such a link never did: an outside audit). An archive that
fails its check is downloaded once more from the first byte (until 2026-12-03 the run stopped,
and only the next one, started by hand, could finish).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, OutputExistsError
from .errors import ServiceError

__all__ = ["fetch", "FetchError", "IntegrityError", "verify_archive", "INTEGRITY_RETRIES"]

#: downloads started again after a failed check within one run: a damaged transfer is mended by
#: one; the same failure twice is the server's own archive, which more downloads would not mend
INTEGRITY_RETRIES = 1


class FetchError(ServiceError):
    """The server answered with an error, or the download could not complete."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class IntegrityError(FetchError):
    """The downloaded archive does not match its ETag / length, or is not a valid ZIP."""


def _archive_url(url: str, study: str, series: str | None) -> str:
    from ..delivery.uids import validate_uid

    base = url.rstrip("/")
    if not base.lower().startswith(("http://", "https://")):  # retrying would not help
        raise InvalidInputError(f"URL {url!r} must start with http:// or https://")
    path = f"/studies/{validate_uid(study, what='Study Instance UID')}"
    if series:
        path += f"/series/{validate_uid(series, what='Series Instance UID')}"
    return f"{base}{path}/archive.zip"


def verify_archive(path: Path, *, etag: str | None = None, size: int | None = None) -> dict[str, Any]:
    """Check a downloaded archive; returns ``{"files": n, "sha256": hex, "bytes": size}``.

    Raises
    ------
    IntegrityError
        Wrong size, sha256 different from a strong ETag, a bad CRC-32, or no ``manifest.json``.
    """
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise IntegrityError(f"{path}: {actual} bytes, the server announced {size}")
    sha = _sha256(path)
    if etag is not None:
        tag = etag.strip()
        if _is_sha256_etag(tag) and tag.strip('"') != sha:
            raise IntegrityError(f"{path}: sha256 {sha} does not match the ETag {tag}")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_layout(path, infos)  # before anything is inflated
            names = [info.filename for info in infos]
            sizes = {info.filename: info.file_size for info in infos}
            if "manifest.json" in sizes and sizes["manifest.json"] > MAX_MANIFEST_BYTES:
                raise IntegrityError(
                    f"{path}: manifest.json declares {sizes['manifest.json']} bytes, more than a manifest holds"
                )
            bad = zf.testzip()
            manifest = zf.read("manifest.json") if "manifest.json" in names else None
    except IntegrityError:
        raise
    except (zipfile.BadZipFile, OSError, zlib.error, EOFError, NotImplementedError, ValueError, RuntimeError) as exc:
        # a damaged entry: zlib's "invalid literal/lengths set", a compression method or a
        # flag bit flipped, a stream cut short (the ZIP metadata outside the CRCs of a live archive)
        raise IntegrityError(f"{path}: not a readable ZIP ({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise IntegrityError(f"{path}: entry {bad!r} fails its CRC-32")
    if manifest is None:
        raise IntegrityError(f"{path}: no manifest.json in the archive")
    _check_manifest(path, manifest, names, sizes)
    return {"files": len(names) - 1, "sha256": sha, "bytes": actual}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: A manifest.json larger than this is refused before it is read (one of 100,000 files is ~40 MB).
MAX_MANIFEST_BYTES = 256 << 20


def _check_layout(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Each name once, and each entry's bytes its own: ZIP bombs that point many entries at one
    deflated block (5 TiB from 1 MB of directory), or repeat a name so that the one unpacked is
    not the one checked, are refused before anything is inflated (an outside audit, 2026-12-05)."""
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise IntegrityError(f"{path}: entry {info.filename!r} is in the archive more than once")
        seen.add(info.filename)
    end = -1
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise IntegrityError(f"{path}: entry {info.filename!r} overlaps the one before it (a ZIP bomb's layout)")
        end = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size


def _check_manifest(path: Path, manifest: bytes, names: list[str], sizes: dict[str, int] | None = None) -> None:
    """The manifest lists every file of the archive once, and nothing else (its ``file`` names),
    with its size (``bytes``, when given, is the entry's); every entry name stays inside the folder
    it is unpacked to (no absolute path, no ``..``, nothing that is the folder itself, no file that
    is also a folder of another entry)."""
    import json

    try:
        rows = json.loads(manifest)["files"]
        listed = [str(entry["file"]) for entry in rows]
        declared = {str(entry["file"]): entry.get("bytes") for entry in rows}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{path}: manifest.json is not a medcodec manifest ({type(exc).__name__}: {exc})") from exc
    files = [n for n in names if n != "manifest.json"]
    if sorted(listed) != sorted(files):
        extra, missing = sorted(set(files) - set(listed)), sorted(set(listed) - set(files))
        raise IntegrityError(
            f"{path}: manifest.json and the archive disagree: {len(extra)} file(s) not listed {extra[:3]}, "
            f"{len(missing)} listed but absent {missing[:3]}"
        )
    if len(set(listed)) != len(listed):
        raise IntegrityError(f"{path}: manifest.json lists a file more than once")
    for name, size in declared.items():
        if sizes is not None and isinstance(size, int) and sizes.get(name) != size:
            raise IntegrityError(f"{path}: entry {name!r} holds {sizes.get(name)} bytes, the manifest says {size}")
    folders = {"/".join(n.split("/")[:k]) for n in names for k in range(1, n.count("/") + 1)}
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith("/") or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise IntegrityError(f"{path}: entry {name!r} would land outside the folder it is unpacked to")
        if not name.strip("/.") or all(p in ("", ".") for p in parts) or name in folders:
            raise IntegrityError(f"{path}: entry {name!r} is no file of its own in the folder it is unpacked to")


def fetch(
    url: str,
    *,
    study: str,
    preset: str = "diagnostic",
    out_dir: str | os.PathLike[str] = ".",
    series: str | None = None,
    live: bool = False,
    token: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    extract: bool = False,
    ca_cert: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    notice: Callable[[str], None] | None = None,
) -> Path:
    """Download (resuming) and verify an archive; returns the path of the ``.zip``.

    Parameters
    ----------
    url
        The server's base URL (``http://127.0.0.1:8044``).
    study, series
        Which archive.
    preset
        ``original``, ``lossless``, ``near-lossless``, ``diagnostic``, ``preview``.
    out_dir
        Where the ``.zip`` goes (and its files, with ``extract``).
    live
        Ask for on-the-fly compression even when a pre-computed archive exists.
    token
        Bearer token.
    retries
        Network failures tolerated in a row without progress; each retry resumes (a pre-computed
        archive; a live one starts over, and every failure counts). With ``retries`` >= 1, an
        archive that fails its check is downloaded once more from the first byte
        (:data:`INTEGRITY_RETRIES`): a byte damaged on the way, or a ``.part`` an earlier run
        left that does not continue into the server's bytes, costs one download, not the run.
    timeout
        Seconds without a byte (connecting, or between two reads) before a try counts as a
        network failure.
    progress
        ``(bytes so far, total or None)`` after every chunk.
    extract
        Also unpack the archive into ``out_dir/<name>/`` (all or nothing: a staging folder
        renamed into place).
    overwrite
        Replace the ``.zip`` (and, with ``extract``, the folder) when it exists; without it an
        existing one is an :class:`~medcodec.errors.OutputExistsError` before any byte is asked for.
    ca_cert
        PEM file of the certificate authority (or self-signed certificate) an ``https`` server is
        checked against, instead of the system's ones.
    notice
        Called with a line of text when a download is started again after a failed check (the
        CLI prints it).

    Raises
    ------
    FetchError
        An HTTP error status (its JSON ``detail`` quoted) or too many network failures.
    IntegrityError
        The result does not verify, twice in a row (or once with ``retries=0``); nothing is kept.
    """
    import httpx

    if retries < 0:
        raise InvalidInputError(f"retries={retries!r} must be >= 0")
    if token is not None and not all(0x21 <= ord(c) <= 0x7E for c in token):
        # a line end from a CRLF .env file went out in the error message, the token with it, after
        # pointless retries (an outside audit, 2026-12-05): said without the token
        raise InvalidInputError(
            "the token holds a character an HTTP header cannot carry (a space, a line end, a non-ASCII "
            "letter): check how it was set (a .env file with Windows line ends?)"
        )
    if not _PRESET_NAME.fullmatch(preset):  # it is part of the file name: no folder may come of it
        raise InvalidInputError(f"preset {preset!r} is not a preset name (letters, digits, '-', '_')")
    verify: Any = True
    if ca_cert is not None:
        import ssl

        try:
            verify = ssl.create_default_context(cafile=os.fspath(ca_cert))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(f"--ca-cert {os.fspath(ca_cert)!r}: {exc}") from exc
    target_url = _archive_url(url, study, series)
    params = {"preset": preset, **({"live": "1"} if live else {})}
    out = Path(out_dir)
    name = f"{study}{'_' + series if series else ''}_{preset}.zip"
    dest = out / name[: -len(".zip")]
    final, part = out / name, out / (name + ".part")
    # the bytes as the server holds them: a Content-Encoding httpx decoded turned a 1 MB answer into
    # 1 GB on disk, nested gzip into 2 GB of memory, and a proxy's gzip of the real archive failed
    # its check (an outside audit, 2026-12-05)
    headers = {"Accept-Encoding": "identity", **({"Authorization": f"Bearer {token}"} if token else {})}
    if extract and final.exists() and not dest.exists() and not overwrite:
        # an earlier run downloaded and verified it, and could not unpack it (a full disk):
        # unpacked now if it still is the server's current archive, not downloaded again
        if _is_current(final, target_url, params, headers, timeout, verify):
            verify_archive(final)
            _unpack(final, dest)
            _kept_etag_file(final).unlink(missing_ok=True)
            return final
    for existing in (final, dest) if extract else (final,):  # before any byte: nothing to undo
        if existing.exists() and not overwrite:
            raise OutputExistsError(f"{existing}: exists already (remove it, or pass overwrite=True)")
    out.mkdir(parents=True, exist_ok=True)
    tag_file = out / (name + ".part.etag")
    failures = damaged = answered = 0
    while True:
        have = before = part.stat().st_size if part.exists() else 0
        etag = tag_file.read_text().strip() if tag_file.exists() else None
        if etag is not None and not _usable_etag(etag):
            etag = None
        total: int | None
        req_headers = dict(headers)
        if have and etag:
            req_headers["Range"] = f"bytes={have}-"
            req_headers["If-Range"] = etag
        try:
            with (
                httpx.Client(timeout=timeout, verify=verify) as client,
                client.stream("GET", target_url, params=params, headers=req_headers) as resp,
            ):
                restart = ""  # the .part is not the beginning of this archive: start over from the first byte
                if resp.status_code == 416 and have and _archive_length(resp) not in (None, have):
                    # longer than the archive (bytes after its end, or another one's), whatever its
                    # entries say (an outside audit, 2026-12-03)
                    restart = f"the kept {part.name} is longer than the archive"
                elif resp.status_code == 206 and not _continues(resp, have, etag):
                    # not the rest of the bytes we hold (another archive's, a proxy's mix-up: an
                    # outside audit, 2026-12-02)
                    restart = "the server's 206 answers do not continue the download"
                if restart:
                    part.unlink(missing_ok=True)
                    tag_file.unlink(missing_ok=True)
                    failures += 1
                    if failures > retries:
                        raise FetchError(f"{target_url}: {restart}")
                    continue
                if resp.status_code == 416 and have:  # nothing left to send: the .part is complete
                    total, new_etag = have, etag
                elif resp.status_code in (200, 206):
                    answered += 1  # a cut after this is the server's doing as much as the network's
                    coding = resp.headers.get("content-encoding", "identity").strip().lower()
                    if coding not in ("", "identity"):
                        raise FetchError(f"{target_url}: the answer is {coding}-encoded, though asked for as it is "
                                         "(a proxy between?); nothing was kept")  # fmt: skip
                    new_etag = resp.headers.get("etag")
                    if new_etag is not None and not _usable_etag(new_etag):
                        new_etag = None  # not an ETag that can be kept or sent back: no resume
                    if resp.status_code == 200:
                        have = 0  # the whole thing (new archive, live archive or no resume possible)
                    length = resp.headers.get("content-length")
                    total = have + int(length) if length is not None and length.strip().isdigit() else None
                    if total is not None:  # a 200 replaces the .part: its bytes are free to take
                        _check_room(out, total - have, part.stat().st_size if part.exists() and not have else 0)
                    with open(part, "r+b" if have else "wb") as fh:
                        fh.seek(have)
                        fh.truncate()
                        if new_etag:
                            tag_file.write_text(new_etag)
                        elif tag_file.exists():
                            tag_file.unlink()
                        done = have
                        for chunk in resp.iter_raw():  # as received: a drop loses nothing written
                            fh.write(chunk)
                            done += len(chunk)
                            if progress is not None:
                                progress(done, total)
                        fh.flush()
                        os.fsync(fh.fileno())
                else:
                    detail = _error_detail(resp, url)
                    wait = _retry_after(resp)
                    if wait is not None and failures < retries:  # busy (503 + Retry-After, 429...): later
                        failures += 1
                        if notice is not None:
                            notice(f"{target_url}: HTTP {resp.status_code}: {detail}; trying again in {wait:g} s")
                        time.sleep(wait)
                        continue
                    raise FetchError(f"{target_url}: HTTP {resp.status_code}: {detail}", status=resp.status_code)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # retrying would not help
            raise FetchError(f"{target_url}: {exc}") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            if _certificate_refused(exc):
                # a certificate this machine does not trust: the same on every try (was retried 4 times
                # and called a live archive that cannot be resumed; an outside audit, 2026-12-03)
                kept = _drop_unresumable(part, tag_file)
                raise FetchError(
                    f"{target_url}: the server's certificate is not trusted ({exc}); for a self-signed or a "
                    f"private CA's certificate, pass its PEM file with --ca-cert (ca_cert=); {kept}"
                ) from exc
            resumable = tag_file.exists() and tag_file.read_text().strip() == etag
            if resumable and part.exists() and part.stat().st_size > before:
                # the same archive, further on than before this try (not the same bytes again after a
                # 200: a server that ignores Range and cuts was retried for ever, an outside audit):
                # only failures in a row count
                failures = answered = 0
            failures += 1
            if failures > retries:
                kept = _drop_unresumable(part, tag_file)
                if answered >= failures:  # answered every time, then cut with nothing more sent
                    raise FetchError(
                        f"{target_url}: the server answered and cut the download {_plural(failures, 'time')} in a "
                        f"row at byte {have} (last: {exc}): not a network fault but one of the server's (its log "
                        f"says why; e.g. a damaged store: `medcodec store check`); {kept}"
                    ) from exc
                raise FetchError(
                    f"{target_url}: {_plural(failures, 'network failure')} in a row, last: {exc}; {kept}"
                ) from exc
            time.sleep(min(2.0, 0.2 * failures))
            continue
        except OSError as exc:  # writing the .part: a full disk, a lost share
            kept = _drop_unresumable(part, tag_file)
            raise FetchError(f"writing {part}: {exc.strerror or exc}; {kept}") from exc
        except BaseException:  # Ctrl-C, SIGTERM: a live download cannot resume, so nothing of it stays
            _drop_unresumable(part, tag_file)
            raise
        try:
            checked = verify_archive(part, etag=new_etag, size=total)
        except IntegrityError as exc:
            part.unlink(missing_ok=True)
            tag_file.unlink(missing_ok=True)
            if damaged >= INTEGRITY_RETRIES or retries == 0:
                raise
            # a byte damaged on the way (a faulty proxy, a resumed .part spliced from bytes that
            # were not the server's): once more from the first byte; the same failure twice is the
            # server's archive itself, and no further download would mend it
            damaged += 1
            if notice is not None:
                notice(f"{exc}; downloading it again from the first byte")
            continue
        os.replace(part, final)
        tag_file.unlink(missing_ok=True)
        if extract:
            if new_etag and not _is_sha256_etag(new_etag):
                # an assembled archive's ETag is not its sha256: kept beside it, so that a run after a
                # failed unpack can still ask whether it is current (_is_current)
                _kept_etag_file(final).write_text(f"{new_etag}\n{checked['sha256']}\n")
            _unpack(final, dest)
            _kept_etag_file(final).unlink(missing_ok=True)
        return final


#: What a preset name may be (it is part of the downloaded file's name).
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: Bytes of an error answer read for its message; seconds of a Retry-After honoured at most.
_ERROR_BODY_MAX, _RETRY_AFTER_MAX = 64 * 1024, 30.0


def _usable_etag(etag: str) -> bool:
    """An ETag that can be kept in a file and sent back in If-Range: printable ASCII, not too long
    (a non-ASCII one made every later run fail with an internal error, before any request)."""
    return 0 < len(etag) <= 256 and all(0x20 <= ord(c) <= 0x7E for c in etag)


def _printable(text: str, limit: int = 300) -> str:
    """Server text as it may be shown on a terminal: control characters (escape sequences that set
    the window title, clear the screen) replaced, at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text.replace("\n", " "))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _error_detail(resp: Any, url: str) -> str:
    """The ``detail`` of an error answer, read up to :data:`_ERROR_BODY_MAX` bytes (an endless 500
    took the client to 1.6 GB and a MemoryError), shown as :func:`_printable` text."""
    import json

    body = b""
    for chunk in resp.iter_raw():
        body += chunk
        if len(body) >= _ERROR_BODY_MAX:
            break
    kind = resp.headers.get("content-type", "").split(";")[0].strip()
    parsed: Any = None
    if "json" in kind:
        with contextlib.suppress(ValueError):
            parsed = json.loads(body[:_ERROR_BODY_MAX])
    if parsed is not None:
        detail = str(parsed.get("detail", parsed)) if isinstance(parsed, dict) else str(parsed)
    else:  # not medcodec's JSON: an HTML page, a proxy's or uvicorn's own text
        detail = f"a {kind or 'no content type'} answer, not medcodec's (is {url} a medcodec server?)"
    return _printable(detail)


def _retry_after(resp: Any) -> float | None:
    """Seconds to wait before asking again when the server is busy (429, 502, 503, 504: its
    Retry-After, at most :data:`_RETRY_AFTER_MAX`; 2 s without one), else ``None``."""
    if resp.status_code not in (429, 502, 503, 504):
        return None
    value = (resp.headers.get("retry-after") or "").strip()
    return min(_RETRY_AFTER_MAX, float(value)) if value.isdigit() else 2.0


def _free_bytes(folder: Path) -> int | None:
    """Bytes free for this user on ``folder``'s filesystem, ``None`` when it does not say."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _check_room(folder: Path, needed: int, reclaimed: int) -> None:
    """:class:`FetchError` before a byte is written when ``folder``'s filesystem has not ``needed``
    bytes free, ``reclaimed`` more counted (a Content-Length of 10^12 filled the disk and kept the
    junk to resume)."""
    free = _free_bytes(folder)
    if free is not None and needed > free + reclaimed:
        raise FetchError(f"the archive needs {needed} bytes and {folder} has {free + reclaimed} free: free space first")


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _certificate_refused(exc: BaseException) -> bool:
    """Whether a transport error is TLS refusing the server's certificate (not worth a retry)."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps ssl's
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _drop_unresumable(part: Path, tag_file: Path) -> str:
    """After a failed try: a ``.part`` without its ETag (a live archive) cannot be resumed, so it
    goes; one with it stays for the next run. Says which, for the error message."""
    if tag_file.exists():
        return f"the {part.name} is kept: run the same command again to resume"
    if not part.exists():  # nothing received (refused, unreachable): no archive to speak of
        return "nothing was received"
    part.unlink(missing_ok=True)
    return "a live archive cannot be resumed: nothing was kept"


def _is_sha256_etag(etag: str) -> bool:
    """A strong ETag of 64 hex digits: a pre-computed archive's, the sha256 of its bytes."""
    tag = etag.strip()
    return not tag.startswith("W/") and len(tag.strip('"')) == 64


def _kept_etag_file(archive: Path) -> Path:
    """Beside a downloaded archive whose unpacking is pending: its ETag when that is not its sha256."""
    return archive.with_name(archive.name + ".etag")


def _archive_length(resp: Any) -> int | None:
    """The length a 416 answer gives in ``Content-Range: bytes */N`` (``None``: not given)."""
    unit, _, spec = (resp.headers.get("content-range") or "").partition(" ")
    total = spec.partition("/")[2].strip()
    return int(total) if unit.lower() == "bytes" and total.isdigit() else None


def _is_current(
    archive: Path, target_url: str, params: dict[str, str], headers: dict[str, str], timeout: float, verify: Any
) -> bool:
    """Whether ``archive`` is what the server sends now: a HEAD with ``If-None-Match`` of its sha256
    (the strong ETag of a pre-computed archive), or of the ETag kept beside it (an assembled one's,
    :func:`_kept_etag_file`, while it still belongs to these bytes), answered 304. A live archive
    has no ETag: never."""
    import httpx

    sha = _sha256(archive)
    tag = f'"{sha}"'
    kept = _kept_etag_file(archive)
    if kept.exists():
        lines = kept.read_text().split()
        if len(lines) == 2 and lines[1] == sha:
            tag = lines[0]
    try:
        with httpx.Client(timeout=timeout, verify=verify) as client:
            resp = client.head(target_url, params=params, headers={**headers, "If-None-Match": tag})
    except httpx.HTTPError as exc:
        raise FetchError(f"{target_url}: {exc}") from exc
    return resp.status_code == 304


def _unpack(archive: Path, dest: Path) -> None:
    """:func:`_extract`, a failure said as what it is: the archive is downloaded, verified and kept."""
    try:
        _extract(archive, dest)
    except OSError as exc:
        advice = "free the space and run" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "mend that and run"
        raise FetchError(
            f"{archive} is downloaded and verified, but unpacking it into {dest} failed: {exc.strerror or exc}; "
            f"{advice} the same command again (it unpacks this archive if it is still current)"
        ) from exc


def _continues(resp: Any, have: int, etag: str | None) -> bool:
    """A 206 answer to ``Range: bytes=<have>-`` + ``If-Range: <etag>`` that really is the rest of
    those bytes: the same strong ETag, a ``Content-Range`` starting at ``have``."""
    unit, _, spec = (resp.headers.get("content-range") or "").partition(" ")
    first = spec.partition("-")[0].strip()
    return bool(etag) and resp.headers.get("etag") == etag and unit.lower() == "bytes" and first == str(have)


def _extract(archive: Path, dest: Path) -> None:
    """Unpack into ``dest`` (a new folder: made next to it, then renamed into place), every name
    checked to stay inside it (no ZIP slip; :func:`verify_archive` refused such names already)."""
    root = dest.resolve()
    staging = dest.with_name(f".{dest.name}.partial")
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if root not in target.parents:
                raise IntegrityError(f"{archive}: entry {info.filename!r} would land outside {dest}")
        needed = sum(info.file_size for info in zf.infolist())
        free = _free_bytes(dest.parent)
        if free is not None and needed > free:  # before a byte is written (a 4 GiB bomb filled the disk)
            raise OSError(errno.ENOSPC, f"No space left on device: {needed} bytes to unpack, {free} free")
        if staging.is_symlink() or staging.is_file():  # left by an archive that made it a file
            staging.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        old = dest.with_name(f".{dest.name}.old")
        try:
            zf.extractall(staging)
            if dest.exists():  # overwrite (the caller checked): the old one moves aside, then goes
                shutil.rmtree(old, ignore_errors=True)
                os.replace(dest, old)
            os.replace(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
