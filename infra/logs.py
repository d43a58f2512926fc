"""One logging set-up for every entry point (CLI, relay, consumer, serve)."""
from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    """Timestamped lines on stderr; the Kafka client's chatter only from warnings up."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
