"""medcodec inside someone else's long-running, multi-threaded service (an outside audit, 2026-12-05).

Each test failed on the code before its fix: the warning filter list left with ``ignore`` by
DICOM readers in threads; a 9 KB stream decoding to 512 MB with no way for the caller to cap it;
the warm-up switching the 16x16 blocks off for every thread; a MaskedArray reaching numba; frame
lists of booleans taken as numbers; the warnings ``encode`` issues not exported (the frame
workers' context is a guard that held before).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import medcodec
from medcodec.warnfilter import filtered


def _run_together(*targets: Callable[[], None]) -> None:
    """Each target in a thread of its own, all started, then all joined."""
    threads = [threading.Thread(target=target) for target in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_filter_blocks_in_threads_leave_the_filter_list_as_it_was() -> None:
    """Blocks entered and left in every interleaving (random sleeps in 8 threads, nested ones too)."""
    before = list(warnings.filters)
    rng = np.random.default_rng(1)
    delays = rng.uniform(0, 0.002, size=(8, 40, 2))

    def run(k: int) -> None:
        for a, b in delays[k]:
            with filtered():
                time.sleep(a)
                with filtered("ignore", UserWarning, r"pydicom\."):
                    time.sleep(b)

    _run_together(*(lambda k=k: run(k) for k in range(8)))
    assert warnings.filters == before


def test_a_host_catch_warnings_entered_meanwhile_does_not_bring_the_filter_back() -> None:
    """medcodec's block in one thread, the host's ``catch_warnings`` entered inside it and left
    after it in another: the host puts back the list it saved, which held medcodec's filter; it is
    removed from that list too (it stayed for good until the re-check of 2026-12-06)."""
    before = list(warnings.filters)
    inside, host_in, left = threading.Event(), threading.Event(), threading.Event()

    def library() -> None:
        with filtered():
            inside.set()
            host_in.wait(30)
        left.set()

    def host() -> None:
        inside.wait(30)
        with warnings.catch_warnings():
            host_in.set()
            left.wait(30)

    _run_together(library, host)
    assert warnings.filters == before


def test_the_hosts_own_equal_filter_stays() -> None:
    """A host's ``simplefilter("ignore")`` is not medcodec's to remove, though it looks the same."""
    with warnings.catch_warnings():
        with filtered("ignore", UserWarning):
            warnings.simplefilter("ignore", UserWarning)  # the host's, set while medcodec's block runs
            hosts = [f for f in warnings.filters if f[1] is None]
        assert ("ignore", None, UserWarning, None, 0) in warnings.filters
        assert warnings.filters == hosts


def test_recorded_keeps_its_own_threads_warnings_only() -> None:
    """The reason read for one upload never names another thread's warning (it did, 2026-12-06)."""
    from medcodec.warnfilter import recorded

    go, done = threading.Event(), threading.Event()

    def other() -> None:
        go.wait(30)
        warnings.warn("another client's value", UserWarning, stacklevel=1)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with warnings.catch_warnings(record=True) as host_saw:
        warnings.simplefilter("always")
        with recorded() as said:
            go.set()
            done.wait(30)
            warnings.warn("this upload's reason", UserWarning, stacklevel=1)
    t.join()
    assert [str(w.message) for w in said] == ["this upload's reason"]
    assert [str(w.message) for w in host_saw] == ["another client's value"]


