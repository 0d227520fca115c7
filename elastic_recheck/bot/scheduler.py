"""The bot's scheduler: a heap of "next check" times, a worker pool, and a time budget per attempt.

Waiting for logs is a rescheduled check, never a sleep inside a worker: a
key is handed to the pool when its time comes, at most once at a time. An
attempt runs in its own thread; one stuck past
:attr:`~elastic_recheck.bot.settings.BotSettings.attempt_budget_s` (a hanging
backend, an evaluation that never ends) is *abandoned*: a Python thread
cannot be killed, so it is only marked, and the worker goes on with the next
key.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from elastic_recheck.bot.settings import BotSettings

LOG = logging.getLogger(__name__)


class Scheduler:
    """Runs ``attempt(key)`` for each key when it is due; ``over_budget(key)`` when one gives up.

    ``attempt`` must not raise (the bot's own guard logs and reschedules).
    """

    def __init__(
        self,
        settings: BotSettings,
        attempt: Callable[[str], None],
        over_budget: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._attempt = attempt
        self._over_budget = over_budget
        self._heap: list[tuple[float, str]] = []
        self._inflight: set[str] = set()
        self._abandoned: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="er-worker")
        self._thread = threading.Thread(target=self._loop, name="er-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, key: str, when: float) -> None:
        """Check ``key`` at ``when`` (epoch seconds of the bot's clock)."""
        with self._cond:
            heapq.heappush(self._heap, (when, key))
            self._cond.notify()

    def abandoned(self, key: str) -> bool:
        """Whether the attempt at ``key`` was given up (over budget, or the bot is stopping)."""
        return key in self._abandoned

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and not self._inflight

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no key is queued or running (``False`` after ``timeout``)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._inflight:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.2 if remaining is None else min(0.2, remaining))
        return True

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._heap:
                    self._cond.wait(0.5)
                    continue
                when, key = self._heap[0]
                delay = when - self.clock()
                if delay > 0:
                    self._cond.wait(min(delay, 0.5))
                    continue
                heapq.heappop(self._heap)
                if key in self._inflight:
                    continue
                self._inflight.add(key)
            self._pool.submit(self._attempt_safe, key)

    def _attempt_safe(self, key: str) -> None:
        """Run one attempt in its own thread, within :attr:`BotSettings.attempt_budget_s`.

        An attempt stuck past its budget is abandoned and ``over_budget``
        called (the bot marks the event ``failed``); a stopping bot abandons
        it at once (the event stays pending and resumes at the next start).
        """
        done = threading.Event()
        runner = threading.Thread(target=self._run_attempt, args=(key, done), name=f"er-attempt-{key[:40]}", daemon=True)
        runner.start()
        limit = time.monotonic() + self.settings.attempt_budget_s
        while not done.wait(0.2):
            if self._stop.is_set():
                self._abandoned.add(key)
                LOG.warning("%s: stopping while an attempt is still running; it resumes at the next start", key)
                break
            if time.monotonic() >= limit:
                self._abandoned.add(key)
                LOG.error(
                    "%s: the attempt took longer than %g s ([recheckwatch] attempt_budget); given up, the next events go on",
                    key,
                    self.settings.attempt_budget_s,
                )
                self._over_budget(key)
                break
        with self._cond:
            self._inflight.discard(key)
            self._cond.notify_all()

    def _run_attempt(self, key: str, done: threading.Event) -> None:
        try:
            self._attempt(key)
        finally:
            done.set()
