"""The one rule for external command-line tools in tests (DCMTK, dicom3tools, GDCM, chromium, Orthanc).

A missing tool skips the test locally and fails it where the tools must be present (``CI`` or
``MEDCODEC_REQUIRE_TOOLS`` set): ``make test`` installs them (``make sysdeps``), so CI can never pass
by skipping. Importable from any test folder (a ``conftest`` module is not: each folder may have its own).
"""

from __future__ import annotations

import os
import shutil

__all__ = ["require_tool", "required", "dciodvfy_errors"]


def required(name: str) -> bool:
    """True when the environment variable ``name`` is set to something other than ''/0/false/no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str) -> str:
    """Path of the external command-line tool ``name``, or skip (locally) / fail (CI) the calling test."""
    import pytest

    path = shutil.which(name)
    if path is None:
        message = (
            f"{name} not installed (Debian packages dcmtk, dicom3tools, libgdcm-tools, chromium, orthanc, unzip, "
            "postgresql, openssl, nginx: `make sysdeps`, as root)"
        )
        if required("CI") or required("MEDCODEC_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def dciodvfy_errors(path: object) -> set[str]:
    """The ``Error`` lines dicom3tools' ``dciodvfy`` reports on a DICOM file (:func:`require_tool`'s
    rule when it is missing): a derived file should add none to its original's."""
    import subprocess

    run = subprocess.run([require_tool("dciodvfy"), str(path)], check=False, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}
