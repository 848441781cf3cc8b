#!/usr/bin/env bash
#
# portainer.sh (application of the Portainer guest, 1001): runs the Portainer CE
# server (PORTAINER_IMAGE, pinned) as the Docker container "portainer", on :9443
# only (plain HTTP off), with a certificate from the internal CA for
# GUEST_ADDRESS: the address Traefik connects to, and verifies against the
# internal root (its internal-ca transport). The certificate is issued by ACME
# http-01 (an IP identifier; step answers the CA on :80 while it is issued),
# kept in CERT_DIR and renewed by phoenix-portainer-cert.timer (step ca renew,
# then docker restart portainer: Portainer reads it at start). Portainer's
# database lives in DATA_DIR and survives a re-created container.
#
# Idempotent: the container is created or re-created only when its
# configuration (image, flags, mounts: a hash in its phoenix.config label)
# differs, restarted only when its certificate was renewed; the certificate is
# requested only when missing, for another address, or due for renewal.
#
# Needs: the docker, trusted_ca (CA_ROOT_FILE) and step_cli (step) features.
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   CA_URL=https://10.0.0.10:9000 GUEST_ADDRESS=10.0.0.111 bash features/apps/portainer.sh
#   { cat features/lib/common.sh; echo; cat features/apps/portainer.sh; } | ssh vm sudo env CA_URL=... bash -s
#
# Parameters (environment variables):
# @param CA_URL required format=https-url URL of the internal CA (Phoenix derives it from the CA the guest trusts)
# @param GUEST_ADDRESS required format=ip-address This guest's address, the certificate's subject (Phoenix derives it)
# @param CA_ROOT_FILE default=/usr/local/share/ca-certificates/phoenix_root_ca.crt format=absolute-path The internal root (installed by trusted_ca)
# @param PORTAINER_IMAGE default=portainer/portainer-ce:2.21.5 format=image Portainer server image (pin a version: a tag such as latest changes under you)
# @param DATA_DIR default=/var/lib/portainer format=absolute-path Portainer's database (host directory mounted at /data)
# @param CERT_DIR default=/etc/portainer/certs format=absolute-path Directory of Portainer's certificate and key (mounted read-only at /certs)
# @secret PORTAINER_ADMIN_PASSWORD optional Initial admin password (without it Portainer asks for one in its UI, for 5 minutes after its first start)
# @listens 9443 https Portainer's UI and API, with a certificate from the internal CA
# @ca http-01 Portainer's certificate, by ACME; the CA validates on this guest's port 80
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="portainer.sh"
readonly CONTAINER="portainer"
readonly ADMIN_PASSWORD_FILE="/etc/portainer/admin_password"
readonly RENEW_UNIT="phoenix-portainer-cert"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

load_params() {
  require_params CA_URL GUEST_ADDRESS
  check_format CA_URL https-url
  CA_URL=${CA_URL%/}
  check_format GUEST_ADDRESS ip-address
  CA_ROOT_FILE=${CA_ROOT_FILE:-/usr/local/share/ca-certificates/phoenix_root_ca.crt}
  PORTAINER_IMAGE=${PORTAINER_IMAGE:-portainer/portainer-ce:2.21.5}
  DATA_DIR=${DATA_DIR:-/var/lib/portainer}
  CERT_DIR=${CERT_DIR:-/etc/portainer/certs}
  check_format PORTAINER_IMAGE image
  local p
  for p in CA_ROOT_FILE DATA_DIR CERT_DIR; do
    check_format "${p}" absolute-path
  done
  if [[ -n "${PORTAINER_ADMIN_PASSWORD_FILE:-}" ]]; then
    [[ -s "${PORTAINER_ADMIN_PASSWORD_FILE}" ]] || fatal "PORTAINER_ADMIN_PASSWORD_FILE: ${PORTAINER_ADMIN_PASSWORD_FILE} is not a readable, non-empty file"
  fi
}

