"""Pure HTTP helpers (no I/O): Accept negotiation, byte ranges, multipart/related in and out.

They raise domain exceptions (:mod:`medcodec.service.errors` maps them to status codes):
``InvalidInputError`` for malformed input, :class:`RangeNotSatisfiableError` for ranges past
the end, :class:`UnsupportedMediaTypeError` for bodies of the wrong type.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import InvalidInputError
from .errors import RangeNotSatisfiableError, UnsupportedMediaTypeError

__all__ = [
    "MediaRange",
    "parse_accept",
    "parse_media_type",
    "parse_range",
    "parse_decimal",
    "new_boundary",
    "multipart_part_header",
    "multipart_end",
    "iter_multipart",
]

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_DECIMAL = re.compile(r"[0-9]+")
#: :func:`parse_decimal` gives this for anything larger: past every bound a caller checks against
#: (``int()`` of a long string costs quadratic time and refuses past 4,300 digits)
DECIMAL_CAP = 10**30
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^;,\s]*)")


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` (lower case), parameters, quality."""

    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        """``*/*``, ``image/*`` or the exact type."""
        if self.type in ("*/*", media_type):
            return True
        major, _, minor = self.type.partition("/")
        return minor == "*" and media_type.startswith(major + "/")


def parse_decimal(text: str, /) -> int | None:
    """A non-negative integer written in ASCII digits (blanks around allowed), else ``None``.

    The one test for the numbers of a request (query parameters, frame numbers, byte ranges):
    ``str.isdigit`` is not it, it accepts ``'²'``, which ``int`` refuses. A number past
    :data:`DECIMAL_CAP` is returned as :data:`DECIMAL_CAP`.

    >>> parse_decimal(" 042"), parse_decimal("\u00b2"), parse_decimal("-1"), parse_decimal("")
    (42, None, None, None)
    """
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    digits = text.lstrip("0")
    return DECIMAL_CAP if len(digits) > 30 else int(digits or "0")


def parse_media_type(text: str) -> MediaRange:
    """``type/subtype; a=b; c="d"`` -> :class:`MediaRange` (parameter names lower case).

    >>> m = parse_media_type('multipart/related; type="application/dicom"; transfer-syntax=*')
    >>> m.type, m.params
    ('multipart/related', {'type': 'application/dicom', 'transfer-syntax': '*'})
    """
    ranges = _parse(text, single=True)
    if not ranges:
        raise InvalidInputError(f"media type {text!r} is malformed")
    return ranges[0]


def parse_accept(header: str | None) -> list[MediaRange]:
    """Accept header -> media ranges, best first (stable for equal ``q``); ``*/*`` when absent.

    Ranges with ``q=0`` (not acceptable, RFC 9110 §12.4.2) are left out: a header of only those
    gives an empty list, and the caller answers 406 (nothing it can send is acceptable).

    >>> [(m.type, m.params.get("transfer-syntax"), m.q) for m in parse_accept(
    ...     'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.51; q=0.5, */*;q=0.1')]
    [('multipart/related', '1.2.840.10008.1.2.4.51', 0.5), ('*/*', None, 0.1)]
    """
    if header is None or not header.strip(" \t,"):  # empty list elements are ignored (RFC 9110 §5.6.1)
        return [MediaRange("*/*")]
    ranges = _parse(header, single=False)
    if not ranges:
        raise InvalidInputError(f"Accept header {header!r} is malformed")
    return sorted((m for m in ranges if m.q > 0), key=lambda m: -m.q)


