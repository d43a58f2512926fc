"""The API served from a thread beside other work (``vip serve --api-port``, browser tests)."""
from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class ApiThread:
    """uvicorn on a daemon thread; ``start`` returns once it listens, ``stop`` drains it."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.app, self.host, self.port = app, host, port
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="vip-api", daemon=True)

    def start(self, timeout: float = 20.0) -> "ApiThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {self.host}:{self.port} (port taken?)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.idempotency.close()
        self.app.state.keys.close()
