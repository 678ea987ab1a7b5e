"""The cost calculator (``python -m bench.cost``): the arithmetic a reader of docs/deploy.md relies on."""

from __future__ import annotations

import pytest

from bench.cost import (
    WORKLOADS,
    Deployment,
    Durations,
    Prices,
    Workload,
    before_monthly,
    estimate,
    fixed_monthly,
    main,
)


def test_graviton_costs_about_a_fifth_less_compute_for_the_same_durations() -> None:
    workload = WORKLOADS[0]
    arm = estimate(workload, deployment=Deployment(architecture="arm64")).items["Lambda compute"]
    x86 = estimate(workload, deployment=Deployment(architecture="x86_64")).items["Lambda compute"]
    assert arm / x86 == pytest.approx(0.8, abs=0.01)


def test_compute_cost_is_files_times_seconds_times_gigabytes_times_price() -> None:
    workload = Workload("one", files_per_day=1, mb_per_file=0)
    durations = Durations(fixed_seconds=1.0, seconds_per_mb=0.0, io_seconds=0.0)
    e = estimate(workload, durations, Deployment(memory_mb=1024))
    assert e.items["Lambda compute"] == pytest.approx(30 * 1.0 * 1.0 * Prices().lambda_gb_second_arm64)


def test_per_gb_falls_as_files_grow_and_the_always_on_service_costs_more_for_every_example() -> None:
    small, big = WORKLOADS[1], WORKLOADS[0]
    assert estimate(small).per_gb > estimate(big).per_gb
    for workload in WORKLOADS:
        assert sum(before_monthly(workload).values()) > estimate(workload).total + sum(fixed_monthly().values())


def test_a_file_longer_than_the_timeout_is_called_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seconds-per-mb", "1"]) == 0
    assert "exceeds the 300 s function timeout" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--memory-mb", "64"], ["--io-seconds", "-1"]])
def test_bad_inputs_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench.cost: ") and err.count("\n") == 1
