"""Parsing real-export values: money, percentages, flags and dates decided per file."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from analytics.base import DateHistory
from analytics.cleaning import parse_date, parse_flag, parse_integer, parse_number, parse_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", 1234.0),
        ("$1,234.50", 1234.5),
        ("1,234.50", 1234.5),
        ("USD 12", 12.0),
        ("-$5.25", -5.25),
        ("$-5.25", -5.25),
        ("(12.50)", -12.5),
        ("12.5%", 0.125),
        ("£1,000,000.00", 1_000_000.0),
        (" 7 ", 7.0),
    ],
)
def test_money_strings_parse_to_their_value(text: str, expected: float) -> None:
    # GIVEN a column of US-style money values with one value of interest
    column = pa.array([text, "$2.50", "3.75"])
    # WHEN parsed
    parsed, fmt = parse_number(column)
    # THEN the value is exact and the file is read with a decimal dot
    assert parsed.values[0].as_py() == pytest.approx(expected, abs=1e-12)
    assert not parsed.invalid[0]
    assert fmt.decimal_comma is False


def test_eu_money_file_is_read_with_a_decimal_comma() -> None:
    # GIVEN an export written with the EU convention, including the ambiguous "1.234"
    column = pa.array(["1.234,50 €", "12,00 €", "1.234", "0,5"])
    # WHEN parsed
    parsed, fmt = parse_number(column, currency=True)
    # THEN the file's decimal mark is the comma, so "1.234" is one thousand two hundred thirty-four
    assert fmt.decimal_comma is True
    assert parsed.values.to_pylist() == [1234.5, 12.0, 1234.0, 0.5]
    assert fmt.currency is not None and fmt.currency.to_pylist()[:2] == ["EUR", "EUR"]


def test_lone_comma_with_three_digits_is_a_thousands_separator_in_a_dot_file() -> None:
    parsed, fmt = parse_number(pa.array(["1,234", "2.50", "$3.10"]))
    assert fmt.decimal_comma is False
    assert parsed.values.to_pylist() == [1234.0, 2.5, 3.1]


@pytest.mark.parametrize("bad", ["12abc", "twelve", "1-2", "(5", "$", "1.2.3", "1,5", "12,34", "1,2345.00"])
def test_values_that_are_not_numbers_are_invalid_not_truncated(bad: str) -> None:
    # In a decimal-dot file a comma must group thousands by three: "1,5" is a typo, not 15.
    parsed, _ = parse_number(pa.array([bad, "$1.00", "$2.50"]))
    assert parsed.invalid[0]
    assert parsed.values[0].as_py() is None


@pytest.mark.parametrize("token", ["", "--", "N/A", "null", "None", "-"])
def test_null_tokens_are_missing_not_invalid(token: str) -> None:
    parsed, _ = parse_number(pa.array([token, "1"]))
    assert parsed.missing[0] and not parsed.invalid[0]


def test_typed_numbers_pass_and_non_finite_values_are_invalid() -> None:
    parsed, _ = parse_number(pa.array([1.5, float("inf"), None, float("nan")]))
    assert parsed.values.to_pylist() == [1.5, None, None, None]
    assert parsed.invalid.tolist() == [False, True, False, True]
    assert parsed.missing.tolist() == [False, False, True, False]


def test_whole_numbers_reject_fractions() -> None:
    parsed = parse_integer(pa.array(["1,000", "2.5", "3"]))
    assert parsed.values.to_pylist() == [1000, None, 3]
    assert parsed.invalid.tolist() == [False, True, False]


def test_flags_accept_the_usual_spellings() -> None:
    parsed = parse_flag(pa.array(["yes", "No", "1", "0", "TRUE", "f", "maybe", None]))
    assert parsed.values.to_pylist() == [True, False, True, False, True, False, None, None]
    assert parsed.invalid.tolist() == [False] * 6 + [True, False]
    assert parsed.missing.tolist() == [False] * 7 + [True]


def test_channel_text_is_trimmed_and_case_normalised() -> None:
    parsed = parse_text(pa.array(["  Google   Ads ", "GOOGLE ADS", "google ads"] * 400), lower=True)
    assert set(parsed.values.to_pylist()) == {"google ads"}


class TestDatesAreDecidedPerFile:
    def test_a_day_above_12_makes_the_whole_file_day_first(self) -> None:
        # GIVEN a slash-dated file where only one row proves the order (13 cannot be a month)
        column = pa.array(["03/04/2024", "13/04/2024", "05/06/2024"])
        # WHEN parsed
        parsed, decision = parse_date(column)
        # THEN every row, including the ambiguous ones, is read day-first
        assert decision is not None and decision.order == "DMY"
        assert parsed.values.to_pylist() == [date(2024, 4, 3), date(2024, 4, 13), date(2024, 6, 5)]

    def test_a_second_part_above_12_makes_the_file_month_first(self) -> None:
        parsed, decision = parse_date(pa.array(["03/04/2024", "04/13/2024"]))
        assert decision is not None and decision.order == "MDY"
        assert parsed.values.to_pylist() == [date(2024, 3, 4), date(2024, 4, 13)]

    def test_without_evidence_slashes_are_us_and_dots_are_eu(self) -> None:
        us, us_decision = parse_date(pa.array(["03/04/2024", "05/06/2024"]))
        eu, eu_decision = parse_date(pa.array(["03.04.2024", "05.06.2024"]))
        assert us.values.to_pylist() == [date(2024, 3, 4), date(2024, 5, 6)]
        assert eu.values.to_pylist() == [date(2024, 4, 3), date(2024, 6, 5)]
        assert us_decision is not None and "default" in us_decision.basis
        assert eu_decision is not None and eu_decision.order == "DMY"

    def test_the_dataset_setting_wins(self) -> None:
        parsed, decision = parse_date(pa.array(["03/04/2024", "04/13/2024"]), configured_order="DMY")
        assert decision is not None and decision.basis == "setting date_order"
        # 04/13/2024 has no 13th month in day-first order: it is invalid, not silently swapped
        assert parsed.values.to_pylist() == [date(2024, 4, 3), None]
        assert parsed.invalid.tolist() == [False, True]

    def test_conflicting_rows_are_invalid_under_the_majority_order(self) -> None:
        parsed, decision = parse_date(pa.array(["13/01/2024", "14/01/2024", "01/15/2024"]))
        assert decision is not None and decision.order == "DMY"
        assert parsed.invalid.tolist() == [False, False, True]

    def test_decision_is_the_same_whether_parsed_directly_or_through_the_dictionary(self) -> None:
        # 1,200 rows take the distinct-values path; 3 rows the direct one; both must agree.
        small = ["13/04/2024", "03/04/2024", "03/04/2024"]
        big = small * 400
        small_parsed, _ = parse_date(pa.array(small))
        big_parsed, _ = parse_date(pa.array(big))
        assert big_parsed.values.to_pylist()[:3] == small_parsed.values.to_pylist()

    def test_iso_timestamps_and_impossible_dates(self) -> None:
        column = pa.array(["2024-02-29T10:00:00Z", "2024-02-30", "2023-02-29", "2024-01-05 13:45:00", "", "soon"])
        parsed, decision = parse_date(column)
        assert decision is None  # nothing ambiguous in ISO dates
        assert parsed.values.to_pylist() == [date(2024, 2, 29), None, None, date(2024, 1, 5), None, None]
        assert parsed.invalid.tolist() == [False, True, True, False, False, True]
        assert parsed.missing.tolist() == [False, False, False, False, True, False]

    def test_two_digit_years_and_typed_columns(self) -> None:
        parsed, _ = parse_date(pa.array(["31.12.23"]))
        assert parsed.values.to_pylist() == [date(2023, 12, 31)]
        typed, _ = parse_date(pa.array([date(2024, 1, 2)], pa.date32()))
        assert typed.values.to_pylist() == [date(2024, 1, 2)]
        stamps, _ = parse_date(pa.array([np.datetime64("2024-01-02T23:59:00")], pa.timestamp("s")))
        assert stamps.values.to_pylist() == [date(2024, 1, 2)]


PROVED_DMY = DateHistory("DMY", "raw/ads/2026-11-02.csv", "v1", "14 value(s) with a first part above 12")


class Lookups:
    """A history lookup that counts its calls (the handler's costs one DynamoDB read)."""

    def __init__(self, history: DateHistory) -> None:
        self.history = history
        self.calls = 0

    def __call__(self) -> DateHistory:
        self.calls += 1
        return self.history


class TestAmbiguousDatesBorrowTheirExportShapesHistory:
    def test_a_file_without_proof_follows_the_order_history_proved(self) -> None:
        # GIVEN an earlier file of the same export shape proved day-first, and this file's dates are all ambiguous
        lookup = Lookups(PROVED_DMY)
        # WHEN parsed
        parsed, decision = parse_date(pa.array(["03/04/2026", "05/04/2026"] * 600), history=lookup)
        # THEN they are read day-first, and the basis names the file that proved it
        assert parsed.values.to_pylist()[:2] == [date(2026, 4, 3), date(2026, 4, 5)]
        assert decision is not None and decision.order == "DMY" and decision.decided_by == "history"
        assert decision.basis == "history: raw/ads/2026-11-02.csv proved DMY (14 value(s) with a first part above 12)"
        assert lookup.calls == 1

    def test_history_wins_over_the_separators_default(self) -> None:
        proved_mdy = DateHistory("MDY", "raw/eu/1.csv", None, "3 value(s) with a second part above 12")
        parsed, decision = parse_date(pa.array(["03.04.2026"]), history=lambda: proved_mdy)
        assert parsed.values.to_pylist() == [date(2026, 3, 4)]
        assert decision is not None and decision.basis.startswith("history: raw/eu/1.csv proved MDY")

    def test_proof_in_the_file_wins_over_history_and_says_it_disagreed(self) -> None:
        # GIVEN history says day-first, but this file has a second part above 12
        parsed, decision = parse_date(pa.array(["03/04/2026", "04/13/2026"]), history=lambda: PROVED_DMY)
        # THEN the file's own proof decides, and the basis says it disagreed with history
        assert parsed.values.to_pylist() == [date(2026, 3, 4), date(2026, 4, 13)]
        assert decision is not None and decision.order == "MDY" and decision.decided_by == "proof"
        assert decision.evidence == "1 value(s) with a second part above 12"
        assert decision.basis.startswith("1 value(s) with a second part above 12; disagrees with history: ")
        assert "raw/ads/2026-11-02.csv proved DMY" in decision.basis

    def test_a_proof_that_agrees_with_history_reads_as_before(self) -> None:
        _, decision = parse_date(pa.array(["13/04/2026", "03/04/2026"]), history=lambda: PROVED_DMY)
        assert decision is not None and decision.basis == "1 value(s) with a first part above 12"
        assert decision.decided_by == "proof"

    def test_the_setting_wins_and_history_is_not_looked_up(self) -> None:
        lookup = Lookups(PROVED_DMY)
        parsed, decision = parse_date(pa.array(["03/04/2026"]), configured_order="MDY", history=lookup)
        assert parsed.values.to_pylist() == [date(2026, 3, 4)]
        assert decision is not None and decision.decided_by == "setting"
        assert lookup.calls == 0

    def test_iso_dates_never_look_history_up(self) -> None:
        lookup = Lookups(PROVED_DMY)
        _, decision = parse_date(pa.array(["2026-04-03"] * 1200), history=lookup)
        assert decision is None and lookup.calls == 0

    def test_no_history_yet_falls_back_to_the_default(self) -> None:
        parsed, decision = parse_date(pa.array(["03/04/2026"]), history=DateHistory)
        assert parsed.values.to_pylist() == [date(2026, 3, 4)]
        assert decision is not None and decision.decided_by == "default"
        assert decision.basis == "no value above 12; slash dates default to month-first (US)"

    def test_history_that_could_not_be_read_falls_back_to_the_default_and_says_so(self) -> None:
        unread = DateHistory(unavailable="the history of this export shape could not be read (AccessDenied)")
        parsed, decision = parse_date(pa.array(["03/04/2026"]), history=lambda: unread)
        assert parsed.values.to_pylist() == [date(2026, 3, 4)]
        assert decision is not None and decision.order == "MDY"
        assert decision.basis.endswith("; the history of this export shape could not be read (AccessDenied)")


def test_spaces_and_apostrophes_may_group_thousands() -> None:
    parsed, fmt = parse_number(pa.array(["1 234,50 €", "12,00 €", "1'234,5", "3\u00a0000,10"]))
    assert fmt.decimal_comma is True
    assert parsed.values.to_pylist() == [1234.5, 12.0, 1234.5, 3000.1]


def test_integer_columns_take_the_fast_path_and_the_careful_one_alike() -> None:
    plain = [str(i) for i in range(3000)]
    fast = parse_integer(pa.array(plain))
    careful = parse_integer(pa.array([*plain[:-1], "2,999"]))  # one grouped value: full parser
    assert fast.values.to_pylist() == careful.values.to_pylist()
    assert not careful.invalid.any()
