#!/usr/bin/env bash
#
# traefik.sh: installs Traefik (release tarball from GitHub) as
# /usr/local/bin/traefik, writes its static configuration
# /etc/traefik/traefik.yml (entryPoints web :80 / websecure :443, file provider
# /etc/traefik/dynamic with watch, ACME certificate resolver "internal" against
# the internal Step-CA) and runs it as traefik.service.
#
# The ACME client (lego) trusts the internal CA through LEGO_CA_CERTIFICATES,
# set in the unit to the system CA bundle (/etc/ssl/certs/ca-certificates.crt),
# which the trusted_ca feature extends with the internal root.
#
# Idempotent: the binary is downloaded only when TRAEFIK_VERSION is not the
# installed version; config and unit are rewritten only when their content
# differs; Traefik is restarted only when binary, config or unit changed.
# /etc/traefik/acme.json (the resolver's storage) is created once and never reset.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   CA_URL=https://10.0.0.10:9000 bash features/traefik.sh
#   { cat features/lib/common.sh; echo; cat features/traefik.sh; } | pct exec 102 -- env CA_URL=https://10.0.0.10:9000 bash -s
#
# Parameters (environment variables):
# @param CA_URL required format=https-url URL of the internal Step-CA, e.g. https://10.0.0.10:9000
# @param TRAEFIK_VERSION default=v3.3.4 format=release-tag Traefik release to install (tag of github.com/traefik/traefik)
# @param TRAEFIK_SHA256 optional format=sha256 Expected SHA-256 of the release tarball (verification is skipped with a warning when unset)
# @param ACME_EMAIL optional format=email E-mail of the ACME account (default: admin@<hostname>)
# @listens 80 http web entry point: ACME http-01 challenges, forwarded by the gateway
# @listens 443 https websecure entry point: every route, with certificates from the internal CA
# @ca http-01 ACME client for every route's host: the CA validates on port 80 where the names resolve (the gateway, which forwards to the web entry point; without one, this guest)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="traefik.sh"
readonly TRAEFIK_BIN="/usr/local/bin/traefik"
readonly CONF_DIR="/etc/traefik"
readonly DYNAMIC_DIR="/etc/traefik/dynamic"
readonly ACME_STORAGE="/etc/traefik/acme.json"
readonly CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
readonly UNIT_FILE="${PHOENIX_ROOT:-}/etc/systemd/system/traefik.service"

CHANGED=0

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  require_params CA_URL
  check_format CA_URL https-url
  CA_URL=${CA_URL%/}
  TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.3.4}
  check_format TRAEFIK_VERSION release-tag
  TRAEFIK_SHA256=${TRAEFIK_SHA256:-}
  check_format TRAEFIK_SHA256 sha256
  TRAEFIK_SHA256=${TRAEFIK_SHA256,,}
  if [[ -z "${ACME_EMAIL:-}" ]]; then
    local host=${PHOENIX_HOSTNAME:-}
    if [[ -z "${host}" ]]; then
      host=$(hostname)
    fi
    ACME_EMAIL="admin@${host}"
  fi
  check_format ACME_EMAIL email
}

installed_version() {
  local bin="${PHOENIX_ROOT:-}${TRAEFIK_BIN}"
  [[ -x "${bin}" ]] || return 0
  "${bin}" version 2>/dev/null | awk '$1 == "Version:" { print $2; exit }' || true
}

install_binary() {
  local current
  current=$(installed_version)
  if [[ "${current#v}" == "${TRAEFIK_VERSION#v}" ]]; then
    info "traefik ${TRAEFIK_VERSION} already installed, skipping download"
    return 0
  fi
  info "installing traefik ${TRAEFIK_VERSION} (installed: ${current:-none})"
  local arch url tarball
  arch=$(dpkg --print-architecture)
  case "${arch}" in
    amd64 | arm64 | s390x | riscv64) ;;
    ppc64el) arch=ppc64le ;;
    armhf) arch=armv7 ;;
    *) fatal "unsupported architecture ${arch} for the Traefik release tarballs" ;;
  esac
  url="https://github.com/traefik/traefik/releases/download/${TRAEFIK_VERSION}/traefik_${TRAEFIK_VERSION}_linux_${arch}.tar.gz"
  TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
  tarball="${TMP_DIR}/traefik.tar.gz"
  curl -fsSL --retry 3 --connect-timeout 15 --max-time 300 -o "${tarball}" "${url}" || fatal "download of ${url} failed"
  if [[ -n "${TRAEFIK_SHA256}" ]]; then
    local actual
    actual=$(sha256sum "${tarball}" | cut -d' ' -f1)
    [[ "${actual}" == "${TRAEFIK_SHA256}" ]] || fatal "checksum mismatch for ${url}: got ${actual}, expected TRAEFIK_SHA256=${TRAEFIK_SHA256}"
    info "tarball checksum verified"
  else
    warn "TRAEFIK_SHA256 not set, skipping checksum verification of ${url}"
  fi
  tar -xzf "${tarball}" -C "${TMP_DIR}" traefik || fatal "could not extract traefik from ${url}"
  [[ -f "${TMP_DIR}/traefik" ]] || fatal "the tarball ${url} has no traefik binary"
  mkdir -p "${PHOENIX_ROOT:-}$(dirname "${TRAEFIK_BIN}")"
  install -m 755 "${TMP_DIR}/traefik" "${PHOENIX_ROOT:-}${TRAEFIK_BIN}.phoenix"
  mv -f "${PHOENIX_ROOT:-}${TRAEFIK_BIN}.phoenix" "${PHOENIX_ROOT:-}${TRAEFIK_BIN}"
  CHANGED=1
}

