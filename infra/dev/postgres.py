"""Throwaway PostgreSQL 15 cluster for tests and benchmarks (no Docker, no system service).

``start_pg_cluster()`` runs ``initdb`` into a fresh temp dir (trust auth,
fsync off), starts the server with ``pg_ctl`` on a free 127.0.0.1 port with a
private unix-socket dir, creates a database and returns a :class:`PgCluster`.
``PgCluster.stop()`` shuts the server down (immediate mode) and removes the
directory.  Nothing here is suitable for real data.

Binaries are taken from ``$VIP_PG_BIN`` or ``/usr/lib/postgresql/15/bin``
(Debian's ``postgresql-15`` package; they are not on ``PATH``).

PostgreSQL refuses to run as root.  When the test process is root, the
cluster is owned by an unprivileged OS user (``$VIP_PG_OS_USER``, default
``vipci``), created with ``useradd`` if missing, and every PostgreSQL command
is run as that user.  Its temp dir lives under ``/tmp`` (never ``$TMPDIR``,
which may sit below an unreadable ``/root``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PgCluster",
    "PostgresBinariesMissing",
    "PostgresStartError",
    "DEFAULT_PG_BIN",
    "pg_bin_dir",
    "running_pg_cluster",
    "start_pg_cluster",
]

DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
DEFAULT_OS_USER = "vipci"
_REQUIRED = ("initdb", "pg_ctl", "postgres")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresBinariesMissing(RuntimeError):
    """initdb / pg_ctl / postgres not found."""


class PostgresStartError(RuntimeError):
    """The throwaway cluster could not be initialised or started."""


def pg_bin_dir(bin_dir: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding initdb/pg_ctl/postgres, or raise PostgresBinariesMissing."""
    d = Path(bin_dir or os.environ.get("VIP_PG_BIN") or DEFAULT_PG_BIN)
    missing = [b for b in _REQUIRED if not os.access(d / b, os.X_OK)]
    if missing:
        raise PostgresBinariesMissing(
            f"PostgreSQL 15 server binaries not found in {d} (missing: {', '.join(missing)}). "
            "Install them with `apt-get install -y postgresql-15` (Debian/Ubuntu), "
            "or point $VIP_PG_BIN at a directory containing initdb, pg_ctl and postgres."
        )
    return d


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_os_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if not os.access(useradd, os.X_OK):
        raise PostgresStartError(
            f"running as root and OS user {name!r} does not exist, and `useradd` is not available "
            "to create it; create an unprivileged user and set $VIP_PG_OS_USER"
        )
    proc = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        capture_output=True, text=True,
    )
    try:  # exit 9 = already exists (another worker won the race): fine either way
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresStartError(f"useradd {name} failed ({proc.returncode}): {proc.stderr.strip()}") from None


@dataclass
class PgCluster:
    """A running throwaway cluster.  ``url``/``dsn`` point at ``dbname``."""

    host: str
    port: int
    user: str
    dbname: str
    dsn: str
    url: str
    base_dir: Path
    data_dir: Path
    socket_dir: Path
    log_path: Path
    bin_dir: Path
    os_user: str
    _as_user: dict = field(default_factory=dict, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # -- addressing -------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn_for(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    # -- databases ----------------------------------------------------------

    def _admin_exec(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """Create a database (random ``t_<hex>`` name by default); return its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not _IDENT.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        self._admin_exec(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, kicking out any leftover connections."""
        if not _IDENT.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        self._admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- lifecycle ------------------------------------------------------------

    def log_tail(self, max_bytes: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-max_bytes:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete the cluster directory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                r = _run(self, [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir),
                                "-m", "immediate", "-w", "-t", "30"], check=False)
                if r.returncode != 0:
                    _kill_postmaster(self.data_dir)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _kill_postmaster(data_dir: Path) -> None:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), LC_ALL="C", LANG="C", TZ="UTC")
    return env


def _run(cl: PgCluster, cmd: list[str], *, check: bool = True, timeout: float = 120):
    proc = subprocess.run(
        cmd, cwd=cl.base_dir, env=_clean_env(cl.base_dir), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, **cl._as_user,
    )
    if check and proc.returncode != 0:
        raise PostgresStartError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
            f"--- server log {cl.log_path} ---\n{cl.log_tail()}"
        )
    return proc


def start_pg_cluster(
    dbname: str = "vip",
    *,
    bin_dir: str | os.PathLike[str] | None = None,
    os_user: str | None = None,
    timeout: float = 60,
) -> PgCluster:
    """initdb + start a throwaway cluster and create *dbname*; caller must ``stop()`` it."""
    bins = pg_bin_dir(bin_dir)
    if not _IDENT.match(dbname):
        raise ValueError(f"unsafe database name {dbname!r}")

    as_user: dict = {}
    if os.geteuid() == 0:
        pw = _ensure_os_user(os_user or os.environ.get("VIP_PG_OS_USER") or DEFAULT_OS_USER)
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        parent = "/tmp"  # world-traversable, unlike a TMPDIR under /root
    else:
        pw = pwd.getpwuid(os.geteuid())
        parent = None

    base = Path(tempfile.mkdtemp(prefix="vip-pg-", dir=parent))
    try:
        os.chmod(base, 0o700)
        if as_user:
            os.chown(base, pw.pw_uid, pw.pw_gid)
        sock = base / "sock"
        sock.mkdir(mode=0o700)
        if as_user:
            os.chown(sock, pw.pw_uid, pw.pw_gid)

        db_user = pw.pw_name
        cl = PgCluster(
            host="127.0.0.1", port=0, user=db_user, dbname=dbname, dsn="", url="",
            base_dir=base, data_dir=base / "data", socket_dir=sock,
            log_path=base / "postgres.log", bin_dir=bins, os_user=pw.pw_name, _as_user=as_user,
        )
        _run(cl, [str(bins / "initdb"), "-D", str(cl.data_dir), "-U", db_user, "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync"], timeout=timeout)
        with open(cl.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# --- vip test cluster (throwaway) ---\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{sock}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
                "log_min_messages = warning\n"
            )

        # Bind race on the port is possible: retry a few times with a new one.
        for attempt in range(3):
            port = _free_port()
            r = _run(cl, [str(bins / "pg_ctl"), "start", "-D", str(cl.data_dir), "-l", str(cl.log_path),
                          "-w", "-t", str(int(timeout)), "-o", f"-p {port}"],
                     check=False, timeout=timeout + 10)
            if r.returncode == 0:
                break
            _kill_postmaster(cl.data_dir)
            if attempt == 2 or "already in use" not in cl.log_tail():
                raise PostgresStartError(
                    f"pg_ctl start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                    f"--- server log {cl.log_path} ---\n{cl.log_tail()}"
                )
        cl.port = port
        cl.dsn = cl.dsn_for(dbname)
        cl.url = cl.url_for(dbname)
        if dbname != "postgres":
            cl.create_database(dbname)
        return cl
    except BaseException:
        with contextlib.suppress(Exception):
            _kill_postmaster(base / "data")
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def running_pg_cluster(dbname: str = "vip", **kwargs) -> Iterator[PgCluster]:
    """Context-manager form of :func:`start_pg_cluster`."""
    cl = start_pg_cluster(dbname, **kwargs)
    try:
        yield cl
    finally:
        cl.stop()


if __name__ == "__main__":  # manual smoke test: python -m infra.dev.postgres
    t0 = time.monotonic()
    with running_pg_cluster() as c:
        print(f"up in {time.monotonic() - t0:.2f}s: {c.url}")
