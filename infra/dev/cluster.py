"""Several backend processes on one machine, for the kill test and the scaling benchmark.

A :class:`Cluster` starts named ``vip`` subprocesses (``serve``, ``streams run``)
with one environment, kills any of them with SIGKILL, restarts them, and stops
them all with SIGTERM. Each process's output goes to a log file of its own
(``<dir>/<name>.<n>.log``), so a failure can be read afterwards; the CPU each
process used is read from ``/proc`` before it ends.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka.bus import tracking_name
from infra.stores.keyed import KeyedStore
from infra.stores.streamstore import open_stream_store

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (0.0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Member:
    """One named process slot: the command it runs and its current process."""

    name: str
    args: list
    process: subprocess.Popen | None = None
    starts: int = 0
    kills: int = 0
    cpu: float = 0.0  # CPU of the processes of this slot that have ended
    logs: list = field(default_factory=list)


class Cluster:
    """Named ``vip`` processes sharing one environment (see the module docstring)."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env = env
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.members: dict[str, Member] = {}
        self.vip = os.path.join(os.path.dirname(sys.executable), "vip")

    def add(self, name: str, *args: str) -> Member:
        """Declare and start a process ``vip ARGS...`` called ``name``."""
        member = self.members[name] = Member(name, list(args))
        self.start(name)
        return member

    def start(self, name: str) -> None:
        member = self.members[name]
        member.starts += 1
        path = self.log_dir / f"{name}.{member.starts}.log"
        member.logs.append(path)
        with open(path, "wb") as out:
            member.process = subprocess.Popen([self.vip, *member.args], env=self.env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self, name: str) -> bool:
        process = self.members[name].process
        return process is not None and process.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        member = self.members[name]
        if self.alive(name):
            member.cpu += cpu_seconds(member.process.pid)
            member.process.kill()
            member.kills += 1
        member.process.wait()

    def cpu(self, name: str) -> float:
        """CPU seconds used by every process of this slot so far."""
        member = self.members[name]
        live = cpu_seconds(member.process.pid) if self.alive(name) else 0.0
        return member.cpu + live

    def crashed(self) -> dict:
        """Slots whose current process ended without being killed here: name -> exit code."""
        return {name: m.process.returncode for name, m in self.members.items()
                if m.process is not None and m.process.poll() is not None}

    def stop(self, timeout: float = 30.0) -> dict:
        """SIGTERM to every live process, SIGKILL after ``timeout``; returns exit codes."""
        for name, member in self.members.items():
            if self.alive(name):
                member.cpu += cpu_seconds(member.process.pid)
                member.process.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for name, member in self.members.items():
            try:
                codes[name] = member.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                member.process.kill()
                codes[name] = member.process.wait()
        return codes

    def wait_until(self, done, seconds: float, what: str) -> None:
        """Wait until ``done()``; a process that ended on its own, or the deadline, stops the wait
        with what the process logged last."""
        deadline = time.monotonic() + seconds
        while not done():
            ended = self.crashed()
            if ended:
                raise RuntimeError(f"{what}: {ended} ended: " + "\n".join(self.tail(n) for n in ended))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not reached in {seconds}s")
            time.sleep(0.2)

    def wait_for(self, name: str, text: str, seconds: float) -> None:
        """Wait until the slot's current log shows ``text`` (e.g. a process's start line)."""
        deadline = time.monotonic() + seconds
        path = self.members[name].logs[-1]
        while text not in (path.read_text(errors="replace") if path.exists() else ""):
            if not self.alive(name):
                raise RuntimeError(f"{name} ended: {self.tail(name)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not say {text!r} in {seconds}s: {self.tail(name)}")
            time.sleep(0.1)

    def tail(self, name: str, lines: int = 30) -> str:
        """The last lines of the slot's latest log (what to show when it failed)."""
        path = self.members[name].logs[-1]
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def applied(app, ends: dict) -> bool:
    """Whether the event store records every upstream message up to ``ends``
    (``{(topic, partition): end}``) as applied (its tracked Kafka positions)."""
    return all((app.recorder.max_tracking_id(tracking_name(topic, part)) or 0) >= end
               for (topic, part), end in ends.items() if end)


def folded(settings, ends: dict) -> bool:
    """Whether the stream workers' store holds every domain partition up to ``ends``."""
    store = open_stream_store(settings, read_only=True)
    try:
        offsets = store.offsets() if isinstance(store, KeyedStore) else {}  # no store yet: nothing
    finally:
        store.close()
    return all(offsets.get(tp, 0) >= end for tp, end in ends.items() if end)