ensure_dirs_and_storage() {
  local dir
  for dir in "${CONF_DIR}" "${DYNAMIC_DIR}"; do
    if [[ ! -d "${PHOENIX_ROOT:-}${dir}" ]]; then
      install -d -m 755 "${PHOENIX_ROOT:-}${dir}"
      info "created ${dir}"
    fi
  done
  local storage="${PHOENIX_ROOT:-}${ACME_STORAGE}"
  if [[ ! -e "${storage}" ]]; then
    (
      umask 077
      : >"${storage}"
    )
    info "created ${ACME_STORAGE} (600)"
  elif [[ "$(stat -c %a "${storage}")" != 600 ]]; then
    chmod 600 "${storage}"
    info "set mode 600 on ${ACME_STORAGE} (Traefik refuses other modes)"
  fi
}

write_static_config() {
  write_file "${PHOENIX_ROOT:-}${CONF_DIR}/traefik.yml" 644 <<YAML
# Managed by Phoenix (features/traefik.sh); local edits are overwritten.
# Routes live in ${DYNAMIC_DIR} (file provider, watched).
entryPoints:
  web:
    address: ":80"
  websecure:
    address: ":443"

providers:
  file:
    directory: ${DYNAMIC_DIR}
    watch: true

certificatesResolvers:
  internal:
    acme:
      caServer: "${CA_URL}/acme/acme/directory"
      email: "${ACME_EMAIL}"
      storage: ${ACME_STORAGE}
      httpChallenge:
        entryPoint: web

api:
  dashboard: true

log:
  level: INFO
YAML
  if ((FILE_CHANGED)); then
    info "wrote ${CONF_DIR}/traefik.yml"
    CHANGED=1
  else
    info "${CONF_DIR}/traefik.yml unchanged, skipping"
  fi
}

write_unit() {
  mkdir -p "$(dirname "${UNIT_FILE}")"
  write_file "${UNIT_FILE}" 644 <<UNIT
# Managed by Phoenix (features/traefik.sh); local edits are overwritten.
[Unit]
Description=Traefik reverse proxy (Phoenix)
Documentation=https://doc.traefik.io/traefik/
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# lego (Traefik's ACME client) trusts the system bundle, which includes the internal root CA.
Environment=LEGO_CA_CERTIFICATES=${CA_BUNDLE}
ExecStart=${TRAEFIK_BIN} --configFile=${CONF_DIR}/traefik.yml
Restart=on-failure
RestartSec=5
LimitNOFILE=1048576
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
UNIT
  if ((FILE_CHANGED)); then
    info "wrote ${UNIT_FILE}"
    systemctl daemon-reload || fatal "systemctl daemon-reload failed"
    CHANGED=1
  else
    info "traefik.service unit unchanged, skipping"
  fi
}

ensure_service() {
  enable_unit traefik.service
  refresh_unit traefik.service "${CHANGED}" restart "restarting traefik.service (binary, configuration or unit changed)" \
    "traefik.service already running with the current configuration, skipping restart"
}

main() {
  load_params
  if [[ ! -f "${PHOENIX_ROOT:-}${CA_BUNDLE}" ]]; then
    warn "${CA_BUNDLE} not found: apply the trusted_ca feature so that ACME against ${CA_URL} is trusted"
  fi
  install_binary
  ensure_dirs_and_storage
  write_static_config
  write_unit
  ensure_service
}

main "$@"
