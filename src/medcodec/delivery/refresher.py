"""Pre-compute, in the background, the studies that instances arrived in while the server runs.

A new instance (STOW-RS, C-STORE) removes its study's archives in the catalog transaction that
stores it, so the study is served live until it is pre-computed again. ``medcodec ingest``
pre-computes before it returns; a server receiving instances does it here::

    STOW-RS / C-STORE ─ notify(study) ─▶ due once no instance arrived in it for ``quiet`` s
                                           └─ one study at a time: precompute(store, [study])
                                              on the server's encoder processes

* **Debounced per study.** A C-STORE association sends a series one instance at a time: the
  study is pre-computed once, ``quiet`` seconds after its last instance, not once per instance.
  A study that receives instances again within :data:`SETTLE` seconds of its last
  pre-computation waits twice as long as the last time (at least 1 s, at most
  :data:`MAX_QUIET`): a study that arrives one instance every few seconds (STOW-RS per file, an
  association per image) is rebuilt a logarithmic number of times, not once per instance, each
  rebuild rewriting all its archives (an outside audit, 2026-12-02: 190 MB/min of archives written).
  Meanwhile its archives are streamed live.
* **Only what is missing.** :func:`~.precompute.precompute` codes only renditions that are
  missing or stale (a new instance that widens the series' value range changes the series
  mapping, and then every rendition of the series is coded again), then writes the archives.
  While it runs, a request for the study's archive waits for it (up to the server's
  ``precompute_wait``, then it is streamed live, as before); afterwards it comes from storage,
  with ETag and Range.
* **Errors stay here.** A failed pre-computation is logged and counted (:attr:`failed`); the
  study stays live until the next instance or ``medcodec ingest --refresh``. A failure for want
  of space or resources (:class:`~medcodec.errors.StoreFullError`,
  :class:`~medcodec.errors.OutOfResourcesError`) is tried again by itself, :data:`RETRY_FIRST`
  seconds later, then twice as long each time up to :data:`RETRY_MAX`, until it succeeds: studies
  that arrived while the disk was full stayed live until a restart once space was freed (an
  outside audit, 2026-12-05). A study waiting to be tried again is not :meth:`busy` (archive
  requests do not wait for it) and :meth:`wait_idle` does not wait for it.

* **Catching up after a restart.** With ``catch_up`` (the server's default) the thread first
  takes the studies a server received instances in (STOW-RS, C-STORE:
  :meth:`.Catalog.received_studies`) that have no archive for a preset it computes: those a
  stop interrupted, or that arrived too shortly before it.
  Until 2026-12-03 they stayed live until someone ran ``medcodec ingest --refresh``. Studies only
  ``medcodec ingest --no-precompress`` brought are not touched: deferring them was asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from ..errors import NotFoundError, OutOfResourcesError, StoreFullError

__all__ = ["Refresher", "MAX_QUIET", "SETTLE", "RETRY_FIRST", "RETRY_MAX"]

#: Longest wait (s) of a study that keeps receiving instances after it was pre-computed.
MAX_QUIET = 60.0
#: A study pre-computed less than this many seconds ago that receives instances waits longer.
SETTLE = 600.0
#: Seconds before a pre-computation that failed for want of space or resources is tried again ...
RETRY_FIRST = 30.0
#: ... doubling each time up to this.
RETRY_MAX = 600.0

log = logging.getLogger("medcodec.delivery.refresher")


class Refresher:
    """A background thread that pre-computes studies :meth:`notify` names.

    Parameters
    ----------
    store
        The :class:`~medcodec.delivery.store.Store` (its catalog is written from this thread).
    executor
        Where the (instance, preset) tasks run (:func:`~.precompute.precompute`'s ``executor``):
        the server's encoder processes. ``None``: the calling thread's default, a Dask
        LocalCluster per study (slow to start; for tests and tools).
    presets
        Presets to pre-compute (default :data:`~.presets.DEFAULT_PRESETS`).
    quiet
        Seconds without a new instance in a study before it is pre-computed.
    catch_up
        First queue the received studies left pending before this refresher started (see the
        module docstring); :attr:`caught_up` is set once they are queued.
    """

    def __init__(
        self,
        store: Any,
        *,
        executor: Executor | None = None,
        presets: Iterable[str] | None = None,
        quiet: float = 0.5,
        catch_up: bool = False,
    ):
        self.store = store
        self.catch_up = catch_up
        self.caught_up = threading.Event()  # the catch-up's studies are queued (at once without it)
        self.executor = executor
        self.presets = list(presets) if presets is not None else None
        self.quiet = max(0.0, float(quiet))
        self.completed = 0  # pre-computations done
        self.failed = 0  # pre-computations that raised (logged)
        self._due: dict[str, float] = {}  # study -> time.monotonic() when it may start
        self._quiet_of: dict[str, float] = {}  # study waiting -> its quiet time
        self._recent: dict[str, tuple[float, float]] = {}  # study -> (quiet it had, monotonic end)
        self._retry: dict[str, float] = {}  # study -> time.monotonic() when it is tried again
        self._running: str | None = None
        self._running_quiet = 0.0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name="medcodec-refresh")
        self._thread.start()

    def notify(self, study_uid: str) -> None:
        """A new instance was stored in ``study_uid``: pre-compute it once the study is quiet."""
        with self._cond:
            if self._closed:
                return
            now = time.monotonic()
            quiet = self._quiet_of.get(study_uid)
            if quiet is None:
                quiet = self.quiet
                last = self._recent.get(study_uid)
                if last is not None and now - last[1] < SETTLE:  # again soon after a pre-computation
                    quiet = min(MAX_QUIET, max(self.quiet, 2 * last[0], 1.0))
                self._quiet_of[study_uid] = quiet
            self._due[study_uid] = now + quiet
            self._retry.pop(study_uid, None)  # tried again with the new instance
            self._cond.notify_all()

    def quiet_of(self, study_uid: str) -> float | None:
        """The quiet time (s) ``study_uid`` waits for, ``None`` when it does not wait."""
        with self._cond:
            return self._quiet_of.get(study_uid)

    def pending(self) -> list[str]:
        """Studies waiting, being pre-computed or waiting to be tried again."""
        with self._cond:
            return sorted({*self._due, *self._retry, *([self._running] if self._running else [])})

    def retrying(self) -> list[str]:
        """Studies whose pre-computation failed for want of space or resources, to be tried again."""
        with self._cond:
            return sorted(self._retry)

    def computes(self, preset: str, study_uid: str | None = None) -> bool:
        """Whether this refresher pre-computes ``preset`` (for ``study_uid``: also a preset that
        study's archives were made for, :meth:`.Catalog.built_presets`)."""
        from .presets import DEFAULT_PRESETS

        if preset in (self.presets if self.presets is not None else DEFAULT_PRESETS):
            return True
        return study_uid is not None and preset in self.store.catalog.built_presets(study_uid)

    def busy(self, study_uid: str) -> bool:
        """Whether ``study_uid`` is waiting or being pre-computed (an archive request for it waits)."""
        with self._cond:
            return study_uid in self._due or self._running == study_uid

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or running; False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._due or self._running:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop: what waits is dropped (it stays live, and ``--refresh`` finds it); a running
        pre-computation ends when the executor it uses is shut down. Waits up to ``timeout`` s for
        the thread; call it again (it is idempotent) to wait once the executor is shut down."""
        with self._cond:
            self._closed = True
            self._due.clear()
            self._retry.clear()
            self._quiet_of.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _next(self) -> str | None:
        """The next study that is due (waits for it), or ``None`` once closed."""
        with self._cond:
            while not self._closed:
                waiting = [*self._due.items(), *self._retry.items()]
                if not waiting:
                    self._cond.wait()
                    continue
                study, due = min(waiting, key=lambda kv: kv[1])
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._due.pop(study, None)
                self._retry.pop(study, None)
                self._running = study
                self._running_quiet = self._quiet_of.pop(study, self.quiet)
                return study
            return None

    def _queue_left_pending(self) -> None:
        """Notify the received studies whose archives are missing (``catch_up``). Archives of an
        older coding revision are not this: an upgrade's ``ingest --refresh`` is the operator's
        call (docs/delivery.md, "Upgrading"), not a startup's."""
        from .presets import DEFAULT_PRESETS

        try:
            received = set(self.store.catalog.received_studies())
            missing: set[str] = set()
            for name in self.presets if self.presets is not None else DEFAULT_PRESETS:
                if received:  # a new instance drops all of a study's archives: the default ones say it
                    missing.update(self.store.catalog.studies_without_archive(name))
            left = sorted(received & missing)
        except Exception as exc:  # a catalog that cannot answer now: the server still serves
            log.warning("could not list the studies left pending before the start: %s: %s", type(exc).__name__, exc)
            return
        if left:
            log.info("pre-computing %d study(ies) received before the last stop and not pre-computed", len(left))
        for study in left:
            self.notify(study)

    def _deleted(self, study: str) -> bool:
        """True when the catalog holds no instance of ``study`` any more (False when it cannot say)."""
        try:
            return not self.store.catalog.instances(study, None, None)
        except Exception:
            return False

    def _run(self) -> None:
        from .precompute import precompute
        from .presets import DEFAULT_PRESETS

        if self.catch_up:
            self._queue_left_pending()
        self.caught_up.set()
        waited: dict[str, float] = {}  # study -> the wait before its last try again
        while (study := self._next()) is not None:
            started = time.perf_counter()
            retry_in = None
            try:
                names = set(self.presets if self.presets is not None else DEFAULT_PRESETS)
                names |= set(self.store.catalog.built_presets(study))  # every preset the study had
                written = precompute(self.store, [study], presets=sorted(names), executor=self.executor)
                self.completed += 1
                waited.pop(study, None)
                log.info("pre-computed study %s: %d archive(s) in %.1f s", study, len(written),
                         time.perf_counter() - started)  # fmt: skip
            except Exception as exc:  # the study stays live; the next instance or --refresh tries again
                if isinstance(exc, NotFoundError) and self._deleted(study):
                    # deleted while it waited (a correction, a retention job): nothing to do, not a
                    # failure; counted as one, /health's precompute_failed rose under normal deletes
                    # (an outside audit, 2026-12-05)
                    log.info("study %s was deleted before it was pre-computed", study)
                    continue
                self.failed += 1
                if isinstance(exc, (StoreFullError, OutOfResourcesError)):  # space or files come back
                    retry_in = waited[study] = min(RETRY_MAX, 2 * waited[study]) if study in waited else RETRY_FIRST
                log.warning("pre-computing study %s failed (served live meanwhile%s): %s: %s", study,
                            f"; tried again in {retry_in:g} s" if retry_in else "",
                            type(exc).__name__, exc)  # fmt: skip
            finally:
                with self._cond:
                    self._running = None
                    if retry_in is not None and not self._closed and study not in self._due:
                        self._retry[study] = time.monotonic() + retry_in
                    now = time.monotonic()
                    if len(self._recent) > 10_000:  # forget what settled long ago
                        self._recent = {k: v for k, v in self._recent.items() if now - v[1] < SETTLE}
                    self._recent[study] = (self._running_quiet, now)
                    self._cond.notify_all()
