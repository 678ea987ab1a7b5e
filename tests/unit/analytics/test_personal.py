"""Personal data: which columns are personal, how values are normalised, and that pseudonyms are
HMAC-SHA-256 of the normalised value (checked against hmac/hashlib computed here, independently)."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest

from analytics import _kernels as k
from analytics.errors import SettingsError
from analytics.personal import (
    WITHHELD,
    PersonalDataPolicy,
    Pseudonymiser,
    header_key,
    holds_phones,
    key_id,
    looks_like_phone,
    normalise,
    personal_kind,
    pseudonymise,
    scrub_text,
)

KEY = bytes(range(32))


def reference(value: str, key: bytes = KEY) -> str:
    """The pseudonym computed the plain way: HMAC-SHA-256 of the UTF-8 value, first 32 hex chars."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Email", "email"),
        ("E-Mail", "email"),
        ("email_address", "email"),
        ("Customer Email", "email"),
        ("customerEmail", "email"),
        ("Phone", "phone"),
        ("Billing Phone", "phone"),
        ("mobile_number", "phone"),
        ("First Name", "name"),
        ("last_name", "name"),
        ("Billing Name", "name"),
        ("Shipping Name", "name"),
        ("customer_name", "name"),
        ("Surname", "name"),
        ("Billing Address1", "address"),
        ("Shipping Address2", "address"),
        ("Shipping Street", "address"),
        ("street", "address"),
        ("address_line_1", "address"),
        # not personal by header
        ("Name", None),  # Shopify's order name (#1001)
        ("Campaign name", None),
        ("Lineitem name", None),
        ("Accepts Email Marketing", None),
        ("IP Address", None),
        ("Billing City", None),
        ("Customer", None),
        ("customer_id", None),
        ("source_key", None),
        ("_reason", None),
    ],
)
def test_personal_columns_are_found_by_header(header: str, kind: str | None) -> None:
    assert personal_kind(header) == kind


def test_headers_are_compared_normalised() -> None:
    assert header_key(" Billing Address1 ") == "billing_address1"
    assert header_key("customerEmail") == "customer_email"


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("+49 30 1234567", True),
        ("0049 (30) 123 4567", True),
        ("(030) 123-4567", True),
        ("555-123-4567", True),
        ("030 1234 5678", True),
        ("2026-03-04", False),  # a date
        ("03.04.2026", False),
        ("192.168.100.10", False),  # an IP address
        ("1.234.567", False),  # a number with thousands separators
        ("1234567890", False),  # bare digits: order ids look like that
        ("0000575", False),  # an id with leading zeros is not "00" dialled abroad
        ("0012345678", False),
        ("+49 12", False),  # too few digits
    ],
)
def test_phone_numbers_are_recognised_as_written(text: str, phone: bool) -> None:
    assert looks_like_phone(text) is phone


def test_a_column_is_a_phone_column_when_most_values_look_like_phones() -> None:
    assert holds_phones(pa.array(["+44 20 7946 0958", "+1 (555) 010-9999", None, "n/a", "+33 1 23 45 67 89"]))
    assert not holds_phones(pa.array(["+44 20 7946 0958", "10023", "10024", "10025"]))
    assert not holds_phones(pa.array([4420794609, 15550109999]))  # numbers: only a header says phone


def test_normalising_makes_the_same_person_the_same_text() -> None:
    emails = normalise(pa.array(["  Bob@Example.COM ", "bob@example.com", None, "   "]), "email")
    assert emails.to_pylist() == ["bob@example.com", "bob@example.com", None, None]
    names = normalise(pa.array(["Ada  LOVELACE", " ada lovelace\t", "Ａｄａ Lovelace"]), "name")
    assert names.to_pylist() == ["ada lovelace"] * 3  # full-width letters are NFKC-folded too
    phones = normalise(pa.array(["+49 (30) 123-4567", "0049 30 1234567", "030 1234567", "n/a"]), "phone")
    assert phones.to_pylist() == ["+49301234567", "+49301234567", "0301234567", None]


def test_a_pseudonym_is_hmac_sha256_of_the_normalised_value() -> None:
    values = pa.array(["  Bob@Example.COM ", None, "bob@example.com", "alice@example.org"])
    assert pseudonymise(values, KEY, "email").to_pylist() == [
        reference("bob@example.com"),
        None,
        reference("bob@example.com"),
        reference("alice@example.org"),
    ]
    # A known vector, written out: HMAC-SHA-256(key=0x00..0x1f, "bob@example.com").
    assert reference("bob@example.com") == hmac.new(KEY, b"bob@example.com", "sha256").hexdigest()[:32]
    assert pseudonymise(pa.array(["+49 30 1234567"]), KEY, "phone").to_pylist() == [reference("+49301234567")]


def test_pseudonyms_depend_on_the_key() -> None:
    one = pseudonymise(pa.array(["bob@example.com"]), KEY)
    other = pseudonymise(pa.array(["bob@example.com"]), bytes(32))
    assert one != other
    assert key_id(KEY) != key_id(bytes(32))
    assert key_id(KEY) == key_id(bytes(range(32)))


