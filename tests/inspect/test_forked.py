"""The forked helper: its answer comes back whole, and every way it can end without one is
told apart (an exception, a signal, a child past its time), with the child reaped."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from reviews.inspect.rules import forked


def child_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_call_runs_in_another_process_and_its_value_comes_back():
    helper = forked.start(lambda: (os.getpid(), "done"))

    pid, word = helper.result(timeout=30)

    assert pid == helper.pid != os.getpid()
    assert word == "done"
    assert child_is_gone(helper.pid)


def test_an_answer_larger_than_a_pipe_and_a_read_comes_back_whole():
    big = bytes(range(256)) * 20_000  # 5 MB: many writes, many reads

    assert forked.start(lambda: big).result(timeout=30) == big


def test_an_exception_in_the_call_is_told_by_its_name():
    def fails() -> None:
        raise ValueError("no such file")

    with pytest.raises(forked.HelperError, match="ValueError: no such file"):
        forked.start(fails).result(timeout=30)


def test_a_child_killed_by_a_signal_is_stopped_not_an_answer():
    helper = forked.start(lambda: os.kill(os.getpid(), signal.SIGKILL))

    with pytest.raises(forked.HelperStopped, match="SIGKILL"):
        helper.result(timeout=30)
    assert child_is_gone(helper.pid)


def test_a_child_past_its_time_is_killed_and_reaped():
    helper = forked.start(lambda: time.sleep(60))
    started = time.monotonic()

    with pytest.raises(forked.HelperStopped, match=r"did not finish within 1\.0 s"):
        helper.result(timeout=1)
    assert time.monotonic() - started < 10
    assert child_is_gone(helper.pid)


def test_the_childs_cpu_time_is_measured():
    def busy() -> int:
        ends = time.process_time() + 0.2
        while time.process_time() < ends:
            pass
        return 1

    helper = forked.start(busy)
    helper.result(timeout=30)

    assert helper.cpu_seconds >= 0.15


def signalled_while_it_runs(number: signal.Signals) -> forked.Forked[str]:
    """A helper that answers "finished" after 1.5 s, sent `number` 0.5 s after its start."""

    def slow() -> str:
        time.sleep(1.5)
        return "finished"

    helper = forked.start(slow)
    time.sleep(0.5)
    os.kill(helper.pid, number)
    return helper


def test_a_terminate_signal_lets_the_helper_finish():
    # a worker's warm shutdown: systemd sends SIGTERM to every process of the service
    helper = signalled_while_it_runs(signal.SIGTERM)

    assert helper.result(timeout=30) == "finished"


def test_a_parent_that_gives_up_kills_and_reaps_the_helper():
    with pytest.raises(RuntimeError), forked.start(lambda: time.sleep(60)) as helper:
        raise RuntimeError("the parent's own share failed")

    assert child_is_gone(helper.pid)


def test_the_helper_holds_none_of_the_parents_files(tmp_path):
    with (tmp_path / "secret").open("wb") as held:

        def is_open() -> bool:
            try:
                os.fstat(held.fileno())
            except OSError:
                return False
            return True

        assert is_open()
        assert forked.start(is_open).result(timeout=30) is False


def test_the_helper_runs_no_collector_pass():
    # a pass would finalise the parent's unreachable objects in the helper (a database
    # connection's finaliser talks to the server on the parent's behalf)
    import gc

    assert gc.isenabled()
    assert forked.start(gc.isenabled).result(timeout=30) is False


@pytest.mark.parametrize("pid", [0, -1])
def test_only_a_childs_process_id_is_ever_signalled(pid: int):
    # os.kill(0) or os.kill(-1) would kill this process' whole group, or everything it may
    reading, writing = os.pipe()
    os.close(writing)
    try:
        with pytest.raises(ValueError, match="not a child's process id"):
            forked.Forked(pid, reading)
    finally:
        os.close(reading)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_no_pipe_is_left_open_once_the_answer_is_in():
    before = open_descriptors()
    helper = forked.start(lambda: "done")

    assert helper.cpu_seconds == 0.0  # nothing known before the child is reaped
    helper.result(timeout=30)

    assert open_descriptors() == before


def test_a_refused_fork_leaves_no_pipe_open(monkeypatch: pytest.MonkeyPatch):
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    before = open_descriptors()

    with pytest.raises(BlockingIOError):
        forked.start(lambda: "never")

    assert open_descriptors() == before


def test_a_child_that_ends_without_an_answer_is_told_by_its_exit_status():
    with pytest.raises(forked.HelperStopped, match="it ended with status 3"):
        forked.start(lambda: os._exit(3)).result(timeout=30)


def is_a_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:  # listdir's own descriptor, closed by now
        return False


def test_an_answer_cut_short_is_told_not_half_read():
    def cut() -> None:
        # the helper's only pipe is its answer's
        [pipe] = [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and is_a_pipe(fd)]
        os.write(pipe, b"\x80\x05\x95")  # the start of a pickle, then nothing
        os._exit(0)

    with pytest.raises(forked.HelperStopped, match="its answer was cut short"):
        forked.start(cut).result(timeout=30)


def test_the_payload_is_the_value_or_the_exception_named():
    import pickle

    def fails() -> None:
        raise KeyError("lost")

    assert pickle.loads(forked._payload(lambda: [1, "two"])) == (True, [1, "two"])  # noqa: S301
    assert pickle.loads(forked._payload(fails)) == (False, "KeyError: 'lost'")  # noqa: S301


def test_a_payload_larger_than_the_pipe_is_sent_whole():
    import threading

    payload = os.urandom(3 * 1024 * 1024)
    reading, writing = os.pipe()
    received: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(reading, 1 << 16):
            received.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    forked._send(writing, payload)
    os.close(writing)
    reader.join(timeout=30)
    os.close(reading)

    assert b"".join(received) == payload


def test_the_parents_signal_handlers_do_not_run_in_the_helper():
    # a Celery worker handles SIGUSR1 (and others) in Python; in the helper the signal does what
    # it does to any process, and the parent learns of it
    ran: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, _frame: ran.append(number))
    try:
        helper = signalled_while_it_runs(signal.SIGUSR1)

        with pytest.raises(forked.HelperStopped, match="SIGUSR1"):
            helper.result(timeout=30)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert ran == []
