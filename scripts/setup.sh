# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh (not executed directly):
# cd to the repo root and make sure .venv exists with the project installed.
#
#   PYTHON=python3.12 bash scripts/test.sh   # pick the interpreter for a new venv
#   VIP_SKIP_INSTALL=1 bash scripts/test.sh  # use .venv as-is (offline)

VIP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$VIP_ROOT"

if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi

if [ -z "${VIP_SKIP_INSTALL:-}" ]; then
    echo "setup: installing into .venv (log: .venv/pip.log)" >&2
    # pip's build backend warns about editable installs at length; keep the
    # log, and show it only when the install fails.
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >.venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        exit 1
    fi
fi
