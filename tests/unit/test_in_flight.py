"""eventkit.service.InFlight: how many of a kind of work are under way in this process."""

from __future__ import annotations

import threading

import pytest

from eventkit.service import InFlight

pytestmark = pytest.mark.unit


def test_alone_there_are_no_others_and_with_company_there_are() -> None:
    counter = InFlight()
    with counter:
        assert not counter.others()
        with counter:
            assert counter.others()
        assert not counter.others()


def test_a_failure_inside_still_leaves() -> None:
    counter = InFlight()
    with pytest.raises(RuntimeError), counter:
        raise RuntimeError("boom")
    with counter:
        assert not counter.others()


def test_threads_each_see_the_others() -> None:
    counter, inside, looked = InFlight(), threading.Barrier(3), threading.Barrier(3)
    seen: list[bool] = []

    def work() -> None:
        with counter:
            inside.wait()  # all three are in
            seen.append(counter.others())
            looked.wait()  # none leaves before all have looked

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [True, True, True]
