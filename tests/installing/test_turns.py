"""carton_hook/installing/turns.py: a worker process unpacks one wheel at a time, the one
ranked first among those ready."""

from __future__ import annotations

import threading
import time

from carton_hook.installing.turns import Turns


def _take_turns(turns: Turns, arrivals: list[str]) -> list[str]:
    """Each of `arrivals` asks for its turn from a thread of its own, in that order,
    while the first holds its turn until all others wait; the order they got it in."""
    got: list[str] = []
    first = threading.Event()
    all_wait = threading.Event()

    def one(sha: str) -> None:
        with turns.turn(sha):
            got.append(sha)
            if len(got) == 1:
                first.set()
                all_wait.wait(5)

    threads = [threading.Thread(target=one, args=(arrivals[0],))]
    threads[0].start()
    first.wait(5)
    for count, sha in enumerate(arrivals[1:], 1):
        threads.append(threading.Thread(target=one, args=(sha,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while turns.waiting() < count and time.monotonic() < deadline:
            time.sleep(0.001)  # they ask in this order (rank decides, not arrival)
    all_wait.set()
    for thread in threads:
        thread.join(5)
    return got


def test_the_first_ranked_of_those_waiting_goes_next_one_at_a_time() -> None:
    inside = 0
    most = 0
    lock = threading.Lock()
    turns = Turns(["a", "b", "c", "d"])
    got = _take_turns(turns, ["c", "d", "b", "unlisted", "a"])
    assert got == ["c", "a", "b", "d", "unlisted"]

    def count(sha: str) -> None:
        nonlocal inside, most
        with turns.turn(sha):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=count, args=(sha,)) for sha in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert most == 1


def test_a_ready_wheel_does_not_wait_for_one_ranked_before_it_that_is_not() -> None:
    """"a" is still downloading: "b" goes at once."""
    turns = Turns(["a", "b"])
    done = threading.Event()

    def b() -> None:
        with turns.turn("b"):
            done.set()

    thread = threading.Thread(target=b)
    thread.start()
    assert done.wait(5)
    thread.join(5)


def test_a_turn_that_fails_passes_it_on() -> None:
    turns = Turns(["a", "b"])
    try:
        with turns.turn("a"):
            raise OSError("disk full")
    except OSError:
        pass
    done = threading.Event()

    def b() -> None:
        with turns.turn("b"):
            done.set()

    threading.Thread(target=b, daemon=True).start()
    assert done.wait(5)


def test_a_wheel_ranked_first_that_becomes_ready_is_handed_the_turn_between_members() -> None:
    """"b" was downloaded first and unpacks; "a", which the model imports first, is
    ready after b's first member: it is unpacked before b's second."""
    turns = Turns(["a", "b"])
    events: list[str] = []
    b_started = threading.Event()

    def b() -> None:
        with turns.turn("b"):
            events.append("b1")
            b_started.set()
            deadline = time.monotonic() + 5
            while turns.waiting() < 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            turns.hand_over("b")
            events.append("b2")
            turns.hand_over("b")  # nobody ranked before it waits: goes on at once
            events.append("b3")

    def a() -> None:
        with turns.turn("a"):
            events.append("a")
            turns.hand_over("a")  # "b" waits, but ranks after it

    first = threading.Thread(target=b)
    first.start()
    assert b_started.wait(5)
    second = threading.Thread(target=a)
    second.start()
    first.join(5)
    second.join(5)
    assert events == ["b1", "a", "b2", "b3"]
