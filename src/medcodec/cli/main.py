"""``medcodec``: the command-line entry point; each subcommand lives in its own module."""

from __future__ import annotations

import sys
import threading

import click

from .. import __version__
from ._common import (  # the one error convention lives in _common; re-exported here
    CLI_OPTIONS,
    EXIT_BUG,
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    cli_message,
    report_error,
    signals_interrupt,
)

__all__ = ["cli", "main", "report_error", "cli_message", "CLI_OPTIONS", "EXIT_OK", "EXIT_PARTIAL", "EXIT_ERROR",
           "EXIT_BUG", "EXIT_INTERRUPTED"]  # fmt: skip


class _Commands(click.Group):
    """The group whose commands are imported on first need (:func:`_register`): importing this
    module loads click and the error conventions only, so that :func:`main` imports the codec
    under its Ctrl-C guard (a Ctrl-C in the first second printed a traceback: an outside audit,
    2026-12-05)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _register()
        return super().get_command(ctx, cmd_name)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the package version and the coding revision (:data:`CODING_REVISION`), which
    names the rules a store's lossy copies are made by, so that an operator can tell which rules a
    running install applies (every release said "0.1.0": an outside audit of upgrades, 2026-12-05)."""
    if not value or ctx.resilient_parsing:
        return
    from ..delivery.manifest import CODING_REVISION

    click.echo(f"medcodec, version {__version__} (coding revision {CODING_REVISION})")
    ctx.exit()


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and the coding revision of the delivery store's copies, and exit.")  # fmt: skip
def cli() -> None:
    """Lossy compression of 8-16-bit medical images (DICOM CT, MR, X-ray) with measured quality.

    \b
    Typical use:
      medcodec demo                                  # real images: codec results, then ingest, serve, download
      medcodec encode study/ -o out/ --quality 90    # DICOM series -> .mdc (one per series)
      medcodec decode out/x.mdc -o x/ --to dicom     # .mdc -> derived DICOM files
      medcodec info out/x.mdc                        # header and segments with byte offsets
      medcodec evaluate study/ --report report/      # medcodec vs JPEG 2000, HTJ2K, JPEG-LS...
      medcodec ingest study/ --store store/          # a delivery store, presets pre-computed
      medcodec serve --store store/                  # DICOMweb, ZIP archives, viewer
      medcodec store check --store store/            # check, delete from, clean a store
    """


_REGISTERING = threading.RLock()


def _register() -> None:
    """Import every subcommand into :func:`cli` (once; the codec and the delivery come with them).
    All of them or none: the modules are imported first, then added together. Two threads asking
    at once, or a Ctrl-C halfway, left a partial set that later calls took for complete ("No such
    command 'serve'": the re-check of 2026-12-06)."""
    with _REGISTERING:
        if cli.commands:
            return
        from .decode import decode
        from .demo import demo
        from .encode import encode
        from .fetch import fetch  # delivery (issue 9): the HTTP server and its download client
        from .info import info
        from .ingest import ingest  # delivery (issue 9): DICOM into a store, presets pre-computed
        from .serve import serve
        from .store import store  # delivery: check, delete from, collect the garbage of a store

        commands = [encode, decode, info, demo, ingest, store, serve, fetch]
        try:
            from .evaluate import evaluate
        except ImportError:  # pragma: no cover - evaluate has optional heavy deps
            pass
        else:
            commands.append(evaluate)
        for command in commands:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (for tests: ``main(["info", "x.mdc"])``).

    Every error of every subcommand ends here (:func:`report_error`). SIGTERM and SIGHUP take
    the path of Ctrl-C (:func:`signals_interrupt`): temporary files are removed, exit 143 / 129.
    A character the terminal's encoding cannot show (a Japanese name on a Latin-1 terminal) is
    written as an escape, never an error (until 2026-12-02: exit 3 after the work was done).
    """
    _escape_unprintable()
    try:
        with signals_interrupt():
            _register()
            cli.main(args=argv, prog_name="medcodec", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    except BaseException as exc:
        return report_error(exc)
    return EXIT_OK


def _escape_unprintable() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a test's capture may not have it
        if reconfigure is not None and getattr(stream, "errors", "strict") == "strict":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a closed or detached stream
                pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
