"""``vip export parquet``: the log's events and the read models as Parquet files an analyst loads.

Layout under the target directory (Hive-style partitions, which DuckDB,
Spark, Flink and pyarrow.dataset read as a column):

* ``events/<EventType>/month=YYYY-MM/part-NNNNN.parquet``: one table per
  event type, typed columns from its latest Avro schema (the columns a bus
  consumer decodes, see :mod:`infra.analytics.columns`), partitioned by the
  month of ``occurred_at`` in the policy's zone (Asia/Shanghai by default);
* ``views/current_tier/part-00000.parquet``: every member's current-tier
  answer as of ``--until``;
* ``views/ledger_lines/month=YYYY-MM/part-NNNNN.parquet``: one row per
  posting line (debit and credit in fen), as of ``--until``;
* ``_manifest.json``: the range, the log position, and the row count per table.

Exporting reads: the event store is opened read-only, the read models are a
replay up to ``--until`` in memory. Personal values stay sealed as they are
in the events. The directory is made 0700 and every file 0600; memory is
bounded by ``ROWS_PER_FILE`` rows per open partition.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from domain.policy import Policy
from infra.analytics.columns import arrow_schema, row
from infra.service_layer.fastpath import paths_of
from projections import queries
from projections.common import parse
from schemas.codec import default_registry
from schemas.events import to_record

ROWS_PER_FILE = 50_000
#: Confidential contract terms (seed 000 §7): left out unless the export is asked to keep them.
TERMS_FIELDS = {"ContractDrafted": ("terms",), "AmendmentProposed": ("changes",),
                "TermsAmended": ("terms", "milestones")}
PAGE = 2_000
TIER_COLUMNS = pa.schema([
    ("member_id", pa.string()), ("tier", pa.string()), ("effective_tier", pa.string()),
    ("since", pa.timestamp("us", tz="UTC")), ("vip_status", pa.string()),
    ("window_spend_fen", pa.int64()), ("window_points", pa.int64()), ("active_months", pa.int64()),
    ("policy_version", pa.string()), ("erased", pa.bool_())])
LINE_COLUMNS = pa.schema([
    ("posting_id", pa.string()), ("contract_id", pa.string()), ("source", pa.string()),
    ("at", pa.timestamp("us", tz="UTC")), ("account", pa.string()), ("debit_fen", pa.int64()),
    ("credit_fen", pa.int64()), ("currency", pa.string())])


class ExportError(ValueError):
    """The export cannot start (the target is not an empty directory, a bad range)."""


@dataclass
class ExportReport:
    """What an export wrote: rows per table, the log position it read up to."""

    directory: str
    since: str | None
    until: str | None
    position: int = 0
    tables: dict = field(default_factory=dict)
    files: int = 0

    def as_dict(self) -> dict:
        return {"directory": self.directory, "since": self.since, "until": self.until,
                "position": self.position, "files": self.files, "tables": dict(sorted(self.tables.items()))}


class _Partitions:
    """Rows buffered per (table, month) and written out as numbered part files."""

    def __init__(self, root: Path, report: ExportReport) -> None:
        self.root, self.report = root, report
        self.rows: dict = defaultdict(list)
        self.parts: dict = defaultdict(int)
        self.schemas: dict = {}

    def add(self, table: str, schema: pa.Schema, month: str | None, values: dict) -> None:
        self.schemas[table] = schema
        buffer = self.rows[(table, month)]
        buffer.append(values)
        self.report.tables[table] = self.report.tables.get(table, 0) + 1
        if len(buffer) >= ROWS_PER_FILE:
            self._write(table, month)

    def _write(self, table: str, month: str | None) -> None:
        buffer = self.rows.pop((table, month), [])
        if not buffer:
            return
        folder = self.root / table / (f"month={month}" if month else "")
        _private_dirs(self.root, folder)
        path = folder / f"part-{self.parts[(table, month)]:05d}.parquet"
        self.parts[(table, month)] += 1
        pq.write_table(pa.Table.from_pylist(buffer, schema=self.schemas[table]), path)
        os.chmod(path, 0o600)
        self.report.files += 1

    def close(self) -> None:
        for table, month in list(self.rows):
            self._write(table, month)


def _private_dirs(root: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for part in [folder, *folder.parents]:
        if part == root.parent:
            break
        os.chmod(part, 0o700)


def prepare(directory: Path) -> Path:
    """The target directory, made 0700; refused if it exists and holds anything."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(f"{directory} is not an empty directory: give a new or empty one "
                          f"(an export never mixes with or overwrites earlier files)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def _columns(raw: dict, short: str, with_terms: bool) -> tuple[dict, pa.Schema]:
    # the schema less the confidential fields (a row only takes the fields its schema names)
    dropped = () if with_terms else TERMS_FIELDS.get(short, ())
    kept = {**raw, "fields": [f for f in raw["fields"] if f["name"] not in dropped]}
    return kept, arrow_schema(kept)


