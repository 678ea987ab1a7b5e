"""``lake try FILE``: what uploading a file would do, found by running the real pipeline locally.

The file goes through exactly what the processor runs (:func:`handlers.stages.file.stage_file`:
the reader, the dataset's pipeline, the staging sink, the quarantine, the tolerance), streamed
from the local disk into a temporary folder; nothing is uploaded. The command prints the tables
the file would write with their inferred types, a sample of rows, the quarantine with reasons
and counts, and, when the lake answers (``LAKE_ENDPOINT_URL``,
``--endpoint-url`` or a deployed stack), what the upload would change in the existing tables: a
new table, new columns, a column that widens or conflicts (the committer's own rules,
:mod:`handlers.adapters.iceberg`), the rows a key or a re-upload replaces. Exit code 0 when the file would
be accepted, 1 when it would be refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lake.target import ENV_ENDPOINT_URL, CliError

if TYPE_CHECKING:
    import pyarrow as pa

    from analytics.base import TableSpec
    from handlers.adapters.staging import StagingSink
    from handlers.stages.file import FileOutcome
    from lake.target import Target

PROFILE_TABLE = "dataset_profiles"
#: Rows of each table shown.
SAMPLE_ROWS = 5
#: Distinct quarantine reasons shown per reason code.
REASONS_SHOWN = 3


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    trial = sub.add_parser(
        "try",
        parents=[common],
        help="run the real pipeline on a local file and show what uploading it would do (nothing is uploaded)",
        description="Process FILE as the lake would, locally: the tables it would write with their types, a "
        "sample of rows, the quarantine with reasons, and (when the stand-in or the stack answers) what it "
        "would change in the existing tables. Nothing is uploaded. Exit code 0: the file would be accepted; "
        "1: it would be refused. See docs/try.md.",
    )
    trial.add_argument("file", metavar="FILE", help="a .csv, .csv.gz, .jsonl/.json or .parquet file")
    trial.add_argument(
        "--dataset", help="the dataset it would be uploaded to, raw/<dataset>/ (default: the file name, snake_cased)"
    )
    trial.add_argument("--rows", type=int, default=SAMPLE_ROWS, metavar="N", help="sample rows shown per table")
    trial.add_argument(
        "--offline", action="store_true", help="do not compare with the lake's existing tables, even if it answers"
    )
    trial.set_defaults(func=_try)


@dataclass
class TableOutcome:
    """One table the file would write."""

    name: str
    stored: str
    key: tuple[str, ...]
    rows: int
    schema: pa.Schema
    sample: pa.Table
    partition_column: str
    #: The file's business keys (keyed tables only), each as one text.
    keys: set[str] = field(default_factory=set)
    changes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


@dataclass
class Trial:
    """What processing the file found."""

    file: Path
    key: str
    dataset: str
    rows_in: int = 0
    lines: int | None = None
    multiline: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    tables: list[TableOutcome] = field(default_factory=list)
    refused: str | None = None
    compared: str | None = None
    #: The vendor export recognised (``google_ads``), ``settings``, ``generic``; None: not read so far.
    source_format: str | None = None
    #: What the recognised export implied (constants, line items folded).
    export_facts: dict[str, Any] = field(default_factory=dict)
    #: For a file its contract refused for missing columns: the settings that would map it.
    mapping: dict[str, Any] | None = None
    #: How the reader found the table: lines left out above and below it, and how it was read.
    left_out: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.refused is None and not any(t.conflicts for t in self.tables)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CliError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise CliError(f"{path} is a folder; give one file (lake try FILE)")
    if not os.access(path, os.R_OK):
        raise CliError(f"{path}: permission denied; make the file readable (chmod u+r) or copy it")


def dataset_of_file(path: Path, dataset: str | None) -> str:
    """``--dataset``, else the file's name without extensions, snake_cased (``Sales 2026.csv`` → ``sales_2026``)."""
    from analytics.generic import snake_case

    name = dataset or path.name.split(".", 1)[0]
    segment = snake_case(name)
    if not segment:
        raise CliError(f"cannot make a dataset name of {name!r}; pass --dataset NAME")
    return segment


