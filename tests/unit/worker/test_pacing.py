"""The token bucket pacing a stream of replies, driven by an injected clock."""

from __future__ import annotations

import pytest

from m2bridge.worker.pacing import BURST, MERGE_INTERVAL, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_gives_its_burst_then_refuses():
    bucket = TokenBucket(3, 0.25, clock=Clock())
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_one_per_interval():
    clock = Clock()
    bucket = TokenBucket(2, 0.25, clock=clock)
    assert bucket.take()
    assert bucket.take()
    assert not bucket.take()
    assert bucket.wait_time() == pytest.approx(0.25)
    clock.now += 0.125
    assert not bucket.take()
    assert bucket.wait_time() == pytest.approx(0.125)
    clock.now += 0.125
    assert bucket.take()
    assert not bucket.take()


def test_the_bucket_never_holds_more_than_its_burst():
    clock = Clock()
    bucket = TokenBucket(2, 0.25, clock=clock)
    clock.now += 60.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_force_takes_a_token_into_debt():
    clock = Clock()
    bucket = TokenBucket(1, 0.25, clock=clock)
    assert bucket.take()
    assert bucket.take(force=True)
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now += 0.375
    assert not bucket.take()
    clock.now += 0.125
    assert bucket.take()


def test_wait_time_is_zero_while_a_token_is_left():
    bucket = TokenBucket(clock=Clock())
    assert bucket.wait_time() == 0.0
    assert (bucket.burst, bucket.interval) == (BURST, MERGE_INTERVAL)


@pytest.mark.parametrize("later", [0.0, 0.1, 0.25, 10.0])
def test_a_bucket_made_later_with_a_token_spent_equals_one_made_and_taken_then(later: float):
    clock = Clock()
    taken_then = TokenBucket(3, 0.25, clock=clock)
    assert taken_then.take()
    spent_at = clock.now
    clock.now += later
    made_later = TokenBucket(3, 0.25, clock=clock)
    made_later.spent_at(spent_at)
    for _ in range(5):
        assert made_later.take() == taken_then.take()
        assert made_later.wait_time() == pytest.approx(taken_then.wait_time())