def test_dicom_readers_in_threads_keep_the_hosts_warnings(shared_data: Path) -> None:
    """Four threads reading a CT series while the host's own thread needs its warnings: every one
    arrives and the filter list is unchanged afterwards (with ``catch_warnings`` the readers left
    ``('ignore', Warning)`` behind and the host lost its warnings for good)."""
    from medcodec.dicom import read_series

    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:4]
    before = list(warnings.filters)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            read_series(files)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        time.sleep(0.5)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert warnings.filters == before
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        warnings.warn("the host's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in said] == ["the host's own"]


def test_decode_refuses_more_pixels_than_the_caller_allows() -> None:
    flat = np.full((2, 2048, 2048), 1000, np.uint16)
    stream = medcodec.encode(flat, bits_stored=12)
    assert len(stream) < flat.nbytes / 10_000  # a few hundred bytes for 16 MB: size does not bound the image
    with pytest.raises(medcodec.ImageTooLargeError, match="2 frame\\(s\\) of 2048 x 2048"):
        medcodec.decode(stream, max_pixels=2048 * 2048)
    assert medcodec.decode(stream, frames=1, max_pixels=2048 * 2048).shape == (2048, 2048)
    with pytest.raises(medcodec.ImageTooLargeError):  # a generator is counted as decode takes it (re-check)
        medcodec.decode(stream, frames=(0 for _ in range(3)), max_pixels=2048 * 2048)
    assert medcodec.decode(stream, frames=(k for k in (1,)), max_pixels=2048 * 2048).shape == (1, 2048, 2048)
    assert np.array_equal(medcodec.decode(stream, max_pixels=2 * 2048 * 2048), flat)
    jpeg = medcodec.encode(flat[0], bits_stored=12, format="jpeg")
    with pytest.raises(medcodec.ImageTooLargeError):
        medcodec.decode(jpeg, max_pixels=1000)
    for bad in (0, -5, 2.5, True, "1000"):
        with pytest.raises(medcodec.InvalidInputError, match="max_pixels"):
            medcodec.decode(stream, max_pixels=bad)


def test_the_warm_up_does_not_change_what_other_threads_write() -> None:
    """:func:`~medcodec.codec.intra.without_big_blocks` (the warm-up's 2.5 streams) holds in its own
    thread only; it set a module global for the whole process until 2026-12-06."""
    from medcodec.codec.intra import without_big_blocks

    y, x = np.mgrid[0:96, 0:96]
    img = (2000 + 800 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint16)
    reference = medcodec.encode(img, bits_stored=12, quality=70)
    with without_big_blocks():
        older = medcodec.encode(img, bits_stored=12, quality=70)
    assert older != reference and medcodec.read_header(older).version < medcodec.read_header(reference).version
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with without_big_blocks():
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(30)
        assert medcodec.encode(img, bits_stored=12, quality=70) == reference
    finally:
        release.set()
        holder.join()


def test_an_encoders_mode_model_holds_in_its_frame_workers() -> None:
    """The frame threads run in a copy of the caller's context: a 3-frame stack written with mode
    model 1 (format 2.2) is the same on 1 thread and on 3. (A guard: the encoders decide the mode
    model before they fan out, so this held before the workers got the context too.)"""
    from medcodec.codec.intra import written_mode_model

    y, x = np.mgrid[0:64, 0:64]
    stack = np.stack([(1500 + 300 * k + 500 * np.sin((x + k) / 6.0) * np.cos(y / 4.0)) for k in range(3)])
    stack = stack.astype(np.uint16)
    with written_mode_model(1):
        one = medcodec.encode(stack, bits_stored=12, quality=70, jobs=1)
        three = medcodec.encode(stack, bits_stored=12, quality=70, jobs=3)
    assert one == three


def test_array_subclasses_are_coded_as_their_data_on_the_first_call() -> None:
    """In a fresh process (nothing compiled for plain arrays yet) a MaskedArray without masked values
    and an np.matrix are coded as their data, in both formats (a raw numba error until 2026-12-06)."""
    code = (
        "import warnings, numpy as np, medcodec\n"
        "warnings.simplefilter('error'); warnings.filterwarnings('ignore', category=PendingDeprecationWarning)\n"
        "a = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)\n"
        "for x in (np.ma.MaskedArray(a, mask=False), np.matrix(a)):\n"
        "    for kw in ({}, {'format': 'jpeg'}, {'max_error': 0}):\n"
        "        assert medcodec.encode(x, bits_stored=12, **kw) == medcodec.encode(a, bits_stored=12, **kw), kw\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_frame_lists_take_integers_only() -> None:
    stream = medcodec.encode(np.zeros((3, 16, 16), np.uint16), bits_stored=12)
    for bad in ([True, False], [1.0], [np.bool_(True)]):
        with pytest.raises(medcodec.InvalidInputError, match="sequence of ints"):
            medcodec.decode(stream, frames=bad)
    assert medcodec.decode(stream, frames=[np.int64(2), 0]).shape == (2, 16, 16)


def test_subcommands_are_registered_all_or_none_and_attributes_are_names() -> None:
    """Two threads asking for commands at once both see every one (a thread could get None for
    ``serve`` mid-registration: the re-check of 2026-12-06); a dotted or empty attribute of the
    package is no attribute (it was an import)."""
    code = (
        "import threading, click\n"
        "from medcodec.cli.main import cli\n"
        "seen = []\n"
        "def ask(): seen.append(cli.get_command(click.Context(cli), 'serve') is not None)\n"
        "ts = [threading.Thread(target=ask) for _ in range(4)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "import medcodec\n"
        "print(seen, hasattr(medcodec, 'codec.intra'), hasattr(medcodec, ''), hasattr(medcodec, 'dicom'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "[True, True, True, True] False False True", (r.stdout, r.stderr[-2000:])


def test_the_warnings_encode_issues_are_exported() -> None:
    from medcodec import errors

    for name in ("RateTargetWarning", "DepthReducedWarning", "PaddingWarning", "LossySourceWarning",
                 "ImageTooLargeError"):  # fmt: skip
        assert getattr(medcodec, name) is getattr(errors, name) and name in medcodec.__all__
    assert "OutOfResourcesError" in errors.__all__
    with pytest.warns(medcodec.RateTargetWarning):
        medcodec.encode(np.random.default_rng(0).integers(0, 4096, (32, 32), dtype=np.uint16), bits_stored=12,
                        ratio=500)  # fmt: skip
