#!/usr/bin/env bash
#
# step_ca.sh: installs step-ca (and step-cli if missing) from Smallstep's apt
# repository, initialises a standalone Step-CA once, installs and starts the
# step-ca systemd unit, then exports the root certificate.
#
# Idempotent: packages, the apt repository, the CA (config/ca.json present =
# initialised, never re-initialised), the ACME provisioner and the unit are only
# created/changed when missing or different; step-ca is restarted only when its
# unit, CA configuration or password file changed. The unit is written, enabled
# and started only after the CA exists.
#
# Output contract: STDOUT carries data only, exactly
#   <root certificate PEM, STEPPATH/certs/root_ca.crt>
#   PHOENIX_CA_FINGERPRINT=<sha256 hex of the root, as `step certificate fingerprint`>
# Every log message (and the output of apt-get, step, systemctl) goes to STDERR.
#
# Secrets are only ever passed as file paths (never in argv, never logged). The
# CA password is copied to STEPPATH/secrets/password (mode 600) because the
# service needs it to start; the provisioner password is only read by
# `step ca init`. STEPPATH is owned by root with mode 700.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   CA_NAME="Phoenix Internal CA" CA_DNS_NAMES=ca.internal,10.0.0.10 CA_PROVISIONER=admin@phoenix \
#   CA_PASSWORD_FILE=/root/ca.pw CA_PROVISIONER_PASSWORD_FILE=/root/prov.pw bash features/step_ca.sh
#   { cat features/lib/common.sh; echo; cat features/step_ca.sh; } | pct exec 103 -- env CA_NAME=... bash -s
#
# Parameters (environment variables):
# @param CA_NAME required format=text Name of the CA (used for the root and intermediate certificate subjects)
# @param CA_DNS_NAMES required format=dns-names Comma-separated DNS names/IPs of the CA (127.0.0.1 is always added for the local health check)
# @param CA_ADDRESS default=:9000 format=listen-address Listen address of step-ca ([host]:port)
# @param CA_PROVISIONER required format=text Name of the JWK provisioner created by the initialisation, e.g. admin@example.com
# @param CA_ACME default=true format=bool true|false: add an ACME provisioner named "acme" if missing
# @param STEPPATH default=/etc/step-ca format=absolute-path Directory of the CA (config, certs, secrets, db), root-owned, mode 700
# @listens CA_ADDRESS https step-ca: the CA's API and ACME directory (its certificate is signed by the CA itself)
# @secret CA_PASSWORD required Password of the CA keys (the caller passes it as a root-only file whose path is in CA_PASSWORD_FILE)
# @secret CA_PROVISIONER_PASSWORD required Password of the JWK provisioner key (root-only file whose path is in CA_PROVISIONER_PASSWORD_FILE; read only by the initialisation)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="step_ca.sh"
readonly SMALLSTEP_KEY_URL="https://packages.smallstep.com/keys/apt/repo-signing-key.gpg"
readonly SMALLSTEP_KEY="/etc/apt/keyrings/smallstep.asc"
readonly SMALLSTEP_LIST="${PHOENIX_ROOT:-}/etc/apt/sources.list.d/smallstep.list"
readonly SMALLSTEP_REPO="https://packages.smallstep.com/stable/debian"
readonly UNIT_FILE="${PHOENIX_ROOT:-}/etc/systemd/system/step-ca.service"

RESTART_NEEDED=0

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

