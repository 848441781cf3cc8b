#!/usr/bin/env bash
#
# step_cli.sh: installs the smallstep CLI (`step`) from Smallstep's apt
# repository (signing key in /etc/apt/keyrings/smallstep.asc, repository in
# /etc/apt/sources.list.d/smallstep.list).
#
# Idempotent: exits early with "step-cli already installed, skipping" when `step`
# is on PATH; the key and the list file are only written when missing/different.
#
# Run it by hand as root:
#   bash features/step_cli.sh
#   bash -s < features/step_cli.sh   |   ... | pct exec 101 -- bash -s
#
# This feature has no parameters.
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="step_cli.sh"
readonly KEYRINGS_DIR="${PHOENIX_ROOT:-}/etc/apt/keyrings"
readonly SMALLSTEP_KEY_URL="https://packages.smallstep.com/keys/apt/repo-signing-key.gpg"
readonly SMALLSTEP_KEY="/etc/apt/keyrings/smallstep.asc"
readonly SMALLSTEP_LIST="${PHOENIX_ROOT:-}/etc/apt/sources.list.d/smallstep.list"
readonly SMALLSTEP_REPO="https://packages.smallstep.com/stable/debian"

APT_UPDATED=0

info() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
fatal() {
  printf '%s: ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

on_error() {
  local code=$?
  printf "%s: line %s: '%s' failed (exit %s)\n" "${SCRIPT_NAME}" "$1" "$2" "${code}" >&2
  exit "${code}"
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

#######################################
# Writes stdin to DEST (mode MODE) through a temp file + mv, only if the content
# differs. Globals: FILE_CHANGED (set to 1 when DEST was created or rewritten).
#######################################
write_file() {
  local dest=$1 mode=$2 tmp
  FILE_CHANGED=0
  tmp=$(mktemp "${dest}.phoenix.XXXXXX")
  cat >"${tmp}"
  chmod "${mode}" "${tmp}"
  if [[ -f "${dest}" && ! -L "${dest}" ]] && cmp -s "${tmp}" "${dest}"; then
    rm -f "${tmp}"
    if [[ "$(stat -c %a "${dest}")" != "${mode}" ]]; then
      chmod "${mode}" "${dest}"
      info "fixed mode of ${dest} to ${mode}"
    fi
    return 0
  fi
  mv -f "${tmp}" "${dest}"
  FILE_CHANGED=1
}

pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ "${status}" == "install ok installed" ]]
}

apt_update() {
  ((APT_UPDATED)) && return 0
  info "apt-get update"
  if ! apt-get -q -o DPkg::Lock::Timeout=300 update; then
    fatal "apt-get update failed (network or apt sources problem)"
  fi
  APT_UPDATED=1
}

apt_install() {
  apt_update
  info "installing: $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 \
    install --no-install-recommends "$@"; then
    fatal "apt-get install failed for: $*"
  fi
}

# Downloads URL to DEST (mode 644) unless DEST already exists.
fetch_key() {
  local url=$1 dest=$2 tmp
  if [[ -s "${dest}" ]]; then
    info "apt signing key ${dest} already present, skipping"
    return 0
  fi
  info "downloading apt signing key ${url}"
  tmp=$(mktemp "${dest}.phoenix.XXXXXX")
  if ! curl -fsSL --retry 3 --connect-timeout 15 --max-time 120 -o "${tmp}" "${url}"; then
    rm -f "${tmp}"
    fatal "download of ${url} failed"
  fi
  [[ -s "${tmp}" ]] || fatal "download of ${url} returned an empty file"
  chmod 644 "${tmp}"
  mv -f "${tmp}" "${dest}"
  APT_UPDATED=0
}

ensure_smallstep_repo() {
  local -a prereqs=() missing=()
  local pkg
  prereqs=(ca-certificates curl)
  for pkg in "${prereqs[@]}"; do
    pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi

  if [[ ! -d "${KEYRINGS_DIR}" ]]; then
    install -d -m 755 "${KEYRINGS_DIR}"
  fi
  fetch_key "${SMALLSTEP_KEY_URL}" "${PHOENIX_ROOT:-}${SMALLSTEP_KEY}"
  mkdir -p "$(dirname "${SMALLSTEP_LIST}")"
  write_file "${SMALLSTEP_LIST}" 644 <<<"deb [signed-by=${SMALLSTEP_KEY}] ${SMALLSTEP_REPO} debs main"
  if ((FILE_CHANGED)); then
    info "wrote ${SMALLSTEP_LIST}"
    APT_UPDATED=0
  else
    info "smallstep apt repository already configured, skipping"
  fi
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
