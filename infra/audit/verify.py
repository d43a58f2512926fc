"""Verification of the stored log against its hash chains and signed checkpoints.

:func:`verify` reads the log in pages, in notification order (read-only), and
recomputes each event's chain hash from its stored bytes. It names the first
problem in log order:

* ``changed``: the bytes or type no longer hash to the event's chain row
  (changed in place, or swapped with another event's);
* ``missing``: a version of an aggregate is not in the log (deleted);
* ``reordered``: an aggregate's versions stand out of order in the log;
* ``inserted``: an event after chaining began has no chain row (written
  outside the application, or its chain row was deleted);
* ``truncated``: the log ends before the last checkpoint's range does;
* ``checkpoint``: a signature that does not match, a missing checkpoint, or
  a range whose events fold to another root than the one signed.

Events stored before chaining began are counted as unchained (reported once,
not as tampering) until ``vip verify --adopt`` chains them: that attests them
only from then on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from infra.audit.chain import ZERO, event_hash
from infra.audit.checkpoints import PAGE, fold, leaf, seed, signed
from infra.audit.sql import AuditSql


@dataclass
class Finding:
    """One problem: what, where in the log (or after which event it stood), which event."""

    kind: str
    detail: str
    position: int | None = None
    after: int | None = None
    aggregate: str | None = None
    version: int | None = None

    def order(self) -> float:
        if self.position is not None:
            return float(self.position)
        return self.after + 0.5 if self.after is not None else float("inf")

    def text(self) -> str:
        where = (f"notification {self.position}" if self.position is not None
                 else f"after notification {self.after}" if self.after is not None else "position unknown")
        event = f" ({self.aggregate} v{self.version})" if self.aggregate else ""
        return f"{self.kind} at {where}{event}: {self.detail}"


@dataclass
class Report:
    """What a verification found; ``first`` is the earliest problem in log order."""

    events: int = 0
    checkpoints: int = 0
    unchained: int = 0
    chain_start: int = 0
    adopted_at: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=Finding.order) if self.findings else None

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        head = (f"verified: {self.events:,} events checked, {self.checkpoints:,} checkpoints verified"
                if self.clean else f"FAILED: {self.first.text()}"
                + (f" (and {len(self.findings) - 1} more problems)" if len(self.findings) > 1 else ""))
        if self.unchained:
            head += f"; {self.unchained:,} events unchained before position {self.chain_start + 1}"
        if self.adopted_at:
            head += (f"; events up to position {self.chain_start} were chained by adoption at "
                     f"{self.adopted_at} (attested only from then)")
        return head

    def as_dict(self) -> dict:
        return {"clean": self.clean, "events": self.events, "checkpoints": self.checkpoints,
                "unchained": self.unchained, "chain_start": self.chain_start, "adopted_at": self.adopted_at,
                "first": asdict(self.first) if self.first else None,
                "findings": [asdict(f) for f in sorted(self.findings, key=Finding.order)[:100]],
                "problems": len(self.findings), "summary": self.summary()}


@dataclass
class _Last:
    version: int
    hash: bytes | None
    position: int


class _Walk:
    """The state of one pass over the log."""

    def __init__(self, sql: AuditSql, key: bytes | None, report: Report, begin: int) -> None:
        self.sql, self.key, self.report, self.begin = sql, key, report, begin
        self.start = report.chain_start
        self.last: dict[str, _Last] = {}
        # missing versions, until they turn up later: (finding, where the later version stood, its version)
        self.gaps: dict[tuple[str, int], tuple[Finding, int, int]] = {}
        self.end = begin

    def event(self, position, oid, version, topic, state, stored, prev_lookup) -> bytes | None:
        """Check one event; returns the hash its checkpoint leaf folds (None: not computable)."""
        r, last = self.report, self.last.get(oid)
        r.events += 1
        self.end = position
        expected = last.version + 1 if last else 1
        if last is None and version > 1 and self.begin:
            prev = prev_lookup.get((oid, version - 1))  # --from: trust what is stored before it
        elif version == expected:
            prev = last.hash if last else ZERO
        elif last is not None and version <= last.version:
            gap = self.gaps.pop((oid, version), None)
            if gap is not None and gap[0].kind == "missing":
                finding, seen_at, seen = gap
                finding.kind, finding.position, finding.after, finding.version = "reordered", seen_at, None, seen
                finding.detail = f"version {seen} stands before version {version} (at notification {position})"
            elif gap is None:
                r.findings.append(Finding("reordered", f"version {version} comes after version "
                                          f"{last.version} (at notification {last.position})",
                                          position, None, oid, version))
            return stored
        else:
            finding = Finding("missing", f"versions {expected}..{version - 1} are not in the log "
                              f"(deleted); version {version} is at notification {position}",
                              None, last.position if last else None, oid, expected)
            if last is None:
                finding.position = position  # nothing earlier of it: name where its history should be
            r.findings.append(finding)
            for v in range(expected, version):
                self.gaps[(oid, v)] = (finding, position, version)
            prev = None
        computed = event_hash(prev, topic, oid, version, state) if prev is not None else None
        if position <= self.start and stored is None:
            r.unchained += 1
        elif stored is None:
            r.findings.append(Finding("inserted", "no chain row: written outside the application, or its "
                                      "chain row was deleted", position, None, oid, version))
        elif computed is not None and computed != stored:
            r.findings.append(Finding("changed", "its stored bytes or type do not hash to its chain row "
                                      "(changed in place, or swapped with another event)",
                                      position, None, oid, version))
        # The chain goes on from the stored hash, so one changed event is named once, not its successors.
        self.last[oid] = _Last(version, stored if stored is not None else computed, position)
        return computed if computed is not None else stored

    def orphans(self) -> None:
        """Chain rows whose event is gone: deleted events no later version shows."""
        for oid, version in self.sql.orphans():
            if (oid, version) in self.gaps:
                continue
            last = self.last.get(oid)
            if last is not None and version <= last.version:
                continue
            self.report.findings.append(Finding(
                "missing", "its chain row remains but the event is not in the log (deleted)",
                None, last.position if last else None, oid, version))


def verify(sql: AuditSql, key: bytes | None, start_from: int = 1,
           progress: Callable[[int], None] = lambda n: None) -> Report:
    """Walk the log from notification ``start_from`` and the checkpoints; see the module doc."""
    report = Report()
    chained = sql.has_tables()
    report.chain_start, report.adopted_at = sql.chain_start() if chained else (sql.max_id(), None)
    cps = sql.checkpoints() if chained else []
    _check_signatures(cps, key, report)
    # Roots are recomputed from the start of the checkpoint holding ``start_from``.
    holding = [cp for cp in cps if cp.from_id <= start_from <= cp.to_id]
    begin = (holding[0].from_id if holding else start_from) - 1
    walk = _Walk(sql, key, report, max(0, begin))
    pending = [cp for cp in cps if cp.to_id > walk.begin]
    root = _root_before(cps, pending, report.chain_start)
    after = walk.begin
    while True:
        rows = sql.page(after, PAGE, chained=chained)
        if not rows:
            break
        prev_lookup = sql.chained([(oid, v - 1) for _, oid, v, *_ in rows
                                   if v > 1 and oid not in walk.last]) if walk.begin and chained else {}
        for position, oid, version, topic, state, stored in rows:
            while pending and position > pending[0].to_id:
                root = _close(pending.pop(0), root, walk)
            h = walk.event(position, oid, version, topic, state, stored, prev_lookup)
            if pending and pending[0].from_id <= position and h is not None:
                root = fold(root, position, oid, version,
                            leaf(position, report.chain_start, h, topic, oid, version, state))
        after = rows[-1][0]
        progress(len(rows))
    if pending and pending[-1].to_id > walk.end:
        report.findings.append(Finding("truncated", f"the log ends at notification {walk.end} but "
                                       f"checkpoint {pending[-1].from_id}..{pending[-1].to_id} covers up to "
                                       f"{pending[-1].to_id}", walk.end + 1))
    while pending:
        root = _close(pending.pop(0), root, walk)
    if chained:
        walk.orphans()
    return report


def _check_signatures(cps, key, report: Report) -> None:
    prev_to = 0
    for cp in cps:
        if key is not None and not signed(key, cp):
            report.findings.append(Finding("checkpoint", f"checkpoint {cp.from_id}..{cp.to_id}: its signature "
                                           f"does not match (altered or forged)", cp.from_id))
        if cp.from_id != prev_to + 1:
            report.findings.append(Finding("checkpoint", f"no checkpoint covers {prev_to + 1}..{cp.from_id - 1} "
                                           f"(one was deleted)", prev_to + 1))
        prev_to = cp.to_id


def _root_before(cps, pending, chain_start: int) -> bytes:
    if not pending:
        return b""
    index = cps.index(pending[0])
    return cps[index - 1].root if index else seed(chain_start)


def _close(cp, root: bytes, walk: _Walk) -> bytes:
    """Compare the root folded over ``cp``'s range; the next range starts from the signed root."""
    if root != cp.root:
        walk.report.findings.append(Finding(
            "checkpoint", f"checkpoint {cp.from_id}..{cp.to_id} (signed {cp.made_at}): its events fold to "
            f"another root than the one signed: an event in it was changed, removed, inserted or reordered",
            cp.to_id))
    elif walk.key is not None:
        walk.report.checkpoints += 1
    return cp.root


def adopt(sql: AuditSql, at: str, progress: Callable[[int], None] = lambda n: None) -> int:
    """Chain the events stored before chaining began, as they stand now; returns how many.

    Each gets the hash the recorders already link their successors to (the
    aggregate's chain computed from its stored history), so nothing else changes;
    it attests those events only from ``at`` on.
    """
    start, _ = sql.chain_start()
    last: dict[str, bytes] = {}
    after, adopted = 0, 0
    while after < start:
        rows = sql.page(after, PAGE, until=start)
        if not rows:
            break
        new = []
        for _, oid, version, topic, state, stored in rows:
            h = event_hash(last.get(oid, ZERO) if version > 1 else ZERO, topic, oid, version, state)
            last[oid] = h
            if stored is None:
                new.append((oid, version, h))
        sql.adopt(new, None)
        adopted += len(new)
        after = rows[-1][0]
        progress(len(rows))
    sql.adopt([], at)
    return adopted