def run_trial(path: Path, dataset: str | None, target: Target | None, sample_rows: int = SAMPLE_ROWS) -> Trial:
    """Process ``path`` locally as the lake would process ``raw/<dataset>/<file name>``."""
    from analytics.base import SourceInfo
    from analytics.contract import Tolerance
    from analytics.errors import DataError, MissingColumnsError
    from analytics.personal import PersonalDataPolicy, Pseudonymiser
    from analytics.registry import dataset_table_name, get_pipeline
    from handlers.adapters.reader import ReadOptions, SourceReader, detect_format
    from handlers.adapters.staging import Lineage, StagingSink
    from handlers.errors import PermanentError
    from handlers.stages.file import stage_file

    _check_file(path)
    segment = dataset_of_file(path, dataset)
    key = f"raw/{segment}/{path.name}"
    try:
        fmt = detect_format(key)
    except PermanentError as exc:
        raise CliError(str(exc).replace(key, str(path))) from exc
    trial = Trial(file=path, key=key, dataset=dataset_table_name(segment))
    settings: dict[str, Any] = {}
    if target is not None:
        try:
            settings = _settings(target, trial.dataset)
        except Exception as exc:  # comparing is optional: say why and go on without it
            trial.compared = _unreachable(exc, target)
            target = None
    pipeline = get_pipeline(segment)
    now = dt.datetime.now(dt.UTC)
    source = SourceInfo(trial.dataset, "lake-try", key, now.date(), settings)
    try:
        pipeline.tolerance = Tolerance.from_settings(settings, trial.dataset, pipeline.tolerance).share
        specs = list(pipeline.tables(source))
        # As the lake would: personal data pseudonymised (with a throwaway key: the values shown are
        # not the lake's pseudonyms, but the types and the quarantine are what the lake would make).
        personal = Pseudonymiser(secrets.token_bytes(32), PersonalDataPolicy.from_settings(settings, trial.dataset))
        options = ReadOptions.from_settings(settings, f"settings/{trial.dataset}.json")
    except (PermanentError, DataError) as exc:
        trial.refused = str(exc)
        return trial
    with StagingSink(specs, lineage=Lineage(key, "local", "lake-try", now), personal=personal) as sink:
        staged = stage_file(SourceReader(key, fmt, lambda: _open(path), options), pipeline, source, sink)
        trial.source_format, trial.export_facts = staged.source_format, dict(staged.export)
        trial.lines, trial.multiline = staged.lines, staged.multiline
        trial.left_out = _left_out(staged)
        _quarantine(trial, sink)
        refusal = staged.refusal
        if refusal is None:
            trial.rows_in = staged.rows_in
            trial.tables = _outcomes(sink, sample_rows)
            if target is not None:
                _compare(trial, target, specs)
        elif refusal.cause is None:  # the dataset's tolerance, over the rows the pipeline counted
            trial.rows_in = staged.rows_in
            trial.refused = (
                f"{trial.rejected:,} of {trial.rows_in:,} rows ({trial.rejected / trial.rows_in:.0%}) would be "
                f"rejected, more than the dataset's tolerance of {pipeline.tolerance:.0%}: the whole file would be "
                "refused and quarantined; fix the rows listed above"
            )
        else:
            trial.rows_in = staged.rows_read
            trial.refused = str(refusal.cause).replace(key, str(path))
            if isinstance(refusal.cause, MissingColumnsError):
                trial.mapping = refusal.cause.suggestion
    return trial


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror}); check the file and its permissions") from exc


