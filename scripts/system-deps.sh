# shellcheck shell=bash
# The Debian packages the tests need beyond Python: postgresql-15 (the suite starts its own
# throwaway clusters) and chromium (the console's browser test; never a downloaded build).
# Sourced by scripts/test.sh and .ci/run; run it as root to install them by hand:
#
#   sudo bash scripts/system-deps.sh
#
# vip_system_deps installs what is missing with apt-get, as root or through `sudo -n`. When it
# cannot (no root, no password-less sudo, no apt-get) it prints one line naming the command to
# run and returns 1; with VIP_TESTS_ALLOW_SKIP=1 it returns 0 instead (the tests that need the
# missing packages are then skipped).

VIP_PG_BIN_DIR="${VIP_PG_BIN:-/usr/lib/postgresql/15/bin}"
VIP_CHROMIUM_BIN="${VIP_CHROMIUM:-/usr/bin/chromium}"
VIP_DEPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Which of the packages named (default: all) are missing here, one per line.
vip_missing_packages() {
    local pkg
    [ "$#" -gt 0 ] || set -- postgresql-15 chromium python3-venv
    for pkg in "$@"; do
        case "$pkg" in
            postgresql-15) [ -x "$VIP_PG_BIN_DIR/initdb" ] || echo postgresql-15 ;;
            chromium) [ -x "$VIP_CHROMIUM_BIN" ] || echo chromium ;;
            # Only to make .venv: Debian splits venv/ensurepip out of python3.
            python3-venv)
                if [ ! -x "$VIP_DEPS_ROOT/.venv/bin/python" ]; then
                    if ! command -v python3 >/dev/null 2>&1; then
                        echo python3; echo python3-venv
                    elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
                        echo python3-venv
                    fi
                fi ;;
        esac
    done
}

# vip_system_deps [package...]: install those of the packages named (default: all) that are missing.
vip_system_deps() {
    local pkgs sudo=() wanted=("$@")
    mapfile -t pkgs < <(vip_missing_packages "${wanted[@]}")
    [ "${#pkgs[@]}" -eq 0 ] && return 0

    local can_install=1
    if ! command -v apt-get >/dev/null 2>&1; then
        can_install=0
    elif [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            can_install=0
        fi
    fi
    if [ "$can_install" -eq 0 ]; then
        if [ "${VIP_TESTS_ALLOW_SKIP:-}" = 1 ]; then
            echo "system-deps: missing ${pkgs[*]}; VIP_TESTS_ALLOW_SKIP=1, so the tests that need them are skipped" >&2
            return 0
        fi
        if command -v apt-get >/dev/null 2>&1; then
            echo "system-deps: missing ${pkgs[*]}, which this user cannot apt-get install: run \`sudo bash scripts/system-deps.sh\` (or set VIP_TESTS_ALLOW_SKIP=1 to skip the tests that need them)" >&2
        else
            echo "system-deps: missing ${pkgs[*]} and no apt-get here: install them (initdb in $VIP_PG_BIN_DIR, chromium at $VIP_CHROMIUM_BIN; VIP_PG_BIN and VIP_CHROMIUM point elsewhere), or set VIP_TESTS_ALLOW_SKIP=1 to skip the tests that need them" >&2
        fi
        return 1
    fi

    echo "system-deps: installing ${pkgs[*]}" >&2
    if [[ " ${pkgs[*]} " == *" postgresql-15 "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        # Tests start their own throwaway clusters; skip Debian's default 'main' cluster.
        "${sudo[@]}" mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || return 1

    mapfile -t pkgs < <(vip_missing_packages "${wanted[@]}")
    if [ "${#pkgs[@]}" -gt 0 ]; then
        echo "system-deps: ${pkgs[*]} still missing after apt-get install" >&2
        return 1
    fi
}

# Run directly (`sudo bash scripts/system-deps.sh`): install, nothing else.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    VIP_TESTS_ALLOW_SKIP= vip_system_deps
fi
