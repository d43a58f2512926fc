"""Aggregates by business id: one set of lookups for the application and the unit of work."""
from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.base import NotFoundError
from domain.complaint import Complaint
from domain.contract import Contract
from domain.member import Member


class Lookups:
    """``member``, ``contract``, ``complaint``, ``find_member`` over ``_load(aggregate_id)``
    (committed state on the application, the write-back map first on a unit of work)."""

    def _load(self, aggregate_id: Any) -> Any:
        raise NotImplementedError

    def _get(self, cls: type, business_id: str):
        try:
            return self._load(cls.create_id(business_id))
        except AggregateNotFoundError:
            kind = cls.__name__.lower()
            raise NotFoundError(f"no {kind} {business_id!r}; check the id "
                                f"(`vip tiers`, `vip breaches` or `vip ledger` list what exists)") from None

    def member(self, member_id: str) -> Member:
        return self._get(Member, member_id)

    def contract(self, contract_id: str) -> Contract:
        return self._get(Contract, contract_id)

    def complaint(self, complaint_id: str) -> Complaint:
        return self._get(Complaint, complaint_id)

    def find_member(self, member_id: str) -> Member | None:
        try:
            return self.member(member_id)
        except NotFoundError:
            return None

    def _exists(self, cls: type, business_id: str) -> bool:
        try:
            self._get(cls, business_id)
            return True
        except NotFoundError:
            return False
