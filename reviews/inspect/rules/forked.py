"""Run one call in a forked copy of this process, on another core, and take back its result.

tree-sitter holds the GIL while it parses (py-tree-sitter #111: its allocator is Python's), so
threads cannot parse two files at once; a forked child can. It starts with this process' memory
(copy-on-write: the bytes to scan are not copied or pickled), runs the call, sends its pickled
result through a pipe and ends with `os._exit`: no `atexit`, no flushing of files or database
connections that belong to the parent, no logging (a lock another thread held at the fork
would never be released in the child).

The parent learns how the child ended. A Python exception is sent back as text
(`HelperError`); a death by signal (a parser crashing on a hostile file, the kernel's
out-of-memory killer) or a child that outlives its time is `HelperStopped`: the caller decides
what that means, and the parent itself never ran the code that killed the child.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Forked", "HelperError", "HelperStopped", "can_fork", "start"]

T = TypeVar("T")

_CHUNK = 1 << 20


class HelperError(Exception):
    """The call raised in the child; the message names the exception."""


class HelperStopped(Exception):
    """The child ended without an answer: killed by a signal, or past its time."""


def can_fork() -> bool:
    return hasattr(os, "fork")


class Forked(Generic[T]):
    """A call running in a forked child; `result()` waits for it."""

    def __init__(self, pid: int, pipe: int) -> None:
        if pid <= 0:  # `stop()` would signal a whole process group
            raise ValueError(f"{pid} is not a child's process id")
        self.pid = pid
        self._pipe: int | None = pipe
        self._reaped = False
        self.cpu_seconds = 0.0
        """The child's CPU time (user and system), known once `result()` returned or raised."""

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill and reap the child if it still runs (the parent gave up on it: an exception,
        a task's time limit); nothing once `result()` returned or raised."""
        self._close()
        if not self._reaped:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def result(self, timeout: float) -> T:
        """The call's value; `HelperError` if it raised, `HelperStopped` if the child died or
        did not answer within `timeout` seconds (it is killed then)."""
        try:
            payload = self._read(timeout)
        except TimeoutError:
            self.stop()
            raise HelperStopped(f"it did not finish within {timeout:.1f} s") from None
        finally:
            self._close()
        status = self._reap()
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            raise HelperStopped(f"it was stopped by {name}")
        if not payload:
            raise HelperStopped(f"it ended with status {os.waitstatus_to_exitcode(status)}")
        try:
            # our own forked copy wrote it, from this process' own data
            ok, value = pickle.loads(payload)  # noqa: S301
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise HelperStopped(f"its answer was cut short ({e})") from None
        if not ok:
            raise HelperError(value)
        return value  # type: ignore[no-any-return]

    def _read(self, timeout: float) -> bytes:
        assert self._pipe is not None, "the answer was read already"
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._pipe], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self._pipe, _CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _reap(self) -> int:
        _pid, status, usage = os.wait4(self.pid, 0)
        self._reaped = True
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return status

    def _close(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None


def start(call: Callable[[], T]) -> Forked[T]:
    """Fork and run `call` in the child. Raises `OSError` when the system refuses a fork."""
    reading, writing = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(reading)
        os.close(writing)
        raise
    if pid == 0:  # the child: never returns
        os.close(reading)
        _answer(call, writing)
    os.close(writing)
    return Forked(pid, reading)


_FINISH_ANYWAY = (signal.SIGINT, signal.SIGTERM)
"""A worker's warm shutdown (systemd signals every process of the service) lets the task end,
and the helper with it: the helper carries on, bounded by the time budget."""
_PARENTS_HANDLERS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
"""Signals a Celery worker handles in Python: its handlers must not run in the helper."""


def _answer(call: Callable[[], object], pipe: int) -> None:
    try:
        _leave_the_parent_alone(pipe)
        _send(pipe, _payload(call))
    finally:
        os._exit(0)


def _leave_the_parent_alone(pipe: int) -> None:
    """In the child, before the call: none of the parent's files, sockets or other helpers'
    pipes (a helper holding another's pipe open would keep that one's parent waiting for its
    end); no collector pass (it would finalise the parent's unreachable objects here: a
    database connection's finaliser says goodbye to the server), which also saves time; and
    none of the parent's signal handlers."""
    os.closerange(3, pipe)
    os.closerange(pipe + 1, os.sysconf("SC_OPEN_MAX"))
    gc.disable()
    for number in _FINISH_ANYWAY:
        signal.signal(number, signal.SIG_IGN)
    for number in _PARENTS_HANDLERS:
        signal.signal(number, signal.SIG_DFL)


def _payload(call: Callable[[], object]) -> bytes:
    """The call's value, or the exception it raised as text, pickled for the parent."""
    try:
        return pickle.dumps((True, call()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as e:  # the parent decides what it means; nothing is lost
        return pickle.dumps((False, f"{type(e).__name__}: {e}"))


def _send(pipe: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(pipe, view[:_CHUNK]) :]