def _parse(text: str, *, single: bool) -> list[MediaRange]:
    out: list[MediaRange] = []
    pos, n = 0, len(text)
    while pos < n:
        m = re.compile(rf"\s*({_TOKEN}/{_TOKEN})").match(text, pos)
        if not m:
            if text[pos:].strip(" ,") == "":
                break
            raise InvalidInputError(f"media type list {text!r} is malformed at character {pos}")
        mtype, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        q = 1.0
        while True:
            p = _PARAM.match(text, pos)
            if not p:
                break
            name, value = p.group(1).lower(), p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    raise InvalidInputError(f"q={value!r} in {text!r} is not a number") from None
                if not 0 <= q <= 1:
                    raise InvalidInputError(f"q={value} in {text!r} is outside 0..1")
            else:
                params[name] = value
            pos = p.end()
        rest = text[pos:].lstrip()
        if rest and not rest.startswith(","):
            raise InvalidInputError(f"media type list {text!r} is malformed at character {pos}")
        pos = n - len(rest) + (1 if rest else 0)
        out.append(MediaRange(mtype, params, q))
        if single:
            break
    return out


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """``Range: bytes=...`` -> satisfiable ``(start, end_inclusive)`` pairs; ``None`` for a range
    unit other than ``bytes``, which the caller ignores (RFC 9110 §14.2). A last position past the
    end is clipped to it (§14.1.2), however many digits it has. Several ranges come in request
    order unless two overlap or touch: then they are sorted and coalesced (§14.6 allows it), so
    an answer never holds more bytes than the representation (32 times ``0-`` asked a 34 MB
    archive for 1.09 GB until 2026-12-02: an outside audit, RFC 9110 §17.13).

    Parameters
    ----------
    header
        The header's value (RFC 9110 §14.1.2).
    size
        The representation's length.

    Raises
    ------
    InvalidInputError
        A ``bytes=`` range set that is empty or malformed (400).
    RangeNotSatisfiableError
        No range overlaps ``0..size-1`` (416).

    >>> parse_range("bytes=0-9, 50-59, 20-29", 100)
    [(0, 9), (50, 59), (20, 29)]
    >>> parse_range("bytes=0-9, 20-, -5", 100), parse_range("bytes=0-,0-,0-", 100)
    ([(0, 9), (20, 99)], [(0, 99)])
    >>> parse_range("bytes=90-99999999999999999999", 100), parse_range("items=0-1", 100)
    ([(90, 99)], None)
    """
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if not specs.strip():
        raise InvalidInputError(f"Range {header!r} is not a 'bytes=' range")
    items = [s.strip() for s in specs.split(",") if s.strip()]
    if not items or len(items) > 32:
        raise InvalidInputError(f"Range {header!r}: expected 1..32 ranges")
    out: list[tuple[int, int]] = []
    for spec in items:
        m = re.fullmatch(r"([0-9]*)-([0-9]*)", spec)
        if not m or (not m.group(1) and not m.group(2)):
            raise InvalidInputError(f"Range {header!r}: {spec!r} is malformed")
        first, last = parse_decimal(m.group(1)), parse_decimal(m.group(2))  # None when absent
        if first is not None:
            end = size - 1 if last is None else last
            if last is not None and last < first:
                raise InvalidInputError(f"Range {header!r}: {spec!r} ends before it starts")
            if first >= size:
                continue
            out.append((first, min(end, size - 1)))
        else:
            length = last or 0
            if length == 0 or size == 0:
                continue
            out.append((max(0, size - length), size - 1))
    if not out:
        raise RangeNotSatisfiableError(f"Range {header!r} is outside the {size} bytes of the archive", size=size)
    ordered = sorted(out)
    if all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ordered)):
        return out
    merged = [ordered[0]]
    for start, end in ordered[1:]:
        if start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def new_boundary() -> str:
    """A multipart boundary that cannot occur by chance in the parts."""
    return "medcodec-" + secrets.token_hex(16)


def multipart_part_header(boundary: str, content_type: str, extra: dict[str, str] | None = None) -> bytes:
    """The delimiter and headers that open one part (RFC 2046 §5.1.1)."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def multipart_end(boundary: str) -> bytes:
    """The closing delimiter."""
    return f"--{boundary}--\r\n".encode("latin-1")


def iter_multipart(body: bytes | bytearray, content_type: str) -> Iterator[tuple[dict[str, str], memoryview]]:
    """Parts of a ``multipart/related`` body: ``(headers, content)``, content not copied.

    Raises
    ------
    UnsupportedMediaTypeError
        ``content_type`` is not multipart or has no boundary (415).
    InvalidInputError
        The body does not follow the multipart syntax (400).
    """
    try:
        media = parse_media_type(content_type)
    except InvalidInputError as exc:
        raise UnsupportedMediaTypeError(f"Content-Type {content_type!r} is malformed") from exc
    boundary = media.params.get("boundary")
    if not media.type.startswith("multipart/") or not boundary:
        raise UnsupportedMediaTypeError(f"Content-Type {content_type!r}: expected multipart/related with a boundary")
    delim = b"--" + boundary.encode("latin-1")
    view = memoryview(body)
    start = body.find(delim)
    if start < 0:
        raise InvalidInputError("multipart body has no boundary delimiter")
    pos = start + len(delim)
    while True:
        if body.startswith(b"--", pos):
            return
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise InvalidInputError("multipart body ends inside a delimiter line")
        head_end = body.find(b"\r\n\r\n", eol)
        if head_end < 0:
            raise InvalidInputError("multipart part has no end of headers")
        headers: dict[str, str] = {}
        for line in body[eol + 2 : head_end].split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise InvalidInputError(f"multipart header line {line[:80]!r} is malformed")
            headers[name.strip().lower()] = value.strip()
        content_start = head_end + 4
        nxt = body.find(b"\r\n" + delim, content_start)
        if nxt < 0:
            raise InvalidInputError("multipart body is truncated: no closing delimiter")
        yield headers, view[content_start:nxt]
        pos = nxt + 2 + len(delim)


def base_url(request: Any) -> str:
    """The URL clients reach the server at, without trailing slash, for absolute URLs in answers:
    ``--public-url`` when given, else the request's own (scheme, Host, root path).

    A client that leaves the port out of its Host header while connecting to a non-default port
    (dicomweb-client 0.59 sends ``Host: 127.0.0.1`` for ``http://127.0.0.1:8044``) gets the port
    it connected to; not when a proxy's Forwarded / X-Forwarded-* headers say someone else chose the
    Host (then ``--public-url`` is the way)."""
    public = request.app.state.settings.public_url
    if public:
        return str(public).rstrip("/")
    url = str(request.base_url).rstrip("/")
    parts = urlsplit(url)
    server = request.scope.get("server")
    proxied = any(
        h in request.headers for h in ("forwarded", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-for")
    )
    if "host" in request.headers and server and server[1] and not proxied:
        try:
            port = parts.port
        except ValueError:  # a Host header with a malformed port: leave it as the client sent it
            return url
        if port is None and server[1] != (443 if parts.scheme == "https" else 80):
            url = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{server[1]}"))
    return url
