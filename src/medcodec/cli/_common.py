"""What every subcommand shares: error reporting, exit codes, output naming, progress."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import CodecError, OutputError, failure_message
from ..progress import ProgressCallback

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes. 0 success; 1 a batch went on past failed inputs (listed at the end); 2 usage
#: error, unreadable stream or input, unwritable output; 3 an internal error (a bug); 130 Ctrl-C
#: (SIGINT); 128 + the signal's number for SIGTERM (143) and SIGHUP (129), as a shell reports them.
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: What ``medcodec --help`` says about them (kept beside the codes it describes).
EXIT_CODES_HELP = """\b
Exit codes:
  0        success
  1        a batch went on past bad inputs (each listed at the end)
  2        usage error, unreadable input or stream, output that exists or cannot be written
  3        internal error (a bug; MEDCODEC_DEBUG=1 shows the traceback)
  130      interrupted by Ctrl-C (SIGINT)
  143/129  terminated by SIGTERM / SIGHUP (kill, timeout, systemd, CI)
With 130, 143 and 129 the temporary files (.*.part, .medcodec-staging-*) are removed first, except
the .part of a `medcodec fetch` that can resume (the same command continues it).
`medcodec serve` exits 0 on Ctrl-C and SIGTERM: stopping is what a server is asked to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's ``KeyboardInterrupt`` so that
    the same clean-up runs (temporary files, staging folders, worker pools): a subclass, so
    every ``except KeyboardInterrupt`` handles it too. The exit code is ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While the CLI runs, SIGTERM and SIGHUP (where it exists) raise :class:`Terminated` in
    the main thread, as SIGINT raises ``KeyboardInterrupt``; the previous handlers come back
    afterwards. A signal that is ignored (``nohup`` ignores SIGHUP) stays ignored, and outside
    the main thread (``main()`` called from a worker thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, terminate)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


#: Library keyword arguments and the CLI options that set them: messages from the library
#: name ``overwrite=True``; a CLI user is told ``--overwrite``.
CLI_OPTIONS = {name: f"--{name}" for name in ("overwrite", "quality", "ratio", "psnr", "frames", "jobs", "effort",
                                              "table", "window", "scheduler")}  # fmt: skip
_ARGUMENT = re.compile(r"\b(" + "|".join(CLI_OPTIONS) + r")=(True\b|[^\s,;)]+)")


def cli_message(text: str) -> str:
    """A library message in CLI terms: ``overwrite=True`` -> ``--overwrite``, ``quality=50`` ->
    ``--quality 50``; one line.

    >>> cli_message("x.mdc: exists already (pass overwrite=True to replace it)")
    'x.mdc: exists already (pass --overwrite to replace it)'
    """

    def option(m: re.Match[str]) -> str:
        flag = CLI_OPTIONS[m.group(1)]
        return flag if m.group(2) == "True" else f"{flag} {m.group(2)}"

    return " ".join(_ARGUMENT.sub(option, text).split())


def report_error(exc: BaseException) -> int:
    """THE error convention of the command line, in one place: print one line starting
    ``error:`` on stderr (never a traceback) and return the exit code.

    Usage errors (click's, or two options that exclude each other), unreadable streams and
    inputs (:class:`~medcodec.errors.CodecError`) and unwritable outputs
    (:class:`~medcodec.errors.OutputError`, any ``OSError``) exit with 2. Anything else is a
    bug: one line too, exit 3, and the traceback only with ``MEDCODEC_DEBUG=1``. Ctrl-C is
    ``error: interrupted``, exit 130; SIGTERM / SIGHUP (:class:`Terminated`) ``error: terminated
    (SIGTERM)``, exit 128 + the signal's number.
    """
    if isinstance(exc, BrokenPipeError):  # output piped into `head`: not an error
        with contextlib.suppress(Exception):
            sys.stderr.close()
        return EXIT_OK
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        signalled = exc if isinstance(exc, Terminated) else exc.__cause__  # click's Abort wraps it
        if isinstance(signalled, Terminated):
            click.echo(f"error: terminated ({signal.Signals(signalled.signum).name})", err=True)
            return 128 + signalled.signum
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    code = EXIT_ERROR
    if isinstance(exc, click.UsageError):
        message = exc.format_message()
        ctx = exc.ctx or click.get_current_context(silent=True)
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
    elif isinstance(exc, click.ClickException):
        message = exc.format_message()
    elif isinstance(exc, CodecError):
        message = str(exc)
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
    else:
        if os.environ.get("MEDCODEC_DEBUG"):
            traceback.print_exception(exc)
        message = f"internal error ({type(exc).__name__}: {exc}); please report it (MEDCODEC_DEBUG=1 shows where)"
        code = EXIT_BUG
    click.echo(f"error: {cli_message(message)}", err=True)
    return code


