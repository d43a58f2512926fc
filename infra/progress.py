"""Progress bars for long work (ingest, replay, demo): on stderr, off with --no-progress."""
from __future__ import annotations

from tqdm import tqdm


def bar(total: int | None, desc: str, enabled: bool, unit: str = "ev"):
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False)
