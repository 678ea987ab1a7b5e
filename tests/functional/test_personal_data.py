"""Personal data lands pseudonymised: the handler, in-process, against the moto server.

The expected pseudonyms are computed here with hmac/hashlib and the key read back from the stand-in's
Secrets Manager, not with the code under test.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

import topology
from handlers.errors import PseudonymKeyError
from lake.standin.server import client
from tests.conftest import Lake
from tests.functional.conftest import Invoke, curated_rows, next_messages, quarantine_rows

SIGNUPS = (
    "Email,Full Name,Phone,Billing City,Plan,Visits\n"
    "Ada@Example.com ,Ada Lovelace,+44 20 7946 0001,London,pro,3\n"
    "grace@example.org,Grace Hopper,+1 (555) 010-0002,Arlington,free,5\n"
    + "".join(f"member{i}@example.com,Member {i},+44 20 7946 10{i:02d},Town {i},free,{i}\n" for i in range(8))
    + "alan@example.net,Alan Turing,+44 20 7946 0003,Wilmslow,free,7,extra\n"  # a field too many
    'broken@example.com,"Unclosed, Quote,+1 555 010 0004,Nowhere,free,1\n'
)
ORDERS = (
    "Order ID,Customer ID,Amount,Order Date\n"
    "A-1,ada@example.com,19.90,2026-10-01\n"
    "A-2,C-0042,5.00,2026-10-02\n"
    "A-3,GRACE@EXAMPLE.ORG,7.25,2026-10-03\n"
    "A-4,alan@example.net,not a number,2026-10-04\n" + "".join(f"B-{i},C-{i},1.00,2026-10-05\n" for i in range(6))
)
# The phones as written (with their spaces and brackets): bare digits such as "555" also turn up in
# the hex of a pseudonym or of a row's uuid, which made this check fail at random.
CLEAR = (
    "Ada",
    "Lovelace",
    "Grace",
    "Hopper",
    "Alan",
    "Turing",
    "ada@",
    "grace@",
    "alan@",
    "20 7946",
    "(555)",
    "555 010",
)


def pseudonym(lake: Lake, normalised: str) -> str:
    """HMAC-SHA-256 of the normalised value under the stand-in's key, 32 hex characters."""
    key = (
        client("secretsmanager", lake.endpoints.endpoint_url)
        .get_secret_value(SecretId=topology.DEFAULT.pseudonym_secret_name)["SecretString"]
        .encode()
    )
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:32]


