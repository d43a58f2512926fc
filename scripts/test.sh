#!/usr/bin/env bash
# Run the test suite: bash scripts/test.sh [pytest args...]
#
#   bash scripts/test.sh          # everything: both tiers (tests/tiers.py)
#   bash scripts/test.sh -m unit  # the fast tier, under a minute; needs no PostgreSQL or Chromium
#
# Installs postgresql-15 and chromium when missing (scripts/system-deps.sh: as root or through
# sudo -n); when it cannot, it fails naming the command to run, unless VIP_TESTS_ALLOW_SKIP=1
# (their tests are then skipped).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/system-deps.sh"

fast_tier_only() {
    local previous=""
    for arg in "$@"; do
        [ "$arg" = -munit ] && return 0
        [ "$previous" = -m ] && [ "$arg" = unit ] && return 0
        previous="$arg"
    done
    return 1
}

if fast_tier_only "$@"; then
    vip_system_deps python3-venv || exit 1
else
    vip_system_deps || exit 1
fi
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec .venv/bin/python -m pytest -q "$@"
