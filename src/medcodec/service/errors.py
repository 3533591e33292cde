"""The ONE place where exceptions become HTTP responses.

Routes and the store raise domain exceptions (:mod:`medcodec.errors`, the delivery errors of
:mod:`medcodec.delivery`); this module maps them to a status code and a JSON body
``{"status": 404, "error": "NotFoundError", "detail": "..."}``, never a stack trace. The status
is looked up along the exception's class hierarchy, so a subclass inherits its parent's code
unless listed itself:

==================================  ======  =====================================================
exception (or subclass)             status  when
==================================  ======  =====================================================
``NotFoundError``                   404     unknown study / series / instance / frame / preset
``InvalidUidError``                 400     a path or query UID that breaks the PS3.5 §9.1 grammar
``RangeNotSatisfiableError``        416     a Range outside the representation
(an ``If-Match`` that fails)        412     made by :mod:`.caching` and the archive routes
``NotAcceptableError``              406     Accept asks for a transfer syntax or type we cannot make
``UnsupportedMediaTypeError``       415     STOW body not ``multipart/related; type=application/dicom``
``NotDicomError``                   400     a STOW part (or a C-STORE dataset) that is not DICOM
``PayloadTooLargeError``            413     STOW body past ``--max-upload``
``RequestTimeoutError``             408     STOW body stalled or too slow (``--body-timeout``)
``ConflictError``                   409     same SOP Instance UID, different bytes
``UnauthorizedError``               401     missing or wrong bearer token
``MisdirectedRequestError``         421     a Host this server does not answer for (DNS rebinding:
                                            :mod:`.security`)
``StoreFullError``                  507     no space left in the store
``OutOfResourcesError``             503     no file descriptor or memory left (``Retry-After``)
``InvalidInputError``               400     any other bad parameter (window, frame number, query)
``CorruptStreamError``              500     a stored stream is damaged (logged with its offset)
``CodecError``                      500     anything else medcodec raised on purpose
other exceptions                    500     a bug: logged with the trace, the client gets a line
==================================  ======  =====================================================
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import CodecError, CorruptStreamError, InvalidInputError, without_traceback

__all__ = [
    "ServiceError",
    "UnauthorizedError",
    "MisdirectedRequestError",
    "RangeNotSatisfiableError",
    "UnsupportedMediaTypeError",
    "RequestTimeoutError",
    "status_for",
    "codec_cause",
    "error_response",
    "exception_handlers",
]

log = logging.getLogger("medcodec.service")


class ServiceError(CodecError):
    """An HTTP-level problem found by the service itself (not the store)."""


class UnauthorizedError(ServiceError):
    """No bearer token, or a wrong one."""


class MisdirectedRequestError(ServiceError):
    """A request naming a host (``Host``) the server does not answer for (RFC 9110 §15.5.20)."""


class RangeNotSatisfiableError(ServiceError):
    """A byte range that does not overlap the representation (RFC 9110 §15.5.17).

    Parameters
    ----------
    size
        The full size, sent back as ``Content-Range: bytes */size``.
    """

    def __init__(self, message: str, *, size: int):
        self.size = size
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (a worker process, Dask): size is keyword-only
        return (_range_error, (str(self), self.size))


def _range_error(message: str, size: int) -> RangeNotSatisfiableError:
    return RangeNotSatisfiableError(message, size=size)


class UnsupportedMediaTypeError(ServiceError):
    """A request body whose Content-Type the route does not take."""


class RequestTimeoutError(ServiceError):
    """A request body that stopped arriving, or arrives too slowly (HTTP 408, connection closed)."""


#: Status by class name along the MRO (names, so the delivery errors are matched wherever they live).
STATUS_BY_NAME: dict[str, int] = {
    "NotFoundError": 404,
    "InputNotFoundError": 404,
    "InvalidUidError": 400,
    "RangeNotSatisfiableError": 416,
    "NotAcceptableError": 406,
    "UnsupportedMediaTypeError": 415,
    "RequestTimeoutError": 408,
    "NotDicomError": 400,
    "PayloadTooLargeError": 413,
    "ConflictError": 409,
    "UnauthorizedError": 401,
    "MisdirectedRequestError": 421,
    "StoreFullError": 507,
    "OutOfResourcesError": 503,
    "InvalidInputError": 400,
    "CorruptStreamError": 500,
    "CodecError": 500,
}


def status_for(exc: BaseException) -> int:
    """HTTP status for ``exc`` (the table of the module docstring)."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_NAME.get(cls.__name__)
        if status is not None:
            return status
    return 500


