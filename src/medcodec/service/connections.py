"""What one TCP connection may hold of the server, and what the server says when it runs out.

An outside audit (2026-12-05) opened 1,100 connections that sent part of a request and never
finished its headers: uvicorn never closed them, the server's 1,024 file descriptors ran out,
every other client timed out, and asyncio logged a traceback for every failed accept (46 MB of
log in 20 s). No token was needed: a token is checked once the headers are read. Now:

* :func:`with_header_timeout`: a request's headers must arrive within ``header_timeout``
  seconds of its first byte (of the connection, for its first request); past it the connection
  gets ``408 Request Timeout`` and is closed (as nginx's ``client_header_timeout``, Apache's
  ``mod_reqtimeout``). A connection idle between requests is closed by uvicorn's keep-alive
  timeout, as before.
* :func:`with_header_timeout` also times what goes out: a connection whose client takes none of
  the answer for :data:`SEND_TIMEOUT` seconds (the transport's buffer full, writing paused) is
  closed (nginx's ``send_timeout``). A reader that stopped held its socket, its file and up to
  nine whole instances of a WADO-RS answer (a live archive: its encoding slot) for ever (an
  outside audit, 2026-12-05).
* A request body (STOW-RS) must keep coming: :data:`BODY_MIN_RATE` bytes a second on average,
  after a grace of ``--body-timeout`` seconds (Apache's ``mod_reqtimeout`` ``body=...,MinRate=``):
  past it ``408`` and the connection is closed. A body that trickled held its share of the
  STOW-RS byte budget for as long as it liked, so two of them stopped every other upload (an
  outside audit, 2026-12-05).
* :func:`raise_open_files_limit`: the soft limit on open files raised towards its hard limit at
  start (systemd gives services 1,024 soft, 524,288 hard), and :func:`connection_budget`:
  uvicorn's ``limit_concurrency``, so that past it a request gets 503 from uvicorn instead of
  failures deep inside a handler that could not open a file.
* :func:`quiet_accept_errors`: asyncio's "socket.accept() out of system resource" is logged one
  line at a time, at most every :data:`ACCEPT_LOG_INTERVAL` seconds, without its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

__all__ = [
    "HEADER_TIMEOUT",
    "SEND_TIMEOUT",
    "BODY_TIMEOUT",
    "BODY_MIN_RATE",
    "ACCEPT_LOG_INTERVAL",
    "with_header_timeout",
    "raise_open_files_limit",
    "limit_malloc_arenas",
    "MALLOC_ARENAS",
    "connection_budget",
    "quiet_accept_errors",
]

#: Seconds a request's headers may take to arrive, from its first byte (``--header-timeout``).
HEADER_TIMEOUT = 20.0
#: Seconds of grace a request body gets beyond what it is owed at :data:`BODY_MIN_RATE` (``--body-timeout``).
BODY_TIMEOUT = 60.0
#: Bytes a second a request body must average (16 KiB/s, 128 kbit/s: the slowest link a DICOMweb
#: sender is on; a 512 MB upload may take 9 hours).
BODY_MIN_RATE = 16 * 1024
#: Seconds a client may take none of an answer (writing paused on a full buffer) before its connection is closed.
SEND_TIMEOUT = 60.0
#: Seconds between two log lines about connections refused for want of file descriptors.
ACCEPT_LOG_INTERVAL = 10.0
#: The open-files limit the server asks for at start (within the hard limit).
WANTED_OPEN_FILES = 65536

_TIMEOUT_BODY = b'{"status":408,"error":"RequestTimeout","detail":"the request headers did not arrive in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
    b"Cache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


def with_header_timeout(seconds: float = HEADER_TIMEOUT, send_timeout: float = SEND_TIMEOUT) -> type[Any]:
    """uvicorn's h11 protocol (for its ``http=`` setting) with a deadline of ``seconds`` on each
    request's headers, and of ``send_timeout`` on a client that takes none of the answer (the
    module docstring). h11 reports a request only once its headers are complete, and its peer's
    state stays ``IDLE`` until then: that is what the header timer watches; the transport pauses
    writing when its buffer is full and resumes it once drained: that is what the send timer
    watches. (Made here, not at import, so that the CLI does not load uvicorn to print its help.)"""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    send_after = float(send_timeout)

    class HeaderTimeoutProtocol(H11Protocol):
        header_timeout = float(seconds)
        send_timeout = send_after
        _header_timer: asyncio.TimerHandle | None = None
        _send_timer: asyncio.TimerHandle | None = None

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._send_timer is None:
                self._send_timer = self.loop.call_later(self.send_timeout, self._send_timed_out)

        def resume_writing(self) -> None:
            self._cancel_send_timer()
            super().resume_writing()

        def _cancel_send_timer(self) -> None:
            if self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None

        def _send_timed_out(self) -> None:
            self._send_timer = None
            if not self.transport.is_closing():
                self.transport.abort()  # connection_lost: the answer is cut, what it held is let go

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)  # uvicorn cancels its keep-alive timer on any byte
            if not self._awaiting_headers():
                self._cancel_header_timer()
            elif self._header_timer is None:
                self._arm_header_timer()

        def on_response_complete(self) -> None:
            self._cancel_header_timer()  # idle now: uvicorn's keep-alive timeout closes it...
            super().on_response_complete()
            if self._awaiting_headers():  # ... unless part of the next request is here already
                self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            self._cancel_send_timer()
            super().connection_lost(exc)

        def _awaiting_headers(self) -> bool:
            return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a response still going out (pipelined bytes wait behind it)
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return HeaderTimeoutProtocol


def raise_open_files_limit(wanted: int = WANTED_OPEN_FILES) -> int:
    """Raise this process's soft limit on open files to ``wanted`` (at most its hard limit; never
    lowered); return the soft limit now in force (``wanted`` where the platform has no such limit)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else int(soft)