def test_the_hmac_kernel_equals_hmac_for_short_and_long_keys() -> None:
    values = ["", "a", "bob@example.com", "é", None, "x" * 300]
    for key in (b"k" * 16, KEY, b"long" * 40):  # 160 bytes: longer than SHA-256's block, hashed first
        expected = [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
        assert k.hmac_sha256_hex(key, values) == expected


def test_email_addresses_in_text_become_the_same_pseudonym_as_the_cell() -> None:
    scrubbed = scrub_text(pa.array(["1,Bob@Example.com,12.50", "no address here", None]), KEY)
    assert scrubbed.to_pylist() == [f"1,{reference('bob@example.com')},12.50", "no address here", None]


def _table(**columns: list[object]) -> pa.Table:
    return pa.table({name: pa.array(values) for name, values in columns.items()})


def test_a_table_loses_every_personal_value_and_keeps_the_rest() -> None:
    p = Pseudonymiser(KEY)
    data = _table(
        customer_id=["bob@example.com", "C-17", None],
        billing_name=["Bob Smith", "Ann Lee", None],
        phone=["+1 555 010 9999", "+1 555 010 0000", None],
        notes=["call bob@example.com", "", None],
        amount=[1.0, 2.0, 3.0],
        source_key=["raw/x/a@b.com.csv"] * 3,
    )
    out = p.table(data, "orders")
    assert out.column("customer_id").to_pylist() == [reference("bob@example.com"), "C-17", None]
    assert out.column("billing_name").to_pylist() == [reference("bob smith"), reference("ann lee"), None]
    assert out.column("phone").to_pylist() == [reference("+15550109999"), reference("+15550100000"), None]
    assert out.column("notes").to_pylist() == [f"call {reference('bob@example.com')}", "", None]
    assert out.column("amount") == data.column("amount")
    assert out.column("source_key") == data.column("source_key")  # lineage is never touched
    assert p.summary()["pseudonymised"] == {"orders": ["billing_name", "customer_id", "notes", "phone"]}


def test_a_numeric_phone_column_becomes_text_pseudonyms() -> None:
    out = Pseudonymiser(KEY).table(_table(mobile=[4915112345678, None]), "t")
    assert out.column("mobile").to_pylist() == [reference("4915112345678"), None]


def test_the_setting_keeps_and_adds_columns() -> None:
    policy = PersonalDataPolicy.from_settings(
        {"personal_data": {"keep": ["Billing Name", "contact"], "pseudonymise": ["loyalty_card"]}}, "orders"
    )
    p = Pseudonymiser(KEY, policy)
    out = p.table(
        _table(billing_name=["Bob Smith"], contact=["bob@example.com"], loyalty_card=[" LC-1 "], city=["Oslo"]), "t"
    )
    assert out.column("billing_name").to_pylist() == ["Bob Smith"]
    assert out.column("contact").to_pylist() == ["bob@example.com"]  # kept: e-mails in it too
    assert out.column("loyalty_card").to_pylist() == [reference("lc-1")]
    assert out.column("city").to_pylist() == ["Oslo"]
    assert p.summary()["kept"] == ["billing_name"]
    assert p.summary()["pseudonymised"] == {"t": ["loyalty_card"]}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"personal_data": ["email"]}, "must be an object"),
        ({"personal_data": {"keep": "email"}}, "keep must be a list"),
        ({"personal_data": {"drop": ["email"]}}, "must be an object"),
        ({"personal_data": {"keep": ["email"], "pseudonymise": ["Email"]}}, "both kept and pseudonymised"),
    ],
)
def test_a_bad_setting_says_which_file_and_what_to_write(setting: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        PersonalDataPolicy.from_settings(setting, "orders")
    assert "settings/orders.json" in str(raised.value)


def test_quarantine_rows_share_the_files_decisions_and_hide_raw_lines_with_names() -> None:
    p = Pseudonymiser(KEY)
    p.table(_table(customer_email=["bob@example.com"], full_name=["Bob Smith"]), "people")
    rows = _table(
        **{
            "Customer Email": ["BOB@example.com", None],
            "Full Name": ["Bob Smith", None],
            "_row_number": [3, None],
            "_reason_code": ["bad_date", "malformed_line"],
            "_reason": ["order_date 'x' of bob@example.com is not a date", "line 9 has 4 fields"],
            "_raw_line": [None, 'bob@example.com,"Bob Smith,2026-01-01'],
        }
    )
    out = p.quarantine(rows)
    assert out.column("Customer Email").to_pylist() == [reference("bob@example.com"), None]
    assert out.column("Full Name").to_pylist() == [reference("bob smith"), None]
    assert out.column("_reason").to_pylist()[0] == f"order_date 'x' of {reference('bob@example.com')} is not a date"
    line = out.column("_raw_line").to_pylist()
    assert line[0] is None
    assert line[1] == WITHHELD.format(columns="Full Name")  # names cannot be found in text; e-mails can
    assert "Bob" not in str(out.to_pylist())


def test_a_raw_line_of_a_file_with_only_email_columns_keeps_its_text_with_pseudonyms() -> None:
    rows = _table(email=[None], _reason_code=["malformed_line"], _raw_line=["x@y.org,1,2,3"])
    out = Pseudonymiser(KEY).quarantine(rows)
    assert out.column("_raw_line").to_pylist() == [f"{reference('x@y.org')},1,2,3"]


def test_profile_rows_of_personal_columns_lose_their_min_and_max() -> None:
    p = Pseudonymiser(KEY)
    p.table(_table(email=["a@b.co"], visits=[3]), "web")
    profile = _table(column=["email", "visits"], min=["a@b.co", "3"], max=["z@b.co", "9"], min_number=[None, 3.0])
    out = p.profile(profile, "dataset_profiles")
    assert out.column("min").to_pylist() == [None, "3"]
    assert out.column("max").to_pylist() == [None, "9"]
    assert out.column("min_number").to_pylist() == [None, 3.0]


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymiser(b"short")
