"""The forked helper: its answer comes back whole, and every way it can end without one is
told apart (an exception, a signal, a child past its time), with the child reaped."""

from __future__ import annotations

import os
import signal
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

    with pytest.raises(forked.HelperStopped, match="did not finish within 1 s"):
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


def test_a_terminate_signal_lets_the_helper_finish():
    # a worker's warm shutdown: systemd sends SIGTERM to every process of the service
    def slow() -> str:
        time.sleep(1)
        return "finished"

    helper = forked.start(slow)
    time.sleep(0.3)
    os.kill(helper.pid, signal.SIGTERM)

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
