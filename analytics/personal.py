"""Personal data: which columns hold it, and their keyed pseudonyms (HMAC-SHA-256).

Curated and quarantine tables never hold an e-mail address, phone number, person's name or street
address in clear: each becomes a pseudonym, ``hmac_sha256(key, normalised value)`` as 32 hex
characters. The same person gives the same pseudonym in every file and dataset written with the
same key, so customers still join across exports; ``raw/`` keeps the original, so deleting the raw
object deletes the person's rows.

What is personal:

- **by header** (normalised like ``Billing Address1`` -> ``billing_address1``): e-mail, phone,
  person-name and street-address columns (:func:`personal_kind`); every value is pseudonymised;
- **by content**: any text cell that *is* an e-mail address becomes its pseudonym, and an e-mail
  address inside longer text is replaced by its pseudonym (so an id column holding e-mails, a
  Shopify customer, still joins); a column whose sampled values are mostly phone numbers written
  as such (``+49 30 1234567``, ``(030) 123-4567``) is a phone column;
- **by setting**: ``"personal_data": {"pseudonymise": [...], "keep": [...]}`` in the dataset's
  settings adds columns or opts them out (:class:`PersonalDataPolicy`).

Normalised before hashing, so the same person matches across exports: text (e-mails, names,
addresses) Unicode NFKC, trimmed, lower-cased, inner whitespace runs as one space; phones as their
digits with a leading ``+`` (``00`` read as ``+``). Nulls stay null, and so does a value with
nothing left after normalising.

Pure: no AWS. The key comes from the caller (Secrets Manager on AWS, the stand-in's state locally).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from analytics._kernels import hmac_sha256_hex
from analytics.base import LINEAGE_COLUMNS, QUARANTINE_REASON, QUARANTINE_REASON_CODE, QUARANTINE_ROW_NUMBER
from analytics.errors import SettingsError

Kind = Literal["email", "phone", "name", "address", "text"]

#: Hex characters of HMAC-SHA-256 kept: 128 bits. Among a billion distinct values the chance that
#: any two share a pseudonym is about n^2 / 2^129, below 1e-20; half the storage of all 64.
PSEUDONYM_HEX = 32
#: The dataset setting's name and its keys.
SETTING = "personal_data"
KEEP = "keep"
ADD = "pseudonymise"
#: Where the malformed line of a quarantined row is kept (``handlers.adapters.staging.RAW_LINE``).
RAW_LINE = "_raw_line"
#: Pseudonyms one file remembers between its batches and columns (about 180 bytes each: 500,000 is
#: 90 MB of a function of 3 GB).
MEMO_SIZE = 500_000
#: Values of a column sampled to decide by content whether it holds phone numbers.
SAMPLE = 1_000
#: Share of a column's sampled non-null values that must look like phone numbers.
PHONE_SHARE = 0.8
#: What a malformed line becomes when it may hold personal data that text cannot be searched for.
WITHHELD = "withheld: the line may hold personal data ({columns}); the raw object in raw/ keeps it"
#: Columns that are never personal: lineage and quarantine bookkeeping.
_NEVER = frozenset({*LINEAGE_COLUMNS, QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON, RAW_LINE})
#: Free text of the lake's own that may quote a value: e-mail addresses in it are replaced.
_SCRUBBED_TEXT = frozenset({QUARANTINE_REASON})
#: The per-file profile table's value columns, blanked for personal columns (their min/max are values).
PROFILE_VALUE_COLUMNS = ("min", "max", "min_number", "max_number")

# --- header names --------------------------------------------------------------------------------
_EMAIL_NAME = re.compile(r"^(.+_)?(e_?mail|mail)(_address|_addr)?$")
_PHONE_NAME = re.compile(
    r"^(.+_)?(phone|phone_?(number|no|nr)|tele?phone|tel|mobile|mobile_?(number|no|phone)|cell|cell_?phone|fax)$"
)
_PERSON = (
    r"customer|contact|billing|shipping|buyer|recipient|client|person|user|account_holder|"
    r"card_?holder|bill_to|ship_to|sender|receiver|owner|member|employee|patient|guest|passenger|"
    r"first|last|full|middle|given|family|maiden|nick"
)
_NAME_NAME = re.compile(
    rf"^((.+_)?({_PERSON})_(first_|last_|full_|middle_|given_|family_)?name|"
    r"(.+_)?(firstname|lastname|fullname|surname|forename|given_names?))$"
)
_ADDRESS_NAME = re.compile(
    r"^(.+_)?(address|addr|address_?\d|address_line_?\d|street|street_?address|street_?name|"
    r"street_?line_?\d|house_?number|house_?no)$"
)
#: Addresses that are not where a person lives.
_NOT_ADDRESS = re.compile(r"(^|_)(ip|ipv4|ipv6|mac|web|url|wallet|server|host|remote|email|mail|e_mail)_addr(ess)?")

# --- content -------------------------------------------------------------------------------------
_EMAIL_CHARS = r"[^@\s\"'<>(),;:\[\]]"
#: An e-mail address inside text (Python ``re``).
EMAIL_IN_TEXT = re.compile(rf"{_EMAIL_CHARS}+@{_EMAIL_CHARS}+\.[A-Za-z]{{2,}}")
#: A whole cell that is an e-mail address (RE2, for pyarrow).
_EMAIL_CELL = rf"^\s*{_EMAIL_CHARS}+@{_EMAIL_CHARS}+\.[A-Za-z]{{2,}}\s*$"
# "+..." is international; "00" is only when a country code (not 0) and a separator follow: a run of
# digits with leading zeros ("0000575") is an id, not a number dialled abroad.
_PHONE_INTERNATIONAL = re.compile(r"^\s*(\+\s*\(?\d[\d\s().\-/]*\d|00[1-9]\d{0,3}[\s().\-/]+\d[\d\s().\-/]*\d)\s*$")
_PHONE_GROUPED = re.compile(r"^\s*(\(\d{1,6}\)\s*\d[\d\s.\-/]*\d|\d{1,6}([\s.\-/]+\d{1,8}){2,})\s*$")
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[./\-]\d{1,2}[./\-]\d{1,4}\s*$")
_THOUSANDS = re.compile(r"^\s*\d{1,3}([.,\s]\d{3})+([.,]\d{1,2})?\s*$")
_IPV4 = re.compile(r"^\s*\d{1,3}(\.\d{1,3}){3}\s*$")


def header_key(name: str) -> str:
    """A header as the detection reads it: ``Billing Address1`` -> ``billing_address1``,
    ``customerEmail`` -> ``customer_email``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip().lstrip("\ufeff"))
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def personal_kind(name: str) -> Kind | None:
    """The kind of personal data a column holds, judged by its header alone; None when not personal.

    ``name`` alone is not a person (Shopify's ``Name`` is the order number, ad exports have campaign
    names); ``customer_name``, ``billing_name``, ``first_name`` are.
    """
    key = header_key(name)
    if not key or key in _NEVER:
        return None
    if _EMAIL_NAME.match(key):
        return "email"
    if _PHONE_NAME.match(key):
        return "phone"
    if _NAME_NAME.match(key):
        return "name"
    if _ADDRESS_NAME.match(key) and not _NOT_ADDRESS.search(key):
        return "address"
    return None