def error_response(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every failure gets; never stored by a cache (:mod:`.caching`)."""
    return JSONResponse({"status": status, "error": kind, "detail": detail}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})  # fmt: skip


async def _codec_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RangeNotSatisfiableError):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="medcodec"'
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER
    if isinstance(exc, RequestTimeoutError):
        headers["Connection"] = "close"  # the rest of the body is not read: the connection cannot go on
    if isinstance(exc, CorruptStreamError):
        log.error("%s %s: stored data corrupt: %s (offset %s)", request.method, request.url.path, exc, exc.offset)
    elif status >= 500:
        log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    detail = without_traceback(str(exc)) if status < 500 or isinstance(exc, CodecError) else "internal error"
    return error_response(status, type(exc).__name__, detail, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, "HTTPException", without_traceback(str(exc.detail)), dict(exc.headers or {}))


#: What Starlette raises when a route fails after its answer's status line went out
#: (``starlette._exception_handler``); the route's own error is its ``__cause__``.
_STARTED = "Caught handled exception, but response already started"


def codec_cause(exc: BaseException | None) -> CodecError | None:
    """medcodec's own error behind an answer cut after it had started, or ``None``.

    Starlette wraps an error raised after an answer's status line went out (a stored file damaged
    or deleted while it was being sent) in ``RuntimeError("Caught handled exception, but response
    already started.")`` with the error as its ``__cause__``: the answer can only be cut, and what
    to log is that cause, one line. Nothing else is unwrapped: an exception raised while another
    was handled (its implicit ``__context__``) is a bug and keeps its traceback (an outside audit,
    2026-12-03)."""
    if isinstance(exc, RuntimeError) and str(exc).startswith(_STARTED) and isinstance(exc.__cause__, CodecError):
        return exc.__cause__
    return None


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, CodecError):
        return await _codec_error(request, exc)
    cause = codec_cause(exc)
    if cause is not None:  # after the status line: the answer is cut (the client sees it short), one line
        log.error("%s %s: answer cut after it had started: %s: %s", request.method, request.url.path,
                  type(cause).__name__, cause)  # fmt: skip
        return error_response(status_for(cause), type(cause).__name__, without_traceback(str(cause)))
    if _out_of_resources(exc):  # open files or memory gone (a library's own error): later, not a bug
        log.error("%s %s: out of resources: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(503, "OutOfResourcesError", "the server is out of resources; retry",
                              {"Retry-After": RETRY_AFTER})  # fmt: skip
    log.exception("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return error_response(500, "InternalError", "internal error (logged on the server)")


#: Seconds a client told 503 (out of resources) is asked to wait.
RETRY_AFTER = "5"


def _out_of_resources(exc: BaseException) -> bool:
    """An error, or one it was raised from, that says this process is out of open files or memory:
    an ``OSError`` with one of :data:`~medcodec.delivery.objects.RESOURCE_ERRNOS`, a ``MemoryError``,
    SQLite's "unable to open database file" while no file can be opened."""
    from ..delivery.objects import RESOURCE_ERRNOS, cannot_open_files

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, MemoryError) or (isinstance(seen, OSError) and seen.errno in RESOURCE_ERRNOS):
            return True
        if "unable to open database file" in str(seen) and cannot_open_files():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def exception_handlers() -> dict[Any, Any]:
    """Handlers for :class:`starlette.applications.Starlette` (``exception_handlers=``)."""
    return {CodecError: _codec_error, HTTPException: _http_error, Exception: _unexpected}


def bad_request(message: str) -> InvalidInputError:
    """An :class:`InvalidInputError` for a bad parameter (400), for routes to raise."""
    return InvalidInputError(message)
