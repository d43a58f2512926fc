"""How answers read to a person: the one presentation rule every table uses.

Rows and ``--json`` keep machine values (UTC ISO instants, seconds, fen);
a table shows them through this module only:

- instants in one stated zone, to the second (``2025-03-05 10:00:00``); the
  zone is named once in the table's title (:func:`zone_note`), never per cell;
- durations as the two largest units (``3 d 4 h``, ``2 h 5 min``, ``40 s``);
  a signed time to a deadline as ``2 h 5 min`` or ``overdue 2 h 5 min``;
- money from fen as the currency's units with thousands separators
  (``24,000.00 CNY``);
- ledger balances on each account's natural side, so what is owed (a
  receivable, a payable) reads as a positive amount.

Fields are recognised by the naming convention the read models follow:
``*_fen`` is money (in the row's ``currency``, CNY by default), ``*_s`` is a
duration in seconds, an ISO-8601 text with a time and an offset is an
instant. Pure: the caller states the zone.
"""
from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

DEFAULT_ZONE = "Asia/Shanghai"

# An ISO-8601 instant as the read models and events write it: a time with an offset.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})")
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))

# The side on which each kind of ledger account normally stands (debit positive in the rows).
_NATURE = {
    "cash": ("cash", 1), "receivable": ("owed to us", 1), "payable": ("we owe", -1),
    "partner_payable": ("we owe", -1), "revenue": ("income", -1), "rounding": ("income", -1),
    "compensation_income": ("income", -1), "settlement_income": ("income", -1),
    "discounts_received": ("income", -1), "discounts": ("given away", 1), "expense": ("expense", 1),
    "compensation_expense": ("expense", 1), "settlement_expense": ("expense", 1),
}


def zone_note(zone: tzinfo) -> str:
    """What a title says of its instants: ``times in Asia/Shanghai``."""
    return f"times in {getattr(zone, 'key', None) or zone}"


def instant(value: datetime | str | None, zone: tzinfo) -> str:
    """An instant in ``zone`` to the second, without offset (the title names the zone)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:  # never written by the system; shown as given rather than guessed
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """A length of time as its two largest units: ``3 d 4 h``, ``2 h 5 min``, ``40 s``."""
    if seconds is None:
        return "-"
    left = int(round(abs(seconds)))
    parts = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append((count, unit))
        if len(parts) == 2:
            break
    shown = " ".join(f"{count:,} {unit}" for count, unit in parts if count) or "0 s"
    return f"-{shown}" if seconds < 0 and shown != "0 s" else shown


def time_left(seconds: float | None) -> str:
    """Time to a deadline: ``2 h 5 min`` ahead, ``overdue 2 h 5 min`` past it."""
    if seconds is None:
        return "-"
    return f"overdue {duration(-seconds)}" if seconds < 0 else duration(seconds)


def money(fen: int | None, currency: str | None = "CNY") -> str:
    """An amount in fen (minor units) as ``1,234.56 CNY``."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    units, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{units:,}.{cents:02d} {currency or 'CNY'}"


def account_nature(account: str) -> str:
    """What an account's balance means to us: ``owed to us``, ``we owe``, ``income``, ..."""
    return _NATURE.get(account.partition(":")[0], ("other", 1))[0]


def natural_balance(account: str, net_fen: int) -> int:
    """A balance (debit positive) on its account's natural side: a payable owed is positive."""
    return net_fen * _NATURE.get(account.partition(":")[0], ("other", 1))[1]


def header(key: str) -> str:
    """A column's title from its field: units leave the name (``overdue_s`` -> ``overdue``)."""
    for suffix in ("_fen", "_s"):
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def value(key: str, item: Any, zone: tzinfo, currency: str | None = None) -> str:
    """One field shown by the rule: money, duration or instant by its name or its text."""
    if item is None:
        return "-"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if key.endswith("_fen") and isinstance(item, int):
        return money(item, currency)
    if key.endswith("_s") and isinstance(item, (int, float)):
        return duration(item)
    if isinstance(item, datetime):
        return instant(item, zone)
    if isinstance(item, str):
        return text(item, zone)
    if isinstance(item, int):
        return f"{item:,}"
    if isinstance(item, float):  # ratios, averages: never money (that has its currency) nor seconds
        return f"{item:,.2f}".rstrip("0").rstrip(".")
    if isinstance(item, dict):
        cur = item.get("currency", currency)
        return "; ".join(f"{header(k)}: {value(k, v, zone, cur)}" for k, v in item.items())
    if isinstance(item, (list, tuple)):
        return ", ".join(value(key, v, zone, currency) for v in item)
    return str(item)


def row(data: dict, keys: list[str], zone: tzinfo) -> dict[str, str]:
    """A row's ``keys`` shown by the rule, under their column titles."""
    currency = data.get("currency")
    return {header(k): value(k, data.get(k), zone, currency) for k in keys}


def text(message: str, zone: tzinfo) -> str:
    """Free text (a summary, a reason) with every ISO instant in it shown in ``zone``."""
    return _INSTANT.sub(lambda m: instant(m.group(0).replace(" ", "T", 1), zone), message)


def has_instant(item: Any) -> bool:
    """Whether a value (or anything inside it) is shown as an instant: its table names the zone."""
    if isinstance(item, datetime):
        return True
    if isinstance(item, str):
        return bool(_INSTANT.search(item))
    if isinstance(item, dict):
        return any(has_instant(v) for v in item.values())
    if isinstance(item, (list, tuple)):
        return any(has_instant(v) for v in item)
    return False
