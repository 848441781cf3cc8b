#!/usr/bin/env bash
#
# docker.sh: installs Docker Engine and the compose/buildx plugins from Docker's
# apt repository (key /etc/apt/keyrings/docker.asc, /etc/apt/sources.list.d/docker.list),
# enables docker.service and optionally adds DOCKER_USER to the docker group.
#
# The Docker API is never exposed on TCP. If /etc/docker/daemon.json or a
# docker.service drop-in configures a tcp:// host, the script FAILS and names the
# file (it does not rewrite it: an operator wrote it on purpose, and silently
# changing daemon configuration would hide that). Remove the tcp:// host and
# re-run. The script itself never writes daemon.json.
#
# Idempotent: the key, the list file, the packages, the service state and the
# group membership are each checked first and only changed when missing.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   DOCKER_USER=ops bash features/docker.sh
#   { cat features/lib/common.sh; echo; cat features/docker.sh; } | ssh root@vm env DOCKER_USER=ops bash -s
#
# Parameters (environment variables):
# @param DOCKER_USER optional format=user-name Existing user to add to the docker group
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="docker.sh"
readonly DOCKER_KEY="/etc/apt/keyrings/docker.asc"
readonly DOCKER_LIST="${PHOENIX_ROOT:-}/etc/apt/sources.list.d/docker.list"
readonly DAEMON_JSON="${PHOENIX_ROOT:-}/etc/docker/daemon.json"
readonly DROPIN_DIR="${PHOENIX_ROOT:-}/etc/systemd/system/docker.service.d"
readonly OS_RELEASE="${PHOENIX_ROOT:-}/etc/os-release"
readonly DOCKER_PACKAGES=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)
readonly CONFLICTING_PACKAGES=(docker.io docker-compose docker-doc podman-docker containerd runc)

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  DOCKER_USER=${DOCKER_USER:-}
  check_format DOCKER_USER user-name
}

# Refuses any configuration that makes dockerd listen on TCP.
check_no_tcp_listener() {
  if [[ -f "${DAEMON_JSON}" ]] && grep -q 'tcp://' "${DAEMON_JSON}"; then
    fatal "${DAEMON_JSON} configures a tcp:// host; Phoenix never exposes the Docker API on TCP. Remove the tcp:// entry from \"hosts\" and re-run"
  fi
  local dropin
  for dropin in "${DROPIN_DIR}"/*.conf; do
    [[ -f "${dropin}" ]] || continue
    if grep -q 'tcp://' "${dropin}"; then
      fatal "${dropin} starts dockerd with a tcp:// host; Phoenix never exposes the Docker API on TCP. Remove it and re-run"
    fi
  done
  info "no TCP listener configured for dockerd"
}

os_release_value() {
  sed -n "s/^$1=//p" "${OS_RELEASE}" | tr -d "\"'" | head -n 1
}

ensure_docker_repo() {
  [[ -f "${OS_RELEASE}" ]] || fatal "${OS_RELEASE} not found; cannot determine the distribution"
  local distro codename arch
  distro=$(os_release_value ID)
  codename=$(os_release_value UBUNTU_CODENAME)
  if [[ -z "${codename}" ]]; then
    codename=$(os_release_value VERSION_CODENAME)
  fi
  case "${distro}" in
    debian | ubuntu) ;;
    *) fatal "unsupported distribution '${distro}' (Docker's apt repository serves debian and ubuntu)" ;;
  esac
  [[ -n "${codename}" ]] || fatal "no VERSION_CODENAME in ${OS_RELEASE}"
  arch=$(dpkg --print-architecture)

  apt_install_missing ca-certificates curl
  fetch_key "https://download.docker.com/linux/${distro}/gpg" "${PHOENIX_ROOT:-}${DOCKER_KEY}" "Docker apt key"
  write_apt_source "${DOCKER_LIST}" "deb [arch=${arch} signed-by=${DOCKER_KEY}] https://download.docker.com/linux/${distro} ${codename} stable" \
    "Docker apt repository"
}

install_docker() {
  local -a missing=() conflicts=()
  local pkg
  for pkg in "${DOCKER_PACKAGES[@]}"; do
    pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} == 0)); then
    info "Docker packages already installed, skipping"
    return 0
  fi
  for pkg in "${CONFLICTING_PACKAGES[@]}"; do
    if pkg_installed "${pkg}"; then
      conflicts+=("${pkg}")
    fi
  done
  if ((${#conflicts[@]} > 0)); then
    fatal "conflicting distribution packages installed: ${conflicts[*]}; remove them (apt-get remove ${conflicts[*]}) and re-run"
  fi
  apt_install "${missing[@]}"
}

ensure_service() {
  enable_unit docker.service
  if systemctl is-active --quiet docker.service; then
    info "docker.service already running, skipping"
  else
    start_unit docker.service
  fi
}

ensure_docker_user() {
  if [[ -z "${DOCKER_USER}" ]]; then
    return 0
  fi
  id "${DOCKER_USER}" >/dev/null 2>&1 || fatal "DOCKER_USER '${DOCKER_USER}' does not exist"
  local groups
  groups=" $(id -nG "${DOCKER_USER}") "
  if [[ "${groups}" == *" docker "* ]]; then
    info "${DOCKER_USER} already in group docker, skipping"
    return 0
  fi
  info "adding ${DOCKER_USER} to group docker"
  usermod -aG docker "${DOCKER_USER}" || fatal "usermod -aG docker ${DOCKER_USER} failed"
}

main() {
  load_params
  check_no_tcp_listener
  ensure_docker_repo
  install_docker
  ensure_service
  ensure_docker_user
  info "done"
}

main "$@"