#: glibc malloc arenas a server process may use (``MALLOC_ARENA_MAX``). By default glibc makes up to
#: 8 per core, one per thread that allocates under contention, and keeps what each frees: a
#: 35-minute soak of mixed traffic took the server from 221 to 408 MB resident, 72 % of it free
#: memory malloc kept (60 MB in use, the Python heap flat); with 2 arenas 308 MB (+87 against +187
#: MB), the same number of requests answered at the same latencies (an outside audit, 2026-12-05).
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Limit glibc's malloc arenas in this process (``mallopt(M_ARENA_MAX)``, before its threads start)
    and in the processes it spawns (``MALLOC_ARENA_MAX`` in the environment they inherit), unless
    ``MALLOC_ARENA_MAX`` is set already (the operator's choice, which glibc read at start). True when
    the limit was set here; False elsewhere (another C library, not Linux, or set already)."""
    import ctypes
    import os
    import sys

    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a C library without mallopt
        return False
    m_arena_max = -8  # <malloc.h>
    if mallopt(m_arena_max, arenas) != 1:  # pragma: no cover - not glibc's (musl's returns 0)
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    return True


def connection_budget(open_files: int) -> int:
    """Connections and requests uvicorn keeps at once (``limit_concurrency``) for ``open_files``:
    half of what is left after 64 for the server itself (catalog, store, pools, pipes), each
    connection counted with a file its request may open; at least 8."""
    return max(8, (open_files - 64) // 2)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` log a failed accept for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) as
    one line at most every :data:`ACCEPT_LOG_INTERVAL` seconds, with how many since; every other
    exception context goes to the handler it had."""
    previous = loop.get_exception_handler()
    logger = logging.getLogger("medcodec.service")
    state = {"last": float("-inf"), "since": 0}

    def handler(loop_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            state["since"] += 1
            now = time.monotonic()
            if now - state["last"] >= ACCEPT_LOG_INTERVAL:
                exc = context.get("exception")
                logger.error(
                    "connections refused: %s (%d times in the last %.0f s; clients get no answer until "
                    "connections close: raise the open-files limit or put a proxy in front)",
                    exc,
                    state["since"],
                    ACCEPT_LOG_INTERVAL,
                )
                state["last"], state["since"] = now, 0
            return
        if previous is not None:
            previous(loop_, context)
        else:
            loop_.default_exception_handler(context)

    loop.set_exception_handler(handler)