# Checks that secret NAME is passed as a readable, non-empty file in ${NAME}_FILE.
require_secret_file() {
  local name=$1 var="${1}_FILE" path mode
  path=${!var:-}
  [[ -n "${path}" ]] || fatal "required secret ${name} is missing: set ${var} to the path of a root-only file holding it"
  [[ -f "${path}" && -r "${path}" ]] || fatal "${var}: ${path} is not a readable file"
  [[ -s "${path}" ]] || fatal "${var}: ${path} is empty"
  mode=$(stat -c %a "${path}")
  if (((8#${mode} & 8#077) != 0)); then
    warn "${var}: ${path} is accessible by group/others (mode ${mode}); it should be 600"
  fi
}

load_params() {
  require_params CA_NAME CA_DNS_NAMES CA_PROVISIONER
  require_secret_file CA_PASSWORD
  require_secret_file CA_PROVISIONER_PASSWORD

  check_format CA_NAME text
  check_format CA_DNS_NAMES dns-names
  check_format CA_PROVISIONER text
  CA_ADDRESS=${CA_ADDRESS:-:9000}
  check_format CA_ADDRESS listen-address
  CA_ACME=${CA_ACME:-true}
  check_format CA_ACME bool
  STEPPATH=${STEPPATH:-/etc/step-ca}
  check_format STEPPATH absolute-path
  CA_STEPPATH=${STEPPATH}
  STEP_DIR="${PHOENIX_ROOT:-}${CA_STEPPATH}"
  # step reads STEPPATH from the environment.
  export STEPPATH="${STEP_DIR}"

  IFS=, read -r -a DNS_NAMES <<<"${CA_DNS_NAMES// /}"
  if [[ " ${DNS_NAMES[*]} " != *" 127.0.0.1 "* ]]; then
    DNS_NAMES+=(127.0.0.1)
  fi
}

ensure_smallstep_repo() {
  apt_install_missing ca-certificates curl
  fetch_key "${SMALLSTEP_KEY_URL}" "${PHOENIX_ROOT:-}${SMALLSTEP_KEY}" "apt signing key ${PHOENIX_ROOT:-}${SMALLSTEP_KEY}"
  write_apt_source "${SMALLSTEP_LIST}" "deb [signed-by=${SMALLSTEP_KEY}] ${SMALLSTEP_REPO} debs main" "smallstep apt repository"
}

ensure_packages() {
  local -a missing=()
  if command -v step >/dev/null 2>&1; then
    info "step-cli already installed, skipping"
  else
    missing+=(step-cli)
  fi
  if pkg_installed step-ca; then
    info "step-ca already installed, skipping"
  else
    missing+=(step-ca)
  fi
  if ((${#missing[@]} > 0)); then
    ensure_smallstep_repo
  fi
  pkg_installed jq || missing+=(jq)
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi
  command -v step >/dev/null 2>&1 || fatal "'step' is not on PATH after installing step-cli"
}

ensure_steppath() {
  local mode
  if [[ ! -d "${STEP_DIR}" ]]; then
    info "creating ${STEP_DIR} (root, 700)"
    install -d -m 700 "${STEP_DIR}"
  else
    mode=$(stat -c %a "${STEP_DIR}")
    if [[ "${mode}" != 700 ]]; then
      warn "${STEP_DIR} had mode ${mode}; setting 700 (the CA keys must not be readable or writable by others)"
      chmod 700 "${STEP_DIR}"
    fi
  fi
  if [[ "$(stat -c %u "${STEP_DIR}")" != 0 ]]; then
    warn "${STEP_DIR} is not owned by root; fixing"
    chown root:root "${STEP_DIR}"
  fi
  if [[ ! -d "${STEP_DIR}/secrets" ]]; then
    install -d -m 700 "${STEP_DIR}/secrets"
  elif [[ "$(stat -c %a "${STEP_DIR}/secrets")" != 700 ]]; then
    chmod 700 "${STEP_DIR}/secrets"
  fi

  # The keys of an initialised CA are encrypted with the installed password: a different one would only
  # crash-loop the service, so refuse instead of overwriting it.
  if [[ -f "${STEP_DIR}/config/ca.json" && -f "${STEP_DIR}/secrets/password" ]] &&
    ! cmp -s "${STEP_DIR}/secrets/password" "${CA_PASSWORD_FILE}"; then
    fatal "the CA in ${STEP_DIR} is initialised with another password; its keys are encrypted with it. Restore the previous CA password, or re-encrypt the keys (step crypto change-pass) before changing it"
  fi
  # The service needs the CA password to decrypt the intermediate key at start.
  write_file "${STEP_DIR}/secrets/password" 600 <"${CA_PASSWORD_FILE}"
  if ((FILE_CHANGED)); then
    info "installed the CA password file ${STEP_DIR}/secrets/password (600)"
    RESTART_NEEDED=1
  else
    info "CA password file already in place, skipping"
  fi
}

init_ca() {
  local ca_json="${STEP_DIR}/config/ca.json"
  if [[ -f "${ca_json}" ]]; then
    info "CA already initialised (${ca_json} exists), skipping step ca init"
    return 0
  fi
  if [[ -e "${STEP_DIR}/certs/root_ca.crt" || -e "${STEP_DIR}/secrets/root_ca_key" ]]; then
    fatal "partially initialised CA in ${STEP_DIR} (certs or keys exist but config/ca.json is missing); inspect it and move it away by hand before re-running"
  fi
  local -a args=(
    ca init
    --deployment-type standalone
    --name "${CA_NAME}"
    --address "${CA_ADDRESS}"
    --provisioner "${CA_PROVISIONER}"
    --password-file "${STEP_DIR}/secrets/password"
    --provisioner-password-file "${CA_PROVISIONER_PASSWORD_FILE}"
  )
  local dns
  for dns in "${DNS_NAMES[@]}"; do
    args+=(--dns "${dns}")
  done
  if [[ "${CA_ACME}" == true ]]; then
    args+=(--acme)
  fi
  info "initialising CA '${CA_NAME}' in ${STEP_DIR} (DNS: ${DNS_NAMES[*]}; address ${CA_ADDRESS})"
  step "${args[@]}" || fatal "step ca init failed"
  [[ -f "${ca_json}" && -s "${STEP_DIR}/certs/root_ca.crt" ]] || fatal "step ca init did not create ${ca_json} and certs/root_ca.crt"
  RESTART_NEEDED=1
}

ensure_acme_provisioner() {
  local ca_json="${STEP_DIR}/config/ca.json"
  if [[ "${CA_ACME}" != true ]]; then
    info "CA_ACME=false, not managing an ACME provisioner"
    return 0
  fi
  if jq -e '[.authority.provisioners[]? | select(.type == "ACME" and .name == "acme")] | length > 0' \
    "${ca_json}" >/dev/null; then
    info "ACME provisioner 'acme' already present, skipping"
    return 0
  fi
  info "adding ACME provisioner 'acme'"
  step ca provisioner add acme --type ACME --ca-config "${ca_json}" || fatal "step ca provisioner add acme failed"
  RESTART_NEEDED=1
}

ensure_service() {
  mkdir -p "$(dirname "${UNIT_FILE}")"
  write_file "${UNIT_FILE}" 644 <<UNIT
# Managed by Phoenix (features/step_ca.sh); local edits are overwritten.
[Unit]
Description=step-ca (Phoenix internal certificate authority)
Documentation=https://smallstep.com/docs/step-ca
After=network-online.target
Wants=network-online.target
ConditionFileNotEmpty=${CA_STEPPATH}/config/ca.json
ConditionFileNotEmpty=${CA_STEPPATH}/secrets/password

[Service]
Type=simple
Environment=STEPPATH=${CA_STEPPATH}
WorkingDirectory=${CA_STEPPATH}
ExecStart=/usr/bin/step-ca ${CA_STEPPATH}/config/ca.json --password-file ${CA_STEPPATH}/secrets/password
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=5
TimeoutStopSec=30
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
UNIT
  if ((FILE_CHANGED)); then
    info "wrote ${UNIT_FILE}"
    systemctl daemon-reload || fatal "systemctl daemon-reload failed"
    RESTART_NEEDED=1
  else
    info "step-ca.service unit unchanged, skipping"
  fi

  enable_unit step-ca.service
  refresh_unit step-ca.service "${RESTART_NEEDED}" restart "restarting step-ca.service (configuration changed)" \
    "step-ca.service already running with the current configuration, skipping restart"
}

main() {
  # fd 3 = the caller's stdout (data only); everything else goes to stderr.
  exec 3>&1 1>&2
  load_params
  ensure_packages
  ensure_steppath
  init_ca
  ensure_acme_provisioner
  ensure_service
  export_root "${STEP_DIR}/certs/root_ca.crt"
}

main "$@"
