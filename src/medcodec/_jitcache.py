"""Where numba keeps the compiled kernels when neither of its usual places can be written.

Every kernel is ``numba.njit(cache=True)``. numba caches next to the source
(``site-packages/medcodec/codec/__pycache__``) or, when that cannot be written, in the user's cache
folder (``~/.cache/numba``). A service account running a root-owned install with no writable home
(``HOME=/nonexistent``, a container's ``nobody``) has neither, and numba then refuses at import
time: every command, even ``medcodec --help``, stopped with ``RuntimeError: cannot cache function
... no locator available`` (an outside audit of a pip install, 2026-12-03). Importing this module
(the package's first import) checks both places and, only when neither is writable, points numba at
a private folder of this user under the temporary directory. ``NUMBA_CACHE_DIR`` set by the user
always wins. Kernels compiled there are kept across runs; a warm-up run as the service user
(``python -m medcodec.codec.warmup``) fills it once.
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["fallback_cache_dir", "chosen_cache_dir"]

#: The folder this process told numba to use, ``None`` when numba's own choice stands.
chosen_cache_dir: str | None = None

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_FOLDERS = ("codec", "dicom")  # where the njit(cache=True) modules live


def _writable(folder: Path) -> bool:
    """numba's own test (``_CacheLocator.ensure_cache_path``): the folder can be made and a file
    written in it."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _user() -> str:
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    try:
        return getpass.getuser()
    except Exception:  # no user name at all (a bare container): one shared name, checked below
        return "user"


def fallback_cache_dir() -> Path:
    """``<tmp>/medcodec-numba-<uid>``, made private (0700) to this user. The cache holds pickled
    index files that numba loads, so a folder someone else owns or can write is never used: then a
    fresh private folder (compiled again on each run, but safe)."""
    folder = Path(tempfile.gettempdir()) / f"medcodec-numba-{_user()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return Path(tempfile.mkdtemp(prefix="medcodec-numba-"))
    info = os.lstat(folder)
    getuid = getattr(os, "getuid", None)
    foreign = getuid is not None and info.st_uid != getuid()
    if not stat.S_ISDIR(info.st_mode) or foreign or info.st_mode & 0o077:
        return Path(tempfile.mkdtemp(prefix="medcodec-numba-"))
    return folder


def _choose() -> str | None:
    if os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return None
    if all(_writable(_PACKAGE / name / "__pycache__") for name in _KERNEL_FOLDERS):
        return None  # numba's in-tree cache
    from numba.misc.appdirs import AppDirs

    if _writable(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)):  # type: ignore[no-untyped-call]
        return None  # numba's user-wide cache
    try:
        folder = fallback_cache_dir()
    except OSError:  # not even the temporary folder: numba says what it cannot do
        return None
    from numba.core import config

    config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]  # read by numba's first cache locator when a kernel is decorated
    return str(folder)


chosen_cache_dir = _choose()
