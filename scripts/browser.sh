#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests, when it is missing.
#
# Usage: scripts/browser.sh
#
# The tests drive /usr/bin/chromium with Playwright and never download a
# browser build of their own. Installing needs root, like scripts/services.sh.
# A font package comes along so that pages render text on a minimal system.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
PROJECT_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
LOG_DIR=$PROJECT_ROOT/.services/logs
APT_LOG=$LOG_DIR/apt.log
CHROMIUM=/usr/bin/chromium
PACKAGES=(chromium fonts-dejavu-core)

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

if [[ -x $CHROMIUM ]]; then
    exit 0
fi
if ((EUID != 0)); then
    die "$CHROMIUM is missing. Install it with 'apt-get install ${PACKAGES[*]}' as root, or run this script as root."
fi

mkdir -p "$LOG_DIR"
printf 'apt-get install %s (output in %s)\n' "${PACKAGES[*]}" "$APT_LOG"
# A fresh machine may have no package lists yet. The lock timeout lets this
# wait for a concurrent install (scripts/services.sh) instead of failing.
if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update \
    </dev/null >>"$APT_LOG" 2>&1; then
    tail -n 40 -- "$APT_LOG" >&2
    die "apt-get update failed."
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
    --no-install-recommends "${PACKAGES[@]}" </dev/null >>"$APT_LOG" 2>&1; then
    tail -n 40 -- "$APT_LOG" >&2
    die "apt-get install ${PACKAGES[*]} failed."
fi
[[ -x $CHROMIUM ]] || die "apt-get installed ${PACKAGES[*]}, but $CHROMIUM is still missing."
printf 'chromium: installed %s\n' "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
