"""Queue settings: quick retries on the stand-in keep a message hidden while its batch runs."""

from __future__ import annotations

import pytest

import topology


@pytest.mark.parametrize("seconds", [1, 2, 5, 15, 60, 400, 1800])
def test_quick_retries_change_only_when_a_failed_message_comes_back(seconds: int) -> None:
    deployed = topology.DEFAULT.queue
    quick = deployed.retrying_after(seconds)
    assert quick.seconds_before_retry == seconds
    # A slow invocation on a loaded machine is not cut short, and its message stays hidden meanwhile.
    assert quick.function_timeout_seconds == deployed.function_timeout_seconds
    assert quick.visibility_timeout_seconds == deployed.visibility_timeout_seconds
    assert quick.max_receive_count == deployed.max_receive_count


def test_the_deployed_queue_retries_after_its_visibility_timeout() -> None:
    deployed = topology.DEFAULT.queue
    assert deployed.seconds_before_retry == deployed.visibility_timeout_seconds


def test_the_stand_in_batches_for_at_most_a_second_and_keeps_the_deployed_window_a_deploy_setting() -> None:
    deployed = topology.DEFAULT.queue
    local = deployed.on_stand_in()
    assert local.batching_window_seconds <= 1 < deployed.batching_window_seconds
    assert local.batch_size == deployed.batch_size


def test_the_stand_in_runs_a_few_workers_where_lambda_scales_out() -> None:
    deployed = topology.DEFAULT.queue
    assert deployed.max_concurrency >= 50  # grouped commits: no longer pinned at 2
    assert deployed.on_stand_in().max_concurrency == topology.LOCAL_MAX_CONCURRENCY
    assert deployed.on_stand_in().with_workers(6).max_concurrency == 6
    with pytest.raises(ValueError, match="at least 1 worker"):
        deployed.with_workers(0)


def test_retrying_after_less_than_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        topology.DEFAULT.queue.retrying_after(0)