def looks_like_phone(value: str) -> bool:
    """Whether a text is written like a phone number: 7-15 digits, with an international prefix
    (``+``, ``00``), an area code in parentheses, or three or more digit groups (not a date or an
    IP address). A bare run of digits is not enough: order ids look like that too."""
    digits = sum(ch.isdigit() for ch in value)
    if not 7 <= digits <= 15 or any(p.match(value) for p in (_DATE_LIKE, _IPV4, _THOUSANDS)):
        return False
    return bool(_PHONE_INTERNATIONAL.match(value) or _PHONE_GROUPED.match(value))


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as one plain string array (dictionaries decoded, numbers as text)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def _sample(values: pa.Array, size: int = SAMPLE) -> list[str]:
    """Up to ``size`` non-null values spread over the column (deterministic)."""
    present = values.drop_null()
    if len(present) > size:
        step = len(present) / size
        present = present.take(pa.array([int(i * step) for i in range(size)]))
    return [v for v in present.to_pylist() if v.strip()]


def holds_phones(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether most sampled values with a digit in a text column look like phone numbers (``n/a``
    and other placeholders do not count either way)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    sample = [v for v in _sample(_text(values)) if any(ch.isdigit() for ch in v)]
    return bool(sample) and sum(map(looks_like_phone, sample)) >= PHONE_SHARE * len(sample)


# --- normalising and hashing --------------------------------------------------------------------
def normalise(values: pa.Array | pa.ChunkedArray, kind: Kind = "text") -> pa.Array:
    """What is hashed: phones as digits with a leading ``+`` (``00`` read as ``+``); anything
    else NFKC, trimmed, lower-cased, whitespace runs as one space. Empty results become null."""
    text = pc.utf8_trim_whitespace(pc.utf8_normalize(_text(values), "NFKC"))
    if kind == "phone":
        international = pc.or_(pc.starts_with(text, "+"), pc.starts_with(text, "00"))
        digits = pc.replace_substring_regex(text, r"\D", "")
        digits = pc.if_else(pc.starts_with(text, "00"), pc.utf8_slice_codeunits(digits, 2), digits)
        out = pc.if_else(international, pc.binary_join_element_wise("+", digits, ""), digits)
        out = pc.if_else(pc.equal(digits, ""), pa.scalar(None, pa.string()), out)
    else:
        out = pc.replace_substring_regex(pc.utf8_lower(text), r"\s+", " ")
        out = pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)
    return out