def show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A warning as the CLI prints it: one line ``warning: ...`` on stderr, in CLI terms, each text
    once a run (pydicom says "Unknown encoding" once per element it decodes: four lines a file)."""
    line = f"warning: {cli_message(str(message))}"
    if line in _SHOWN:
        return
    if len(_SHOWN) < 10_000:
        _SHOWN.add(line)
    click.echo(line, err=True)


_SHOWN: set[str] = set()


class _WarningLine(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # (from any thread; stderr closed: nothing to say it on)
            click.echo(f"warning: {cli_message(record.getMessage())}", err=True)


@contextlib.contextmanager
def log_warnings(*names: str) -> Iterator[None]:
    """While the CLI runs, what the library loggers ``names`` log at WARNING or above is printed as
    one ``warning: ...`` line on stderr (as :func:`show_warning` prints ``warnings``), and only so."""
    handler = _WarningLine(logging.WARNING)
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, (propagate, level) in zip(loggers, saved):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


def handle_errors(fn: F) -> F:
    """Report a subcommand's errors by THE convention of :func:`report_error`
    (one ``error:`` line, exit code 2), also when the subcommand is run on its own (click's
    ``CliRunner``, another group): the convention lives in one place, this module."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():  # the library's warnings as one 'warning:' line each
                warnings.showwarning = show_warning
                return fn(*args, **kwargs)
        except (SystemExit, click.exceptions.Exit):
            raise
        except BaseException as exc:
            sys.exit(report_error(exc))

    return wrapper  # type: ignore[return-value]


def jobs_option(fn: F) -> F:
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=None,
        help="Threads for encoding/decoding frames [default: all cores].",
    )(fn)  # fmt: skip


#: Seconds between two progress lines when stderr is not a terminal (a log: cron, systemd, CI).
PROGRESS_LINE_SECONDS = 10.0


class ProgressLines:
    """Progress as plain lines, for a stderr that is not a terminal: ``ingest: 40/120 files (33 %)``
    at most every :data:`PROGRESS_LINE_SECONDS`, nothing for work that ends sooner. tqdm draws
    nothing there (``disable=None``), so a long ingest into a log said nothing until it ended, even
    with ``--progress`` (an outside audit, 2026-12-05); its carriage returns would fill the log."""

    def __init__(self, desc: str, unit: str, total: int | None = None) -> None:
        self.desc, self.unit, self.total = desc or "progress", unit, total
        self.last = time.monotonic()

    def update(self, done: int, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        now = time.monotonic()
        if now - self.last >= PROGRESS_LINE_SECONDS:
            self.last = now
            pct = f" ({100 * done / self.total:.0f} %)" if self.total else ""
            if self.unit == "B":  # bytes: fetch, store backup
                of = f" of {human_bytes(self.total)}" if self.total else ""
                click.echo(f"{self.desc}: {human_bytes(done)}{of}{pct}", err=True)
            else:
                of = f"/{self.total}" if self.total else ""
                click.echo(f"{self.desc}: {done}{of} {self.unit}(s){pct}", err=True)

    def close(self) -> None:
        """(Nothing to clear: the lines stay in the log.)"""


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def progress(
    items: Iterable[Any], *, total: int | None = None, desc: str = "", enabled: bool = True, unit: str = "item"
) -> Iterable[Any]:
    """A tqdm bar on stderr when it is a terminal; plain lines now and then when it is not
    (:class:`ProgressLines`)."""
    if not enabled:
        return items
    if not stderr_is_terminal():
        return _lines_over(items, ProgressLines(desc, unit, total))
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def _lines_over(items: Iterable[Any], lines: ProgressLines) -> Iterator[Any]:
    for i, item in enumerate(items, 1):
        yield item
        lines.update(i)


@contextlib.contextmanager
def progress_bar(desc: str, *, unit: str = "item", enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr driven by the library's ``progress(done, total)`` callbacks
    (:mod:`medcodec.progress`), plain lines when stderr is no terminal; ``None`` when disabled.
    ``unit="B"``: bytes, shown in kB / MB / GB (``fetch``, ``store backup``). (``ingest`` keeps a
    bar per stage with the same rule.) Until 2026-12-06 the byte bars of ``fetch`` and ``store
    backup`` and the bar of ``store reindex`` drew nothing into a log."""
    if not enabled:
        yield None
        return
    if not stderr_is_terminal():
        yield ProgressLines(desc, unit).update
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr, leave=False)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def report_failures(failures: list[tuple[str, Exception]]) -> None:
    if not failures:
        return

    click.echo(f"\n{len(failures)} input(s) failed:", err=True)
    for where, exc in failures:
        click.echo(f"  {cli_message(failure_message(where, exc))}", err=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def check_dir_can_be_made(path: Path) -> None:
    """Before the work: the output folder is writable or can be made, checked without making it (a
    command that then fails leaves no empty folder behind). :func:`ensure_dir` makes it after.

    Raises
    ------
    OutputError
        Neither the folder nor its nearest existing parent can be written in.
    """
    if path.exists():
        ensure_dir(path)
        return
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise click.UsageError(f"{parent} is a file, not a folder: give a folder as --output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot make this output folder ({parent} is not writable)", path=path)


def ensure_dir(path: Path) -> Path:
    """Create the output folder if needed and check that files can be written in it.

    Raises
    ------
    OutputError
        The folder cannot be created or written in (named, with the reason).
    """
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{path} is a file, not a folder: give a folder as --output")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write in this output folder ({exc.strerror or exc})", path=path) from exc
    return path
