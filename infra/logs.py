"""The one logging set-up of every process (the ``vip`` command, serve, relay, consumer, API)."""
from __future__ import annotations

import logging
import sys

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False, formatter: logging.Formatter | None = None) -> None:
    """Log to stderr at INFO (DEBUG when ``verbose``); the Kafka client's chatter only from warnings up.

    Without ``formatter``: timestamped text lines, and a root logger that already has handlers
    (a test's log capture) is left as it is. With one (``vip api``: JSON lines with each request's
    correlation id, ``infra.api.observability.JsonFormatter``), it replaces every handler the root logger
    has, the text one the ``vip`` group set up included, so every line has the one format.
    """
    level = logging.DEBUG if verbose else logging.INFO
    if formatter is None:
        logging.basicConfig(level=level, stream=sys.stderr, format=TEXT)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.WARNING)
