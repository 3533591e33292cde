"""What every subcommand shares: error reporting, exit codes, output naming, progress."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import OutputError, failure_message

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: 0 success, 1 some inputs failed (batch went on), 2 usage / fatal input error.
EXIT_PARTIAL = 1
EXIT_ERROR = 2


def handle_errors(fn: F) -> F:
    """Report a subcommand's errors by THE convention of :func:`medcodec.cli.main.report_error`
    (one ``error:`` line, exit code 2), also when the subcommand is run on its own (click's
    ``CliRunner``, another group): the convention lives in one place, ``cli/main.py``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SystemExit, click.exceptions.Exit):
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the one handler
            from .main import report_error  # main imports the subcommands: import here

            sys.exit(report_error(exc))

    return wrapper  # type: ignore[return-value]


def jobs_option(fn: F) -> F:
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=None,
        help="Threads for encoding/decoding frames [default: all cores].",
    )(fn)  # fmt: skip


def progress(items: Iterable[Any], *, total: int | None = None, desc: str = "", enabled: bool = True,
             unit: str = "item") -> Iterable[Any]:
    """A tqdm bar on stderr when there is more than one item and stderr is a terminal or forced."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


def report_failures(failures: list[tuple[str, Exception]]) -> None:
    if not failures:
        return
    from .main import cli_message  # the CLI's wording of library messages (--overwrite, not overwrite=True)

    click.echo(f"\n{len(failures)} input(s) failed:", err=True)
    for where, exc in failures:
        click.echo(f"  {cli_message(failure_message(where, exc))}", err=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def ensure_dir(path: Path) -> Path:
    """Create the output folder if needed and check that files can be written in it.

    Raises
    ------
    OutputError
        The folder cannot be created or written in (named, with the reason).
    """
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write in this output folder ({exc.strerror or exc})", path=path) from exc
    return path


def same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return Path(a).resolve() == Path(b).resolve()