check_prerequisites() {
  command -v docker >/dev/null 2>&1 || fatal "'docker' not found: apply the docker feature first"
  command -v step >/dev/null 2>&1 || fatal "'step' not found: apply the step_cli feature first (it requests Portainer's certificate)"
  [[ -s "${PHOENIX_ROOT:-}${CA_ROOT_FILE}" ]] || fatal "${CA_ROOT_FILE} not found: apply the trusted_ca feature first"
}

# The admin password, when given, goes to a root-only file mounted into the container (read at its first start).
ensure_admin_password() {
  [[ -n "${PORTAINER_ADMIN_PASSWORD_FILE:-}" ]] || return 0
  install -d -m 700 "${PHOENIX_ROOT:-}$(dirname "${ADMIN_PASSWORD_FILE}")"
  write_file "${PHOENIX_ROOT:-}${ADMIN_PASSWORD_FILE}" 600 <"${PORTAINER_ADMIN_PASSWORD_FILE}"
  if ((FILE_CHANGED)); then
    info "installed the initial admin password (${ADMIN_PASSWORD_FILE}, 600; Portainer reads it only when it has no admin yet)"
  else
    info "initial admin password already in place, skipping"
  fi
}

# The `docker run` arguments after the label, one per line; their hash is the container's phoenix.config label.
run_args() {
  printf '%s\n' --restart=always -p 9443:9443 \
    -v /var/run/docker.sock:/var/run/docker.sock -v "${DATA_DIR}:/data" -v "${CERT_DIR}:/certs:ro"
  if [[ -n "${PORTAINER_ADMIN_PASSWORD_FILE:-}" ]]; then
    printf '%s\n' -v "${ADMIN_PASSWORD_FILE}:/run/secrets/portainer_admin_password:ro"
  fi
  printf '%s\n' "${PORTAINER_IMAGE}" --sslcert /certs/portainer.crt --sslkey /certs/portainer.key --http-disabled
  if [[ -n "${PORTAINER_ADMIN_PASSWORD_FILE:-}" ]]; then
    printf '%s\n' --admin-password-file /run/secrets/portainer_admin_password
  fi
}

ensure_container() {
  local -a args=()
  mapfile -t args < <(run_args)
  local want current
  want=$(run_args | sha256sum | cut -d' ' -f1)
  current=$(docker inspect --format '{{index .Config.Labels "phoenix.config"}}' "${CONTAINER}" 2>/dev/null) || current=""
  if [[ "${current}" == "${want}" ]]; then
    if ((CERT_CHANGED)); then
      info "restarting ${CONTAINER} (new certificate)"
      docker restart "${CONTAINER}" >/dev/null || fatal "docker restart ${CONTAINER} failed"
    else
      info "container ${CONTAINER} already runs this configuration, skipping"
    fi
    return 0
  fi
  if [[ -n "${current}" ]] || docker inspect "${CONTAINER}" >/dev/null 2>&1; then
    info "re-creating ${CONTAINER} (configuration changed; its data stays in ${DATA_DIR})"
    docker rm -f "${CONTAINER}" >/dev/null || fatal "docker rm -f ${CONTAINER} failed"
  else
    info "creating ${CONTAINER} (${PORTAINER_IMAGE})"
  fi
  docker run -d --name "${CONTAINER}" --label "phoenix.config=${want}" "${args[@]}" >/dev/null ||
    fatal "docker run ${PORTAINER_IMAGE} failed (see docker logs ${CONTAINER})"
}

main() {
  load_params
  check_prerequisites
  local dir
  for dir in "${DATA_DIR}" "${CERT_DIR}"; do
    if [[ ! -d "${PHOENIX_ROOT:-}${dir}" ]]; then
      install -d -m 700 "${PHOENIX_ROOT:-}${dir}"
    fi
  done
  ensure_admin_password
  acme_certificate "${PHOENIX_ROOT:-}${CERT_DIR}/portainer.crt" "${PHOENIX_ROOT:-}${CERT_DIR}/portainer.key" --standalone "${GUEST_ADDRESS}"
  ensure_container
  install_cert_renewal "${RENEW_UNIT}" "${CERT_DIR}/portainer.crt" "${CERT_DIR}/portainer.key" "/usr/bin/docker restart ${CONTAINER}"
}

main "$@"
