"""``vip ingest``: upstream events from JSON Lines files, in occurred-at order.

Lines may arrive in any order; they are applied sorted by occurred-at (line
number breaks ties), so a file gives the same result as the same events
arriving live. A bad line is reported with its number and reason, written to
the rejects file, and every other line is still applied.

Lines are applied in batches (``VIP_BATCH_MAX_INPUTS`` lines or
``VIP_BATCH_MAX_MS`` milliseconds, whichever comes first): each batch is one
event-store transaction holding its events and input receipts. A crash
loses the open batch whole; a re-run finds the committed lines' receipts and
applies the rest, so every line still has exactly one effect, and the log is
the same, event for event, whatever the batch size.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import PersistenceError

from domain.base import DomainError
from infra.progress import bar as _bar
from infra.service_layer.engine import Engine
from infra.service_layer.upstream import InputError, apply_input, mask_text, parse

log = logging.getLogger("vip.ingest")


@dataclass
class IngestReport:
    source: str
    lines: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)
    rejects_file: str | None = None

    def as_dict(self) -> dict:
        return {"source": self.source, "lines": self.lines, "applied": self.applied,
                "duplicates": self.duplicates, "rejected": len(self.rejected),
                "rejects_file": self.rejects_file,
                "rejects": [{"line": n, "reason": r} for n, r, _ in self.rejected[:50]]}


def read_lines(source: str, path: Path, report: IngestReport) -> list:
    """Parse every non-blank line; malformed ones go to the report.

    Each line is decoded on its own, so one byte that is not UTF-8 rejects
    its line only. A UTF-16 file (a byte-order mark, or NUL bytes between
    the characters) is refused line by line with the reason "not UTF-8
    (looks like UTF-16)": the fix is to save the file as UTF-8.
    """
    items = []
    with Path(path).open("rb") as handle:
        data = handle.read()
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) > 1 and data.count(b"\x00") * 4 > len(data))
    for number, chunk in enumerate(data.split(b"\n"), 1):
        if not chunk.strip(b" \t\r\x00\xff\xfe"):
            continue
        report.lines += 1
        if utf16:
            report.rejected.append((number, "not UTF-8 (looks like UTF-16); save the file as UTF-8",
                                    chunk.decode("utf-8", "replace")))
            continue
        try:
            raw = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.rejected.append((number, f"not UTF-8: byte 0x{chunk[exc.start]:02x} at column "
                                            f"{exc.start + 1}", chunk.decode("utf-8", "replace")))
            continue
        try:
            items.append((parse(source, json.loads(raw)), number, raw))
        except json.JSONDecodeError as exc:
            report.rejected.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", raw))
        except RecursionError:
            report.rejected.append((number, "not valid JSON: nested too deeply", raw))
        except (InputError, ValueError) as exc:
            report.rejected.append((number, str(exc), raw))
    return items


def ingest_file(engine: Engine, source: str, path: str | Path, rejects: str | Path | None = None,
                progress: bool = True, flush_every: int = 2000, batch_size: int | None = None) -> IngestReport:
    """Apply a JSON Lines file of upstream events; returns what happened to each line."""
    return ingest_files(engine, [(source, path)], rejects, progress, flush_every, batch_size)


def ingest_files(engine: Engine, files: list, rejects: str | Path | None = None,
                 progress: bool = True, flush_every: int = 2000,
                 batch_size: int | None = None) -> IngestReport:
    """Apply several files (orders and CRM) merged into one occurred-at order.

    ``batch_size`` (lines per transaction) defaults to the engine's ``batch_max_inputs``.
    """
    path = Path(files[0][1])
    report = IngestReport("+".join(source for source, _ in files))
    items = []
    for source, file in files:
        items += read_lines(source, file, report)
    items.sort(key=lambda entry: (entry[0].occurred_at, entry[1]))
    size = batch_size or engine.batch_max_inputs
    bar = _bar(len(items), f"ingest {report.source}", progress)
    start = unflushed = 0
    while start < len(items):
        first = items[start][1]
        outcomes = engine.retrying(lambda: _batch(engine, items, start, size, path.name),
                                   f"the batch from line {first}")
        for (_, number, raw), (outcome, reason) in zip(items[start:], outcomes):
            if outcome == "rejected":
                report.rejected.append((number, reason, raw))
            elif outcome == "duplicate":
                report.duplicates += 1
            else:
                report.applied += 1
        start += len(outcomes)
        unflushed += len(outcomes)
        if unflushed >= flush_every:
            engine.flush()
            unflushed = 0
        bar.update(len(outcomes))
    bar.close()
    engine.flush()
    if report.rejected:
        report.rejects_file = str(Path(rejects) if rejects else path.with_suffix(path.suffix + ".rejects"))
        try:
            _write_rejects(report)
        except OSError as exc:
            # The report (printed by the caller) still says which lines and why.
            log.error("cannot write the rejects file %s (%s); the rejected lines are listed below",
                      report.rejects_file, exc.strerror or exc)
            report.rejects_file = None
        for number, reason, _ in report.rejected[:20]:
            log.warning("%s line %d rejected: %s", path.name, number, reason)
    return report


def _batch(engine: Engine, items: list, start: int, size: int, name: str) -> list:
    """Apply up to ``size`` lines from ``start`` (or what fits in the time limit) and commit them
    in one transaction; each line's (outcome, reason). A refused line is refused alone."""
    outcomes: list = []
    deadline = time.monotonic() + engine.batch_max_ms / 1000
    engine.begin()
    try:
        engine.app.prefetch_receipts([item.event_id for item, _, _ in items[start:start + size]])
        for item, number, _ in items[start:start + size]:
            try:
                outcomes.append((apply_input(engine, item), ""))
            except DomainError as exc:
                outcomes.append(("rejected", str(exc)))
            except PersistenceError:
                raise   # the event store is unwell: stop; a re-run applies the rest once
            except Exception as exc:  # a bug this line triggers: reject it, keep going
                log.exception("%s line %d failed", name, number)
                outcomes.append(("rejected", f"error: {type(exc).__name__}: {exc}"))
            if time.monotonic() > deadline:
                break
        engine.commit()
    except BaseException:
        engine.abort()
        raise
    return outcomes


def _write_rejects(report: IngestReport) -> None:
    with open(report.rejects_file, "w", encoding="utf-8") as out:
        for number, reason, raw in sorted(report.rejected, key=lambda r: r[0]):
            # Personal fields never reach the rejects file in clear (PIPL).
            out.write(json.dumps({"line": number, "reason": reason, "raw": mask_text(raw.rstrip("\r\n"))},
                                 ensure_ascii=False) + "\n")
