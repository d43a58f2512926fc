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
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from eventsourcing.persistence import PersistenceError

from domain.base import DomainError
from infra.progress import bar as _bar
from infra.service_layer.engine import Engine
from infra.service_layer.masking import MAX_INPUT_BYTES, PREFIX_CHARS, masked_input
from infra.service_layer.upstream import InputError, apply_input, parse
from infra.stores.private import private_file
from infra.stores.pii import KeyStoreError

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
        """The report; every rejected line when no rejects file holds them, else the first 50."""
        rejected = sorted(self.rejected, key=lambda r: r[0])
        listed = rejected if self.rejects_file is None else rejected[:50]
        return {"source": self.source, "lines": self.lines, "applied": self.applied,
                "duplicates": self.duplicates, "rejected": len(self.rejected),
                "rejects_file": self.rejects_file,
                "rejects": [{"line": n, "reason": r} for n, r, _ in listed]}


def read_lines(source: str, path: Path, report: IngestReport) -> list:
    """Parse every non-blank line; malformed ones go to the report.

    Each line is decoded on its own, so one byte that is not UTF-8 rejects
    its line only. A UTF-16 file (a byte-order mark, or NUL bytes between
    the characters) is refused line by line with the reason "not UTF-8
    (looks like UTF-16)": the fix is to save the file as UTF-8.
    """
    return [(item, number, raw) for item, number, raw, _, _ in _scan(source, path, report)]


def _scan(source: str, path: Path, report: IngestReport) -> Iterator[tuple]:
    """:func:`read_lines` one line at a time: (input, line number, raw, byte offset, byte length)
    of each parsed line, so a caller need not hold the file or its parsed lines."""
    with Path(path).open("rb") as handle:
        head, size, nuls = b"", 0, 0
        while block := handle.read(1 << 20):
            head = head or block[:2]
            size += len(block)
            nuls += block.count(b"\x00")
        utf16 = head in (b"\xff\xfe", b"\xfe\xff") or (size > 1 and nuls * 4 > size)
        handle.seek(0)
        offset = 0
        for number, line, length, content in _lines(handle):
            chunk = line[:-1] if line.endswith(b"\n") else line
            at, offset = offset, offset + length
            if content > MAX_INPUT_BYTES:
                report.lines += 1
                report.rejected.append((number, f"the line is {content} bytes long; an upstream event "
                                        f"is at most {MAX_INPUT_BYTES} bytes (not read further)",
                                        line.decode("utf-8", "ignore")))
                continue
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
                yield parse(source, json.loads(raw)), number, raw, at, len(chunk)
            except json.JSONDecodeError as exc:
                report.rejected.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", raw))
            except RecursionError:
                report.rejected.append((number, "not valid JSON: nested too deeply", raw))
            except (InputError, ValueError) as exc:
                report.rejected.append((number, str(exc), raw))


def _lines(handle) -> Iterator[tuple[int, bytes, int, int]]:
    """(line number, line, its length in bytes, its content's length) of each line. A line whose
    content is longer than ``MAX_INPUT_BYTES`` is skipped in blocks and only its first
    ``PREFIX_CHARS * 2`` bytes are kept, so a huge line costs its reading and nothing else."""
    number = 0
    while line := handle.readline(MAX_INPUT_BYTES + 1):
        number += 1
        if len(line) <= MAX_INPUT_BYTES or line.endswith(b"\n"):
            yield number, line, len(line), len(line) - line.endswith(b"\n")
            continue
        length, head = len(line), line[:PREFIX_CHARS * 2]
        while not line.endswith(b"\n"):
            line = handle.readline(1 << 16)
            if not line:
                break
            length += len(line)
        yield number, head, length, length - line.endswith(b"\n")


# One packed entry per parsed line, sorted as bytes: occurred-at (UTC microseconds, biased so
# the order of bytes is the order of instants), line number, file, byte offset and length.
# Holding 26 bytes a line, not the parsed line, keeps ingest's memory flat in the file's size.
_ENTRY = struct.Struct(">QIHQI")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_BIAS = 1 << 63


