#!/usr/bin/env bash
#
# step_cli.sh: installs the smallstep CLI (`step`) from Smallstep's apt
# repository (signing key in /etc/apt/keyrings/smallstep.asc, repository in
# /etc/apt/sources.list.d/smallstep.list).
#
# Idempotent: exits early with "step-cli already installed, skipping" when `step`
# is on PATH; the key and the list file are only written when missing/different.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   bash features/step_cli.sh
#   { cat features/lib/common.sh; echo; cat features/step_cli.sh; } | pct exec 101 -- bash -s
#
# This feature has no parameters.
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="step_cli.sh"
readonly SMALLSTEP_KEY_URL="https://packages.smallstep.com/keys/apt/repo-signing-key.gpg"
readonly SMALLSTEP_KEY="/etc/apt/keyrings/smallstep.asc"
readonly SMALLSTEP_LIST="${PHOENIX_ROOT:-}/etc/apt/sources.list.d/smallstep.list"
readonly SMALLSTEP_REPO="https://packages.smallstep.com/stable/debian"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

ensure_smallstep_repo() {
  apt_install_missing ca-certificates curl
  fetch_key "${SMALLSTEP_KEY_URL}" "${PHOENIX_ROOT:-}${SMALLSTEP_KEY}" "apt signing key ${PHOENIX_ROOT:-}${SMALLSTEP_KEY}"
  write_apt_source "${SMALLSTEP_LIST}" "deb [signed-by=${SMALLSTEP_KEY}] ${SMALLSTEP_REPO} debs main" "smallstep apt repository"
}

main() {
  if command -v step >/dev/null 2>&1; then
    info "step-cli already installed ($(command -v step)), skipping"
    return 0
  fi
  ensure_smallstep_repo
  apt_install step-cli
  command -v step >/dev/null 2>&1 || fatal "step-cli was installed but 'step' is not on PATH"
  info "step-cli installed"
}

main "$@"
