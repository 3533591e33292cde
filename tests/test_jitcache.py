"""numba's cache when neither the package folder nor the user's home can be written (a service
account running a root-owned install: an outside audit of a pip install, 2026-12-03)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import medcodec
from medcodec import _jitcache

_PROBE = """
import medcodec, numpy as np
from medcodec.codec import _kernels
print(medcodec._jitcache.chosen_cache_dir)
print(_kernels.min_max(np.arange(10, dtype=np.uint16)))
"""


def _unwritable_install(tmp_path: Path) -> Path:
    """A copy of the package whose kernel folders' ``__pycache__`` cannot be made (a file is in the
    way: unwritable even for root, which the CI runs as)."""
    root = tmp_path / "site"
    shutil.copytree(Path(medcodec.__file__).parent, root / "medcodec",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("codec", "dicom"):
        (root / "medcodec" / name / "__pycache__").write_bytes(b"")
    return root


def _run(root: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    # no home to cache in: /proc refuses a new folder to anyone
    env.update(HOME="/proc/nonexistent", XDG_CACHE_HOME="/proc/nonexistent", TMPDIR=str(tmp), PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=tmp, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def test_kernels_compile_and_cache_in_a_private_temp_folder(tmp_path: Path) -> None:
    root, tmp = _unwritable_install(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    done = _run(root, tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    folder, result = done.stdout.split("\n")[:2]
    assert Path(folder).parent == tmp and result == "(0, 9)"
    assert (Path(folder).stat().st_mode & 0o777) == 0o700
    assert any(Path(folder).rglob("_kernels.min_max-*.nbi"))  # cached there, found by the next run
    assert _run(root, tmp).stdout.split("\n")[0] == folder
    # the control: without the module, numba refuses at import time (what every command did)
    (root / "medcodec" / "_jitcache.py").write_text("chosen_cache_dir = None\n")
    failed = _run(root, tmp)
    assert failed.returncode == 1 and "no locator available" in failed.stderr


def test_a_folder_someone_else_can_write_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """The cache holds pickles numba loads: a folder others can write, a link or a file is never
    used; a one-process folder is, with a warning saying why and what to do. This user's own folder
    that others can only read (numba's umask, or a NUMBA_CACHE_DIR workaround) is made private and
    kept: the re-audit found every run compiling again because of it."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    first = _jitcache.fallback_cache_dir()
    assert first.parent == tmp_path and _jitcache.fallback_cache_dir() == first and not caplog.records
    first.chmod(0o755)
    assert _jitcache.fallback_cache_dir() == first and (first.stat().st_mode & 0o777) == 0o700
    first.chmod(0o777)
    other = _jitcache.fallback_cache_dir()
    assert other != first and other.parent == tmp_path and (other.stat().st_mode & 0o077) == 0
    assert "writable by others" in caplog.text and "NUMBA_CACHE_DIR" in caplog.text
    first.rmdir()
    first.symlink_to(other)  # a link to a private folder: still not used
    assert _jitcache.fallback_cache_dir() not in (first, other)
    first.unlink()
    first.write_bytes(b"")  # not a folder
    assert _jitcache.fallback_cache_dir() not in (first, other)
    assert "not a folder" in caplog.text


def test_matplotlib_gets_a_private_config_folder_when_home_cannot_be_written(tmp_path: Path) -> None:
    """With no writable home, matplotlib warned on every ``evaluate`` / ``demo`` run ("Matplotlib
    created a temporary cache directory ...") and built its font cache again each time."""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(HOME="/proc/nonexistent", TMPDIR=str(tmp_path))
    probe = "import medcodec.evaluate.report, matplotlib; print(matplotlib.get_configdir())"
    for _ in range(2):  # the second run finds the folder the first made
        r = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()) == tmp_path / f"medcodec-matplotlib-{os.getuid()}", r.stdout
        assert "temporary cache directory" not in r.stderr and "Matplotlib" not in r.stderr, r.stderr
    env["MPLCONFIGDIR"] = str(tmp_path / "mine")  # the user's choice wins
    r = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert Path(r.stdout.strip()) == tmp_path / "mine", r.stdout
