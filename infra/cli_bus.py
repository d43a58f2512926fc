"""Bus commands: ``vip broker``, ``vip topics create``, ``vip serve``, ``vip produce``."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add the bus commands to ``main`` (filled in by the message-bus work)."""
