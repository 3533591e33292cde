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

import atexit
import contextlib
import getpass
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["fallback_cache_dir", "chosen_cache_dir", "matplotlib_config"]

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


def fallback_cache_dir(kind: str = "numba") -> Path:
    """``<tmp>/medcodec-<kind>-<uid>``, private to this user. The cache holds pickled index files that
    numba loads, so a folder that is not a real folder of this user, or that others can write, is
    never used. This user's own folder with group / other read bits (numba makes folders with the
    umask; a ``NUMBA_CACHE_DIR`` workaround made it 0755) is taken and made 0700. Otherwise a fresh
    private folder is used for this process only, removed at exit, and a warning says why and what
    to do (each run then compiles again)."""
    folder = Path(tempfile.gettempdir()) / f"medcodec-{kind}-{_user()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return _one_process_folder(f"{folder} cannot be made ({exc.strerror or exc})", kind)
    info = os.lstat(folder)
    getuid = getattr(os, "getuid", None)
    foreign = getuid is not None and info.st_uid != getuid()
    if not stat.S_ISDIR(info.st_mode) or foreign or info.st_mode & 0o022:
        what = "another user's" if foreign else "writable by others" if stat.S_ISDIR(info.st_mode) else "not a folder"
        return _one_process_folder(f"{folder} is {what}", kind)
    if info.st_mode & 0o077:
        with contextlib.suppress(OSError):
            folder.chmod(0o700)
    return folder


def _one_process_folder(why: str, kind: str = "numba") -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"medcodec-{kind}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if kind != "numba":
        logging.getLogger("medcodec").warning(
            "%s cannot keep its files in the home folder, and %s: this run uses %s, removed at exit", kind, why, folder
        )
        return folder
    logging.getLogger("medcodec").warning(
        "numba cannot cache compiled kernels in the package folder or the home folder, and %s: this run "
        "compiles in %s and removes it at exit, so each run compiles again (a minute or more). Set "
        "NUMBA_CACHE_DIR to a folder only this user can write (systemd: CacheDirectory=), then run "
        "`python -m medcodec.codec.warmup` once.",
        why,
        folder,
    )
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


def matplotlib_config() -> None:
    """Call before importing matplotlib: where its configuration and font cache folder (``MPLCONFIGDIR``,
    default ``~/.config/matplotlib``) cannot be written (a service account with no writable home),
    set ``MPLCONFIGDIR`` to this user's private folder under the temporary directory, as for numba's
    cache. matplotlib would otherwise warn on every run ("Matplotlib created a temporary cache
    directory ...") and build its font cache again each time. ``MPLCONFIGDIR`` set by the user wins."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    if _writable(Path(config) / "matplotlib"):
        return
    try:
        os.environ["MPLCONFIGDIR"] = str(fallback_cache_dir("matplotlib"))
    except OSError:  # not even the temporary folder: matplotlib says what it cannot do
        return