def export_events(app, policy: Policy, out: _Partitions, since: datetime | None,
                  until: datetime | None, progress=None, with_terms: bool = False) -> int:
    """Every event with ``since <= occurred_at <= until`` into its type's table; the last position read."""
    registry = default_registry()
    schemas: dict = {}
    position = 0
    while True:
        page = app.recorder.select_notifications(position, PAGE, inclusive_of_start=False)
        for note in page:
            position = note.id
            event = paths_of(app).stored_envelope(app.mapper, note)
            at = event["timestamp"]
            if (since is not None and at < since) or (until is not None and at > until):
                continue
            full, record = to_record(event, registry)
            if full not in schemas:
                schemas[full] = _columns(registry.entry(full).raw, event["type"], with_terms)
            raw, schema = schemas[full]
            out.add(f"events/{event['type']}", schema, policy.month_of(at), row(raw, record))
        if progress:
            progress(len(page))
        if len(page) < PAGE:
            return position


def export_views(store, policy: Policy, at: datetime, out: _Partitions) -> None:
    """The current-tier answers and the ledger's posting lines as of ``at``."""
    for answer in queries.tiers(store, at, policy):
        values = {name: answer.get(name) for name in TIER_COLUMNS.names}
        values["since"] = parse(values["since"]) if values["since"] else None
        out.add("views/current_tier", TIER_COLUMNS, None, values)
    for posting in store.view("ledger").values():  # the store is a replay up to ``at``
        when = parse(posting["at"])
        for account, debit, credit, cur in posting["lines"]:
            out.add("views/ledger_lines", LINE_COLUMNS, policy.month_of(when),
                    {"posting_id": posting["id"], "contract_id": posting["contract_id"],
                     "source": posting["source"], "at": when, "account": account,
                     "debit_fen": debit, "credit_fen": credit, "currency": cur})


def export(app, store, policy: Policy, directory: Path, since: datetime | None, until: datetime,
           progress=None, with_terms: bool = False) -> ExportReport:
    """Write the events in ``[since, until]`` and the read models as of ``until`` under ``directory``.

    ``store`` is the read models as of ``until`` (the caller replays them). Contract terms are
    left out unless ``with_terms``.
    """
    if since is not None and since > until:
        raise ExportError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    root = prepare(directory)
    report = ExportReport(str(root), since.isoformat() if since else None, until.isoformat())
    out = _Partitions(root, report)
    report.position = export_events(app, policy, out, since, until, progress, with_terms)
    export_views(store, policy, until, out)
    out.close()
    manifest = root / "_manifest.json"
    manifest.write_text(json.dumps({**report.as_dict(), "zone": str(policy.zone), "with_terms": with_terms,
                                    "layout": "events/<EventType>/month=YYYY-MM, views/<view>"},
                                   indent=2, ensure_ascii=False), encoding="utf-8")
    os.chmod(manifest, 0o600)
    return report
