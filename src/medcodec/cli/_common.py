"""What every subcommand shares: error reporting, exit codes, output naming, progress."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import CodecError, failure_message
from ..progress import ProgressCallback

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: 0 success, 1 some inputs failed (batch went on), 2 usage / fatal input error.
EXIT_PARTIAL = 1
EXIT_ERROR = 2


def handle_errors(fn: F) -> F:
    """Turn medcodec errors into one clear line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CodecError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except BrokenPipeError:  # output piped into `head`: not an error
            sys.stderr.close()
            sys.exit(0)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def jobs_option(fn: F) -> F:
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=None,
        help="Threads for encoding/decoding frames [default: all cores].",
    )(fn)  # fmt: skip


def progress(
    items: Iterable[Any], *, total: int | None = None, desc: str = "", enabled: bool = True, unit: str = "item"
) -> Iterable[Any]:
    """A tqdm bar on stderr when there is more than one item and stderr is a terminal or forced."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


@contextlib.contextmanager
def progress_bar(desc: str, *, unit: str = "item", enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr driven by the library's ``progress(done, total)`` callbacks
    (:mod:`medcodec.progress`); ``None`` when disabled. The only place bars are drawn."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)

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
        click.echo(f"  {failure_message(where, exc)}", err=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def ensure_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path
