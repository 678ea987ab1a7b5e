"""Queue settings: quick retries on the stand-in keep a message hidden while its batch runs."""

from __future__ import annotations

import pytest

import topology


@pytest.mark.parametrize("seconds", [1, 2, 5, 15, 60, 400, 1800])
def test_retrying_after_fits_the_batching_window_and_the_function_inside_the_visibility(seconds: int) -> None:
    quick = topology.DEFAULT.queue.retrying_after(seconds)
    assert quick.visibility_timeout_seconds == seconds
    assert quick.batching_window_seconds + quick.function_timeout_seconds <= seconds
    assert 1 <= quick.function_timeout_seconds <= topology.DEFAULT.queue.function_timeout_seconds
    assert quick.max_receive_count == topology.DEFAULT.queue.max_receive_count


def test_a_long_enough_retry_keeps_the_deployed_window_and_timeout() -> None:
    deployed = topology.DEFAULT.queue
    assert deployed.retrying_after(deployed.visibility_timeout_seconds) == deployed


def test_retrying_after_less_than_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        topology.DEFAULT.queue.retrying_after(0)