class _SortedLines:
    """The parsed lines of several files in (occurred-at, line number) order, read back from
    the files a batch at a time (each line parsed again: parsing is pure)."""

    def __init__(self, files: list, report: IngestReport) -> None:
        self.sources, self.handles, entries = [], [], []
        for index, (source, file) in enumerate(files):
            self.sources.append(source)
            self.handles.append(Path(file).open("rb"))
            for item, number, _, offset, length in _scan(source, file, report):
                micros = (item.occurred_at - _EPOCH) // timedelta(microseconds=1)
                entries.append(_ENTRY.pack(micros + _BIAS, number, index, offset, length))
        entries.sort()  # ties of instant and line number keep the files' order, as a stable sort would
        self.count = len(entries)
        self.packed = b"".join(entries)

    def __len__(self) -> int:
        return self.count

    def read(self, start: int, stop: int) -> list:
        """Lines ``start`` to ``stop`` of the order, each (input, line number, raw)."""
        items = []
        for n in range(start, min(stop, self.count)):
            _, number, index, offset, length = _ENTRY.unpack_from(self.packed, n * _ENTRY.size)
            handle = self.handles[index]
            handle.seek(offset)
            raw = handle.read(length).decode("utf-8")
            items.append((parse(self.sources[index], json.loads(raw)), number, raw))
        return items

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


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
    lines = _SortedLines(files, report)
    try:
        _apply_lines(engine, lines, report, path, progress, flush_every, batch_size)
    finally:
        lines.close()
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


def _apply_lines(engine: Engine, lines: _SortedLines, report: IngestReport, path: Path,
                 progress: bool, flush_every: int, batch_size: int | None) -> None:
    """Apply the lines in order, a batch (one transaction) at a time; outcomes go to ``report``."""
    size = batch_size or engine.batch_max_inputs
    bar = _bar(len(lines), f"ingest {report.source}", progress)
    start = unflushed = 0
    while start < len(lines):
        items = lines.read(start, start + size)
        outcomes = engine.retrying(lambda: _batch(engine, items, 0, size, path.name),
                                   f"the batch from line {items[0][1]}")
        for (_, number, raw), (outcome, reason) in zip(items, outcomes):
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


def _batch(engine: Engine, items: list, start: int, size: int, name: str) -> list:
    """Apply up to ``size`` lines from ``start`` (or what fits in the time limit) and commit them
    in one transaction; each line's (outcome, reason). A refused line is refused alone."""
    outcomes: list = []
    deadline = time.monotonic() + engine.batch_max_ms / 1000
    with engine.unit_of_work():
        engine.prefetch(item for item, _, _ in items[start:start + size])
        for item, number, _ in items[start:start + size]:
            try:
                outcomes.append((apply_input(engine, item), ""))
            except DomainError as exc:
                outcomes.append(("rejected", str(exc)))
            except (PersistenceError, KeyStoreError):
                raise   # a store is unwell (event log, key store): stop; a re-run applies the rest once
            except Exception as exc:  # a bug this line triggers: reject it, keep going
                log.exception("%s line %d failed", name, number)
                outcomes.append(("rejected", f"error: {type(exc).__name__}: {exc}"))
            if time.monotonic() > deadline:
                break
    return outcomes


def _write_rejects(report: IngestReport) -> None:
    # Owner-only from its creation (a reject may be a customer's record, however masked).
    # Into the directory the operator named, never one made up (a mistyped --rejects is an error).
    with open(private_file(report.rejects_file, truncate=True, parents=False), "w", encoding="utf-8") as out:
        for number, reason, raw in sorted(report.rejected, key=lambda r: r[0]):
            # Personal fields never reach the rejects file in clear (PIPL); unknown fields not at all.
            out.write(json.dumps({"line": number, "reason": reason, **masked_input(raw.rstrip("\r\n"))},
                                 ensure_ascii=False) + "\n")
