#!/usr/bin/env bash
# Serve the web console and HTTP API on the demo data: bash scripts/console.sh [vip api args...]
# Runs the demo first when VIP_DATA_DIR (default .vip) holds none. Prints the address and
# a sign-in key (an admin key for this run only, revoked when it stops); Ctrl-C stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ ! -f "${VIP_DATA_DIR:-.vip}/DEMO" ]; then
    .venv/bin/vip demo --reset --no-progress >/dev/null
fi
exec .venv/bin/vip api --demo-key "$@"