def test_personal_columns_land_as_pseudonyms_in_curated_and_quarantine_and_raw_keeps_the_file(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN a sign-up export with e-mails, names and phones, and two broken lines
    lake.put("raw/signups/2026-10.csv", SIGNUPS.encode())
    # WHEN it is processed
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN the curated rows hold pseudonyms of the normalised values, and the rest as it was
    rows = sorted(
        (r for r in curated_rows(lake, "signups") if not r["billing_city"].startswith("Town")),
        key=lambda r: r["billing_city"],
    )
    assert [(r["email"], r["full_name"], r["phone"], r["billing_city"]) for r in rows] == [
        (pseudonym(lake, "grace@example.org"), pseudonym(lake, "grace hopper"), pseudonym(lake, "+15550100002"),
         "Arlington"),
        (pseudonym(lake, "ada@example.com"), pseudonym(lake, "ada lovelace"), pseudonym(lake, "+442079460001"),
         "London"),
    ]  # fmt: skip
    # AND the quarantine holds no personal value in clear either: a broken line's text is withheld
    # (names cannot be found in text), its reason says where the line is
    rejected = quarantine_rows(lake, "signups")
    assert len(rejected) == 2
    assert not [v for r in rejected for v in r.values() if isinstance(v, str) and any(c in v for c in CLEAR)]
    assert {r["_raw_line"] for r in rejected} == {
        "withheld: the line may hold personal data (Full Name, Phone); the raw object in raw/ keeps it"
    }
    # AND the event says which columns were pseudonymised, with the key's id
    [event] = lake.events(1)
    personal = event["detail"]["personal_data"]
    assert personal["pseudonymised"]["signups"] == ["email", "full_name", "phone"]
    assert set(personal["pseudonymised"]["quarantine"]) >= {"Email", "Full Name", "Phone"}
    assert personal["kept"] == []
    # AND raw/ keeps the original bytes
    body = lake.s3.get_object(Bucket=lake.bucket, Key="raw/signups/2026-10.csv")["Body"].read()
    assert body == SIGNUPS.encode()


def test_the_same_email_is_the_same_pseudonym_across_files_and_datasets(lake: Lake, invoke: Invoke) -> None:
    # GIVEN sign-ups (an Email column) and orders whose customer ids are partly e-mail addresses
    lake.put("raw/signups/2026-10.csv", SIGNUPS.encode())
    invoke(next_messages(lake))
    lake.put("raw/orders/2026-10.csv", ORDERS.encode())
    invoke(next_messages(lake))
    # THEN an order's e-mail customer id is the pseudonym the sign-up's Email got (case and spaces
    # do not matter), and an id that is not an e-mail stays as exported
    orders = {r["order_id"]: r["customer_id"] for r in curated_rows(lake, "orders") if r["order_id"] < "B"}
    signups = {r["billing_city"]: r["email"] for r in curated_rows(lake, "signups")}
    assert orders == {"A-1": signups["London"], "A-2": "C-0042", "A-3": signups["Arlington"]}
    # AND so customers join across the two exports
    assert orders["A-1"] == pseudonym(lake, "ada@example.com")
    # AND the quarantined order's customer is the same pseudonym as in the sign-ups
    [bad] = quarantine_rows(lake, "orders")
    assert bad["Amount"] == "not a number"  # quarantine keeps the export's headers
    assert pseudonym(lake, "alan@example.net") in bad.values()
    assert "alan@" not in str(bad)
    events = {e["detail"]["dataset"]: e["detail"] for e in lake.events(2)}
    assert events["orders"]["personal_data"]["pseudonymised"]["orders"] == ["customer_id"]


def test_a_dataset_setting_keeps_a_column_in_clear_and_adds_one(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the dataset keeps Full Name in clear and pseudonymises Plan
    lake.put("settings/signups.json", b'{"personal_data": {"keep": ["Full Name"], "pseudonymise": ["plan"]}}')
    lake.put("raw/signups/2026-10.csv", SIGNUPS.encode())
    invoke(next_messages(lake))
    rows = sorted(
        (r for r in curated_rows(lake, "signups") if not r["billing_city"].startswith("Town")),
        key=lambda r: r["billing_city"],
    )
    # THEN the kept column is in clear, the added one pseudonymised, the others as by default
    assert [r["full_name"] for r in rows] == ["Grace Hopper", "Ada Lovelace"]
    assert [r["plan"] for r in rows] == [pseudonym(lake, "free"), pseudonym(lake, "pro")]
    assert rows[1]["email"] == pseudonym(lake, "ada@example.com")
    [event] = lake.events(1)
    assert event["detail"]["personal_data"]["kept"] == ["full_name"]
    assert event["detail"]["personal_data"]["pseudonymised"]["signups"] == ["email", "phone", "plan"]


def test_a_bad_personal_data_setting_fails_the_file_with_what_to_write(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/signups.json", b'{"personal_data": {"keep": "Full Name"}}')
    lake.put("raw/signups/2026-10.csv", SIGNUPS.encode())
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}  # permanent: announced, not retried
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    assert (
        "settings/signups.json: personal_data.keep must be a list of column names"
        in (event["detail"]["error"]["message"])
    )
    assert curated_rows(lake, "signups") == []


def test_without_its_key_the_function_writes_nothing_and_the_message_is_retried(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the pseudonym secret is gone (a broken deployment)
    client("secretsmanager", lake.endpoints.endpoint_url).delete_secret(
        SecretId=topology.DEFAULT.pseudonym_secret_name, ForceDeleteWithoutRecovery=True
    )
    lake.put("raw/signups/2026-10.csv", SIGNUPS.encode())
    [message] = next_messages(lake)
    # WHEN the function takes the file, THEN the invocation fails (the batch goes back to the queue:
    # retried, then the DLQ), saying what is missing and what to do
    with pytest.raises(PseudonymKeyError) as raised:
        invoke([message])
    assert "cannot read the pseudonym key (Secrets Manager secret lake-pseudonym-key): ResourceNotFoundException" in (
        str(raised.value)
    )
    # AND nothing was written in clear
    assert curated_rows(lake, "signups") == [] and quarantine_rows(lake, "signups") == []


SHOPIFY = (
    "Name,Email,Financial Status,Created at,Total,Lineitem name,Billing Name,Billing Address1,Billing City,"
    "Billing Phone,Shipping Name,Shipping Street,Notes\n"
    "#1001,ada@example.com,paid,2026-10-01 10:00:00 +0200,19.90,Socks,Ada Lovelace,12 Byron Road,London,"
    "+44 20 7946 0001,Ada Lovelace,12 Byron Road,call ada@example.com first\n"
    "#1001,ada@example.com,,,,Hat,,,,,,,\n"
    "#1002,grace@example.org,paid,2026-10-02 11:00:00 -0400,5.00,Socks,Grace Hopper,1 Navy Way,Arlington,"
    "+1 555 010 0002,Grace Hopper,1 Navy Way,\n"
)


def test_a_refused_shopify_export_is_quarantined_without_personal_data_in_clear(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a Shopify orders export the orders contract cannot take whole (no customer id column
    # until the export is recognised): every row goes to quarantine with its original columns
    lake.put("raw/orders/shopify-2026-10.csv", SHOPIFY.encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "failed"
    rows = quarantine_rows(lake, "orders")
    assert len(rows) == 3
    # THEN the quarantine keeps the export's columns, with every personal one a pseudonym
    first = next(r for r in rows if r["Lineitem name"] == "Socks" and r["Billing City"] == "London")
    assert first["Email"] == pseudonym(lake, "ada@example.com")
    assert first["Billing Name"] == first["Shipping Name"] == pseudonym(lake, "ada lovelace")
    assert first["Billing Address1"] == first["Shipping Street"] == pseudonym(lake, "12 byron road")
    assert first["Billing Phone"] == pseudonym(lake, "+442079460001")
    assert first["Notes"] == f"call {pseudonym(lake, 'ada@example.com')} first"
    assert first["Name"] == "#1001" and first["Total"] == "19.90"  # not personal: kept as exported
    assert not [v for r in rows for v in r.values() if isinstance(v, str) and any(c in v for c in CLEAR)]
    # AND the event names them
    pseudonymised = event["detail"]["personal_data"]["pseudonymised"]["quarantine"]
    assert {"Email", "Billing Name", "Billing Address1", "Billing Phone", "Shipping Name", "Notes"} <= set(
        pseudonymised
    )