def _settings(target: Target, dataset: str) -> dict[str, Any]:
    import json

    import topology

    s3 = target.client("s3")
    try:
        body = s3.get_object(Bucket=target.bucket, Key=f"{topology.SETTINGS_PREFIX}{dataset}.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    settings = json.loads(body)
    if not isinstance(settings, dict):
        raise CliError(f"settings/{dataset}.json on {target.where} is not a JSON object; fix it")
    return settings


def _unreachable(exc: Exception, target: Target) -> str:
    from lake.target import explain

    return f"not compared with the existing tables: {explain(exc, target)}"


def _quarantine(trial: Trial, sink: StagingSink) -> None:
    from analytics.base import QUARANTINE_REASON, QUARANTINE_REASON_CODE, QUARANTINE_ROW_NUMBER

    rejected = sink.quarantine_table()
    if rejected is None:
        return
    trial.rejected = rejected.num_rows
    numbers = (
        rejected.column(QUARANTINE_ROW_NUMBER).to_pylist()
        if QUARANTINE_ROW_NUMBER in rejected.column_names
        else [None] * rejected.num_rows
    )
    for code, reason, number in zip(
        rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
        rejected.column(QUARANTINE_REASON).to_pylist(),
        numbers,
        strict=True,
    ):
        trial.reasons[code] = trial.reasons.get(code, 0) + 1
        examples = trial.examples.setdefault(code, [])
        if len(examples) < REASONS_SHOWN:
            examples.append(f"row {number}: {reason}" if number is not None else str(reason))


def _outcomes(sink: StagingSink, sample_rows: int) -> list[TableOutcome]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analytics.base import LINEAGE_COLUMNS

    sink.close_writers()
    outcomes = []
    for name, staged in sink.tables.items():
        if not staged.files or staged.schema is None:
            continue
        first = next(iter(staged.files.values()))
        batches = pq.ParquetFile(first).iter_batches(batch_size=max(sample_rows, 1))
        sample = pa.Table.from_batches([next(batches)]).slice(0, sample_rows)
        shown = [c for c in sample.column_names if c not in LINEAGE_COLUMNS]
        keys: set[str] = set()
        for path in staged.files.values() if staged.spec.key else ():
            keys.update(key_text(pq.read_table(path, columns=list(staged.spec.key)), staged.spec.key))
        outcomes.append(
            TableOutcome(
                name=name,
                stored=staged.spec.stored_name,
                key=staged.spec.key,
                rows=staged.total_rows,
                schema=staged.schema,
                sample=sample.select(shown),
                partition_column=staged.spec.partition_column,
                keys=keys,
            )
        )
    return outcomes


def _compare(trial: Trial, target: Target, specs: list[TableSpec]) -> None:
    """What committing the file would change in each existing table (the committer's rules)."""
    from lake.engine import LakeCatalog, TableRef

    catalog = LakeCatalog.of(target)
    try:
        existing = {str(e["Name"]) for e in catalog.entries(target.curated_database)}
    except Exception as exc:  # comparing is optional: say why and go on without it
        trial.compared = _unreachable(exc, target)
        return
    trial.compared = f"compared with the tables on {target.where}"
    for outcome in trial.tables:
        if outcome.stored not in existing:
            outcome.changes.append(f"new table {target.curated_database}.{outcome.stored}")
            continue
        table = catalog.table(TableRef(target.curated_database, outcome.stored))
        _schema_changes(outcome, table)
        _replaced_rows(outcome, table, trial.key)


def _schema_changes(outcome: TableOutcome, table: Any) -> None:
    from handlers.adapters.iceberg import FILE_WIDENINGS, TABLE_WIDENINGS, athena_type, iceberg_athena_type

    types = {f.name: iceberg_athena_type(f.field_type) for f in table.schema().fields}
    name = table.name()[-1]
    for f in outcome.schema:
        ours, theirs = athena_type(f.type), types.get(f.name)
        if theirs is None:
            outcome.changes.append(f"new column {f.name} ({ours}); older rows read it as null")
        elif theirs == ours or (ours, theirs) in FILE_WIDENINGS:
            continue
        elif (theirs, ours) in TABLE_WIDENINGS and f.name != outcome.partition_column:
            outcome.changes.append(f"column {f.name} widens from {theirs} to {ours} (the table is rewritten once)")
        else:
            outcome.conflicts.append(
                f"column {f.name} holds {ours} values in this file, but table {name} has it as {theirs}: the upload "
                "would fail; fix the values, or rename the column in the export"
            )


def _replaced_rows(outcome: TableOutcome, table: Any, key: str) -> None:
    """Rows of the same raw key (a re-upload replaces them) and, for a keyed table, keys it takes over."""
    import pyarrow.compute as pc

    from handlers.adapters.iceberg import of_key
    from lake.engine import scan

    current = table.current_snapshot()
    if current is None:
        return
    same = table.scan(
        row_filter=of_key(key),
        selected_fields=("source_key",),
        snapshot_id=current.snapshot_id,
    )
    before = same.to_arrow().num_rows
    if before:
        outcome.changes.append(f"replaces the {before:,} rows an earlier upload of {key} wrote")
    if outcome.keys and all(k in table.schema().column_names for k in outcome.key):
        theirs = scan(table, current, (*outcome.key, "source_key")).read_all()
        theirs = theirs.filter(pc.not_equal(theirs.column("source_key"), key))
        taken = len(outcome.keys & set(key_text(theirs, outcome.key)))
        if taken:
            label = ", ".join(outcome.key)
            outcome.changes.append(
                f"{taken:,} of its {len(outcome.keys):,} keys ({label}) are already in the table from other files: "
                f"the view {outcome.name} would show this file's rows for them (the others stay in {outcome.stored})"
            )


def key_text(data: pa.Table, key: tuple[str, ...]) -> list[str]:
    """Each row's business key as one text (rows without a first key column are never merged)."""
    columns = [data.column(k).cast("string").to_pylist() for k in key]
    return ["\x1f".join("" if v is None else v for v in values) for values in zip(*columns, strict=True) if values[0]]


# --- output ----------------------------------------------------------------------------------------
def _try(args: argparse.Namespace) -> int:
    target = None if args.offline else _optional_target(args)
    if args.rows < 0:
        raise CliError(f"--rows must be 0 or more, not {args.rows}")
    trial = run_trial(Path(args.file), args.dataset, target, args.rows)
    if target is None and trial.compared is None:
        trial.compared = (
            "not compared with the existing tables: --offline"
            if args.offline
            else "not compared with the existing tables: no lake named (start `lake up` and set "
            f"{ENV_ENDPOINT_URL}, or name a deployed stack with --stack)"
        )
    sys.stdout.write(render(trial))
    return 0 if trial.accepted else 1


def _optional_target(args: argparse.Namespace) -> Target | None:
    """The lake to compare with, when the user pointed at one (an endpoint, a stack, a profile)."""
    named = any(getattr(args, option, None) for option in ("endpoint_url", "stack", "profile"))
    if not named and not os.environ.get(ENV_ENDPOINT_URL) and not os.environ.get("AWS_PROFILE"):
        return None
    try:
        target: Target = args.target()
    except CliError as exc:
        print(f"lake: not compared with the existing tables: {exc}", file=sys.stderr)
        return None
    return target


def _left_out(staged: FileOutcome) -> list[str]:
    """What the reader took off around the table, and how it read the file, in words."""
    parts = []
    if staged.preamble:
        parts.append(f"{staged.preamble} line(s) above the header (titles, date ranges, comments)")
    if staged.summary:
        parts.append(f"{staged.summary} summary row(s) (Total…)")
    if staged.footer:
        parts.append(f"{staged.footer} footer line(s)")
    how = []
    read = staged.read
    if read.encoding and read.encoding not in ("utf-8", "utf_8"):
        how.append(f"encoding {read.encoding}")
    if read.sheet:
        others = [s for s in read.sheets if s != read.sheet]
        how.append(f"sheet {read.sheet!r}" + (f" (also in the workbook: {', '.join(others)})" if others else ""))
    lines = [f"left out, not quarantined: {'; '.join(parts)}"] if parts else []
    return lines + ([f"read as: {', '.join(how)}"] if how else [])


def _export_lines(trial: Trial) -> list[str]:
    """Which export the file was read as: a vendor's recognised one, the settings' mapping, or the contract's names."""
    from analytics.registry import spec

    found = spec(trial.dataset)
    if found is None or trial.source_format is None:
        return []
    shape = next((s for s in found.exports if s.name == trial.source_format), None)
    if shape is not None:
        implied = ", ".join(
            f"{k[len('constant_') :]} = {v}" for k, v in trial.export_facts.items() if k.startswith("constant_")
        )
        folded = trial.export_facts.get("line_items")
        extra = f"; {folded:,} line items folded into {trial.export_facts.get('orders', 0):,} orders" if folded else ""
        skipped = trial.export_facts.get("not_sales")
        extra += f"; {skipped:,} rows left out as not sales (failed or cancelled)" if skipped else ""
        return [f"recognised: {shape.title} ({shape.name}){'; ' + implied if implied else ''}{extra}"]
    if trial.source_format == "settings":
        return [f"mapped by settings/{trial.dataset}.json (columns / constants)"]
    return ["not a recognised vendor export: read by the contract's column names (docs/datasets.md lists the exports)"]


def render(trial: Trial) -> str:
    from handlers.adapters.iceberg import athena_type
    from lake.cli.querying import render as render_table

    lines = [f"{trial.file} → raw/{trial.key.split('/', 1)[1]} (dataset {trial.dataset}); nothing was uploaded"]
    size = trial.file.stat().st_size
    read = f"read {trial.rows_in:,} row{'' if trial.rows_in == 1 else 's'} ({size / 1e6:,.1f} MB)"
    if trial.refused and trial.rows_in:
        read += " before it stopped"
    if trial.lines is not None and trial.lines != trial.rows_in:
        read += f" from {trial.lines:,} lines"
        if trial.multiline:
            read += f"; {trial.multiline:,} row(s) hold line breaks in quoted values"
        if trial.reasons.get("unterminated_quote"):
            read += f"; {trial.reasons['unterminated_quote']:,} quote(s) never closed (see the quarantine)"
    lines.append(read)
    lines += trial.left_out
    lines += _export_lines(trial)
    for outcome in trial.tables:
        keyed = f", keyed by {', '.join(outcome.key)} (view over {outcome.stored})" if outcome.key else ""
        lines.append("")
        lines.append(f"table {outcome.name}: {outcome.rows:,} rows{keyed}")
        if outcome.name == PROFILE_TABLE:
            lines[-1] += " (one per column: type, nulls, distinct values, min and max)"
        else:
            shown = [f for f in outcome.schema if f.name in outcome.sample.column_names]
            lines.append("  columns: " + ", ".join(f"{f.name} {athena_type(f.type)}" for f in shown))
        if outcome.sample.num_rows and outcome.name != PROFILE_TABLE:
            lines += [f"  {line}" for line in render_table(outcome.sample).splitlines()]
        lines += [f"  + {change}" for change in outcome.changes]
        lines += [f"  ✗ {conflict}" for conflict in outcome.conflicts]
    lines.append("")
    if trial.rejected:
        lines.append(f"quarantine: {trial.rejected:,} row{'' if trial.rejected == 1 else 's'}")
        for code, count in sorted(trial.reasons.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {code}: {count:,}")
            lines += [f"    {example}" for example in trial.examples.get(code, [])]
    else:
        lines.append("quarantine: none")
    if trial.compared:
        lines.append(trial.compared)
    if trial.refused:
        lines.append(f"✗ the file would be refused: {trial.refused}")
        if trial.mapping:
            lines.append(
                f"  to map this export, put this in settings/{trial.dataset}.json (each value is the header that "
                "holds that column; a constant is a value for every row):"
            )
            lines += [f"  {line}" for line in json.dumps(trial.mapping, indent=2, ensure_ascii=False).splitlines()]
    elif not trial.accepted:
        lines.append("✗ the upload would fail: see the conflicts above")
    else:
        lines.append(f"✔ the file would be accepted: lake put {trial.file} --dataset {trial.dataset}")
    return "\n".join(lines) + "\n"
