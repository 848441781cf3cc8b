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
# Run it by hand as root:
#   DOCKER_USER=ops bash features/docker.sh
#   ... | qm guest exec ... / ssh root@vm bash -s
#
# Parameters (environment variables):
# @param DOCKER_USER optional Existing user to add to the docker group
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

load_params() {
  DOCKER_USER=${DOCKER_USER:-}
  if [[ -n "${DOCKER_USER}" && ! "${DOCKER_USER}" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
    fatal "DOCKER_USER '${DOCKER_USER}' is not a valid user name"
  fi
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

  local -a missing=()
  local pkg
  for pkg in ca-certificates curl; do
    pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi

  local key="${PHOENIX_ROOT:-}${DOCKER_KEY}" tmp
  if [[ -s "${key}" ]]; then
    info "Docker apt key already present, skipping"
  else
    install -d -m 755 "$(dirname "${key}")"
    info "downloading Docker's apt key"
    tmp=$(mktemp "${key}.phoenix.XXXXXX")
    if ! curl -fsSL --retry 3 --connect-timeout 15 --max-time 120 -o "${tmp}" "https://download.docker.com/linux/${distro}/gpg"; then
      rm -f "${tmp}"
      fatal "download of https://download.docker.com/linux/${distro}/gpg failed"
    fi
    chmod 644 "${tmp}"
    mv -f "${tmp}" "${key}"
    APT_UPDATED=0
  fi

  mkdir -p "$(dirname "${DOCKER_LIST}")"
  write_file "${DOCKER_LIST}" 644 <<<"deb [arch=${arch} signed-by=${DOCKER_KEY}] https://download.docker.com/linux/${distro} ${codename} stable"
  if ((FILE_CHANGED)); then
    info "wrote ${DOCKER_LIST}"
    APT_UPDATED=0
  else
    info "Docker apt repository already configured, skipping"
  fi
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
  if systemctl is-enabled --quiet docker.service; then
    info "docker.service already enabled, skipping"
  else
    systemctl enable docker.service || fatal "systemctl enable docker.service failed"
  fi
  if systemctl is-active --quiet docker.service; then
    info "docker.service already running, skipping"
  else
    systemctl start docker.service || fatal "systemctl start docker.service failed (see journalctl -u docker)"
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
