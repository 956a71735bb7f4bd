"""The worker runtime's retry delays: whatever a server answers in Retry-After, the delay queues stay few."""

from workers.processing import RETRY_AFTER_RUNGS, asked_delay


def test_retry_after_is_honoured_as_a_floor_on_a_bounded_set_of_delay_queues() -> None:
    assert asked_delay(0.5) == 1.0
    assert asked_delay(7) == 15.0  # never sooner than asked
    assert asked_delay(120) == 120.0
    assert asked_delay(86_400) == 3600.0  # past the last rung: the last rung
    assert {asked_delay(seconds) for seconds in range(0, 100_000, 3)} == set(RETRY_AFTER_RUNGS)
