"""Calendar months in a zone: contract validity and milestone due dates (seed 000 §1.3, §3.2)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"  # contract terms may name another in "zone"


def add_months(at: datetime, months: int, zone: str = DEFAULT_ZONE) -> datetime:
    """Same local day-of-month ``months`` later in ``zone`` (clamped to the month's end)."""
    at = at.astimezone(ZoneInfo(zone))
    year, month = divmod(at.month - 1 + months, 12)
    year += at.year
    month += 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {at}")
