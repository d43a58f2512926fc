#!/usr/bin/env bash
# Run the end-to-end demo: bash scripts/demo.sh [vip demo args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec .venv/bin/vip demo --reset "$@"
