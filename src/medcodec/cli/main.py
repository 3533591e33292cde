"""``medcodec``: the command-line entry point; each subcommand lives in its own module."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback

import click

from .. import __version__
from ..errors import CodecError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="medcodec")
def cli() -> None:
    """Lossy compression of 8-16-bit medical images (DICOM CT, MR, X-ray) with measured quality.

    \b
    Typical use:
      medcodec demo                                  # real sample images, table of results
      medcodec encode study/ -o out/ --quality 90    # DICOM series -> .mdc (one per series)
      medcodec decode out/x.mdc -o x/ --to dicom     # .mdc -> derived DICOM files
      medcodec info out/x.mdc                        # header and segments with byte offsets
      medcodec evaluate study/ --report report/      # medcodec vs JPEG 2000, HTJ2K, JPEG-LS...
    """


def _register() -> None:
    from .decode import decode
    from .demo import demo
    from .encode import encode
    from .info import info

    for command in (encode, decode, info, demo):
        cli.add_command(command)
    try:
        from .evaluate import evaluate
    except ImportError:  # pragma: no cover - evaluate has optional heavy deps
        pass
    else:
        cli.add_command(evaluate)


_register()


#: Exit codes. 0 success; 1 a batch went on past failed inputs (listed at the end); 2 usage
#: error, unreadable stream or input, unwritable output; 3 an internal error (a bug); 130 Ctrl-C.
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: Library keyword arguments and the CLI options that set them: messages from the library
#: name ``overwrite=True``; a CLI user is told ``--overwrite``.
CLI_OPTIONS = {name: f"--{name}" for name in ("overwrite", "quality", "ratio", "psnr", "frames", "jobs", "effort",
                                              "table", "window")}  # fmt: skip
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
    bug: one line too, exit 3, and the traceback only with ``MEDCODEC_DEBUG=1``.
    """
    if isinstance(exc, BrokenPipeError):  # output piped into `head`: not an error
        with contextlib.suppress(Exception):
            sys.stderr.close()
        return EXIT_OK
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (for tests: ``main(["info", "x.mdc"])``).

    Every error of every subcommand ends here (:func:`report_error`).
    """
    try:
        cli.main(args=argv, prog_name="medcodec", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    except BaseException as exc:  # noqa: BLE001 - the one place errors become exit codes
        return report_error(exc)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
