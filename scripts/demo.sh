#!/usr/bin/env bash
# Run the end-to-end demo, then serve the web console on its data:
#   bash scripts/demo.sh [vip demo args...]
# At a terminal, the console follows the demo: the address and a sign-in key
# (an admin key for this run only) are printed, and Ctrl-C stops it. Without a
# terminal (CI, pipes) or with VIP_NO_CONSOLE=1 it stops after the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
.venv/bin/vip demo --reset "$@"
if [ -t 0 ] && [ -t 1 ] && [ -z "${VIP_NO_CONSOLE:-}" ]; then
    echo
    echo "Serving the console on the demo data (Ctrl-C stops it; VIP_NO_CONSOLE=1 skips this)."
    exec .venv/bin/vip api --demo-key
fi
