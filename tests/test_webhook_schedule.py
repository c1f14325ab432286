"""When a failed webhook delivery is tried again: the configured delays, spread by
±20 %, never sooner than the receiver's Retry-After, and then no more."""
from __future__ import annotations

import random

import pytest

from services.webhooks import next_delay, parse_schedule
from services.webhooks.schedule import DEFAULT_RETRY_SECONDS

SCHEDULE = (5.0, 30.0, 120.0)


@pytest.mark.parametrize(("attempt", "base"), [(1, 5.0), (2, 30.0), (3, 120.0)])
def test_each_retry_waits_its_delay_within_a_fifth(attempt, base):
    rng = random.Random(7)
    delays = [next_delay(attempt, SCHEDULE, None, rng) for _ in range(200)]
    assert all(0.8 * base <= delay <= 1.2 * base for delay in delays)
    assert max(delays) - min(delays) > 0.2 * base  # spread, so retries do not come in herds


def test_after_the_last_delay_the_delivery_has_failed():
    assert next_delay(4, SCHEDULE, None) is None
    assert next_delay(4, SCHEDULE, retry_after=1.0) is None
    assert next_delay(1, (), None) is None


def test_a_retry_after_longer_than_the_delay_is_honoured():
    assert next_delay(1, SCHEDULE, retry_after=60.0) == 60.0
    assert 4.0 <= next_delay(1, SCHEDULE, retry_after=1.0) <= 6.0


def test_attempts_count_from_one():
    with pytest.raises(ValueError, match="from 1"):
        next_delay(0, SCHEDULE, None)


def test_the_default_schedule_gives_up_after_about_seven_hours():
    assert DEFAULT_RETRY_SECONDS == (5, 30, 120, 600, 3600, 21600)
    assert next_delay(len(DEFAULT_RETRY_SECONDS) + 1, DEFAULT_RETRY_SECONDS, None) is None


@pytest.mark.parametrize(("raw", "schedule"), [
    ("5,30,120,600,3600,21600", DEFAULT_RETRY_SECONDS),
    (" 1 , 2.5 ", (1.0, 2.5)),
    ("60", (60.0,)),
])
def test_a_schedule_is_read_from_seconds_separated_by_commas(raw, schedule):
    assert parse_schedule(raw) == schedule


@pytest.mark.parametrize(("raw", "message"), [
    ("", "not a number"),
    ("5,,30", "not a number"),
    ("5;30", "not a number"),
    ("soon", "'soon' is not a number of seconds: write seconds separated by commas"),
    ("5,0", "more than 0"),
    ("-1", "more than 0"),
    ("inf", "more than 0"),
    ("nan", "more than 0"),
])
def test_a_malformed_schedule_is_refused_with_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(raw)