def _hash_distinct(normalised: pa.Array, key: bytes, memo: dict[str, str] | None = None) -> pa.Array:
    """HMAC-SHA-256 of each value (already distinct, normalised); nulls stay null. ``memo`` keeps
    pseudonyms across calls (a file's batches share their customers), up to :data:`MEMO_SIZE`."""
    values = normalised.to_pylist()
    if memo is None:
        return pa.array(hmac_sha256_hex(key, values, PSEUDONYM_HEX), pa.string())
    missing = [v for v in values if v is not None and v not in memo]
    fresh = dict(zip(missing, hmac_sha256_hex(key, missing, PSEUDONYM_HEX), strict=True))
    out = [None if v is None else memo.get(v) or fresh[v] for v in values]
    if len(memo) < MEMO_SIZE:
        memo.update(fresh)
    return pa.array(out, pa.string())


def pseudonymise(
    values: pa.Array | pa.ChunkedArray, key: bytes, kind: Kind = "text", memo: dict[str, str] | None = None
) -> pa.Array:
    """Each value's pseudonym: ``hmac_sha256(key, normalise(value))`` as 32 hex characters.

    Each distinct value is normalised and hashed once (a million rows of a hundred thousand
    customers cost a hundred thousand HMACs), then the pseudonyms are laid out by the column's
    dictionary indices.
    """
    encoded = pc.dictionary_encode(_text(values))
    assert isinstance(encoded, pa.DictionaryArray)
    hashed = _hash_distinct(normalise(encoded.dictionary, kind), key, memo)
    return hashed.take(encoded.indices)


def _scrub_distinct(distinct: pa.Array, key: bytes) -> pa.Array:
    """Distinct texts with every e-mail address in them replaced by its pseudonym."""

    def pseudonym(match: re.Match[str]) -> str:
        return str(hmac_sha256_hex(key, [_normal_text(match.group(0))], PSEUDONYM_HEX)[0])

    return pa.array([None if v is None else EMAIL_IN_TEXT.sub(pseudonym, v) for v in distinct.to_pylist()], pa.string())


def _normal_text(value: str) -> str:
    """:func:`normalise` of one text value (e-mails, names, addresses), in Python."""
    return " ".join(unicodedata.normalize("NFKC", value).lower().split())


