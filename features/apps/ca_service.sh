#!/usr/bin/env bash
#
# ca_service.sh (application of the CA guest, 103): makes sure step-ca is
# enabled and running, waits until `step ca health` succeeds against
# https://127.0.0.1:<port of CA_ADDRESS> (trusting STEPPATH/certs/root_ca.crt),
# then exports the root certificate.
#
# Output contract (same as features/step_ca.sh): STDOUT carries data only, exactly
#   <root certificate PEM, STEPPATH/certs/root_ca.crt>
#   PHOENIX_CA_FINGERPRINT=<sha256 hex of the root, as `step certificate fingerprint`>
# Every log message goes to STDERR.
#
# Idempotent: enable/start only when not enabled/active; the health wait is
# bounded by CA_HEALTH_TIMEOUT seconds (fails with a clear message after that).
# Requires the CA initialised by features/step_ca.sh.
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   bash features/apps/ca_service.sh > root_ca.out
#   { cat features/lib/common.sh; echo; cat features/apps/ca_service.sh; } | pct exec 103 -- bash -s > root_ca.out
#
# Parameters (environment variables):
# @param STEPPATH default=/etc/step-ca format=absolute-path Directory of the CA initialised by the step_ca feature
# @param CA_ADDRESS default=:9000 format=listen-address Listen address of step-ca ([host]:port); the port is probed on 127.0.0.1
# @listens CA_ADDRESS https step-ca, which this script starts and checks (its certificate is signed by the CA itself)
# @param CA_HEALTH_TIMEOUT default=60 format=seconds Seconds to wait for `step ca health` to succeed
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="ca_service.sh"
readonly HEALTH_INTERVAL=2

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

load_params() {
  STEPPATH=${STEPPATH:-/etc/step-ca}
  check_format STEPPATH absolute-path
  STEP_DIR="${PHOENIX_ROOT:-}${STEPPATH}"
  export STEPPATH="${STEP_DIR}"
  CA_ADDRESS=${CA_ADDRESS:-:9000}
  check_format CA_ADDRESS listen-address
  HEALTH_URL="https://127.0.0.1:${CA_ADDRESS##*:}"
  CA_HEALTH_TIMEOUT=${CA_HEALTH_TIMEOUT:-60}
  check_format CA_HEALTH_TIMEOUT seconds
  ROOT_CRT="${STEP_DIR}/certs/root_ca.crt"
}

check_initialised() {
  [[ -f "${STEP_DIR}/config/ca.json" && -s "${ROOT_CRT}" ]] ||
    fatal "no initialised CA in ${STEP_DIR} (config/ca.json or certs/root_ca.crt missing); apply the step_ca feature first"
  command -v step >/dev/null 2>&1 || fatal "'step' is not installed; apply the step_ca feature first"
}

ensure_running() {
  enable_unit step-ca.service
  ensure_unit_active step-ca.service
}

# Polls `step ca health` until it succeeds; bounded both by attempts and by time.
wait_healthy() {
  local attempts=$(((CA_HEALTH_TIMEOUT + HEALTH_INTERVAL - 1) / HEALTH_INTERVAL))
  local deadline=$((SECONDS + CA_HEALTH_TIMEOUT)) i
  for ((i = 1; i <= attempts; i++)); do
    if timeout 10 step ca health --ca-url "${HEALTH_URL}" --root "${ROOT_CRT}" >&2; then
      info "step-ca is healthy at ${HEALTH_URL}"
      return 0
    fi
    if ((i == attempts || SECONDS >= deadline)); then
      break
    fi
    sleep "${HEALTH_INTERVAL}"
  done
  fatal "step-ca did not become healthy at ${HEALTH_URL} within ${CA_HEALTH_TIMEOUT}s (see journalctl -u step-ca)"
}

main() {
  # fd 3 = the caller's stdout (data only); everything else goes to stderr.
  exec 3>&1 1>&2
  load_params
  check_initialised
  ensure_running
  wait_healthy
  export_root "${ROOT_CRT}"
}

main "$@"