def scrub_text(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Free text with every e-mail address replaced by its pseudonym (the same one the address
    gets as a cell, so it can be looked up); text without ``@`` is left as it is."""
    text = _text(values)
    if not pc.any(pc.match_substring(text, "@")).as_py():
        return text
    encoded = pc.dictionary_encode(text)
    assert isinstance(encoded, pa.DictionaryArray)
    return _scrub_distinct(encoded.dictionary, key).take(encoded.indices)


def _emails_replaced(values: pa.Array, key: bytes, memo: dict[str, str] | None = None) -> pa.Array | None:
    """A text column with every e-mail address in its cells pseudonymised (a cell that is an address
    becomes its pseudonym); None when it holds none."""
    if not pc.any(pc.match_substring(values, "@")).as_py():
        return None
    encoded = pc.dictionary_encode(values)
    assert isinstance(encoded, pa.DictionaryArray)
    distinct = encoded.dictionary
    whole = pc.match_substring_regex(distinct, _EMAIL_CELL)
    partial = pc.and_(pc.invert(whole), pc.match_substring(distinct, "@"))
    if not pc.any(pc.or_(whole, partial)).as_py():
        return None
    replaced = pc.replace_with_mask(
        distinct, whole, _hash_distinct(normalise(distinct.filter(whole), "email"), key, memo)
    )
    if pc.any(partial).as_py():
        replaced = pc.replace_with_mask(replaced, partial, _scrub_distinct(distinct.filter(partial), key))
    return replaced.take(encoded.indices)


def key_id(key: bytes) -> str:
    """A short fingerprint of the key (an HMAC of a fixed text, not the key): rows whose events name
    different key ids do not join on their pseudonyms."""
    return hmac.new(key, b"lake pseudonym key id", hashlib.sha256).hexdigest()[:12]


# --- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PersonalDataPolicy:
    """A dataset's ``"personal_data"`` setting: columns (by header, normalised) to keep in clear,
    and columns to pseudonymise that detection misses."""

    keep: frozenset[str] = frozenset()
    add: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], dataset: str) -> PersonalDataPolicy:
        """``{"personal_data": {"keep": [...], "pseudonymise": [...]}}``; empty when absent."""
        value = settings.get(SETTING, {})
        where = f"settings/{dataset}.json: {SETTING}"
        if not isinstance(value, dict) or set(value) - {KEEP, ADD}:
            raise SettingsError(
                f'{where} must be an object with "{KEEP}" and/or "{ADD}", each a list of column names '
                f'(e.g. {{"{KEEP}": ["billing_city"]}}), not {value!r}'
            )
        lists = {}
        for name in (KEEP, ADD):
            columns = value.get(name, [])
            if not isinstance(columns, list) or not all(isinstance(c, str) and c.strip() for c in columns):
                raise SettingsError(f"{where}.{name} must be a list of column names, not {columns!r}")
            lists[name] = frozenset(header_key(c) for c in columns)
        both = lists[KEEP] & lists[ADD]
        if both:
            raise SettingsError(f"{where}: {', '.join(sorted(both))} cannot be both kept and pseudonymised; pick one")
        return cls(keep=lists[KEEP], add=lists[ADD])


# --- one file's tables ---------------------------------------------------------------------------
@dataclass
class Pseudonymiser:
    """Pseudonymises one file's curated and quarantine rows with one key and one policy.

    A column's decision is made once per file, by its normalised header, and shared by every table
    of the file (``Customer Email`` in quarantine is the curated ``customer_email``), so a value
    gets the same pseudonym wherever it lands.
    """

    key: bytes
    policy: PersonalDataPolicy = field(default_factory=PersonalDataPolicy)
    #: normalised header -> kind pseudonymised whole (None: not personal as a column).
    decisions: dict[str, Kind | None] = field(default_factory=dict)
    #: table -> columns pseudonymised there (whole, or e-mail addresses in their cells).
    done: dict[str, set[str]] = field(default_factory=dict)
    #: Personal columns (normalised headers) kept in clear by the setting.
    kept: set[str] = field(default_factory=set)
    #: Normalised value -> pseudonym, shared by the file's batches and columns.
    _memo: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("a pseudonym key needs at least 16 bytes; the stack and the stand-in make 32 or more")

    def decide(self, name: str, values: pa.Array | pa.ChunkedArray | None = None) -> Kind | None:
        """The kind a column is pseudonymised as in this file (None: only e-mails in its cells)."""
        key = header_key(name)
        if key in self.decisions:
            return self.decisions[key]
        if name in _NEVER or key in self.policy.keep:
            kind = personal_kind(name) if key in self.policy.keep else None
            if kind is not None or (values is not None and holds_phones(values)):
                self.kept.add(key)
            self.decisions[key] = None
            return None
        kind = personal_kind(name)
        if kind is None and values is not None and values.null_count < len(values) and holds_phones(values):
            kind = "phone"
        if kind is None and key in self.policy.add:
            kind = "text"
        if kind is None and values is not None and values.null_count == len(values):
            return None  # no values to judge yet (a quarantine column of malformed lines): decide later
        self.decisions[key] = kind
        return kind

    def table(self, data: pa.Table, where: str) -> pa.Table:
        """``data`` (one batch of an output table) with its personal values pseudonymised."""
        for i, name in enumerate(data.column_names):
            column = data.column(i)
            kind = self.decide(name, column)
            if kind is not None:
                data = data.set_column(i, name, pseudonymise(column, self.key, kind, self._memo))
                self.done.setdefault(where, set()).add(name)
            elif header_key(name) not in self.policy.keep and name not in _NEVER and _is_text(column.type):
                replaced = _emails_replaced(_text(column), self.key, self._memo)
                if replaced is not None:
                    data = data.set_column(i, name, replaced)
                    self.done.setdefault(where, set()).add(name)
        return data

    def profile(self, rows: pa.Table, where: str) -> pa.Table:
        """A per-file profile table (one row per column of the file): the min and max of a
        pseudonymised column are values, so they are blanked."""
        if "column" not in rows.column_names:
            return rows
        personal = {c for cols in self.done.values() for c in cols} | {
            c for c in rows.column("column").to_pylist() if c is not None and self.decide(c) is not None
        }
        mask = pc.is_in(rows.column("column"), pa.array(sorted(personal), pa.string()))
        for name in PROFILE_VALUE_COLUMNS:
            if name in rows.column_names and pc.any(mask).as_py():
                i = rows.column_names.index(name)
                column = rows.column(i)
                rows = rows.set_column(i, name, pc.if_else(mask, pa.scalar(None, column.type), column))
        return rows

    def quarantine(self, rows: pa.Table) -> pa.Table:
        """Quarantined rows (original values as text): personal columns pseudonymised, e-mail
        addresses in reasons replaced, and a malformed line's text withheld when it may hold
        personal data that cannot be found in text (a name, an address, a phone number)."""
        rows = self.table(rows, "quarantine")
        for name in _SCRUBBED_TEXT & set(rows.column_names):
            i = rows.column_names.index(name)
            rows = rows.set_column(i, name, scrub_text(rows.column(i), self.key))
        if RAW_LINE in rows.column_names:
            i = rows.column_names.index(RAW_LINE)
            line = rows.column(i)
            hidden = sorted(
                n for n in rows.column_names if n not in _NEVER and (k := self.decide(n)) is not None and k != "email"
            )
            if hidden and line.null_count < len(line):
                text = WITHHELD.format(columns=", ".join(hidden))
                rows = rows.set_column(i, RAW_LINE, pc.if_else(pc.is_null(line), line, pa.scalar(text)))
            else:
                rows = rows.set_column(i, RAW_LINE, scrub_text(line, self.key))
        return rows

    def summary(self) -> dict[str, Any]:
        """For the completion event: columns pseudonymised per table, personal columns kept, key id."""
        return {
            "pseudonymised": {table: sorted(columns) for table, columns in sorted(self.done.items()) if columns},
            "kept": sorted(self.kept),
            "key_id": key_id(self.key),
        }


def _is_text(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
