#!/usr/bin/env bash
#
# traefik_routes.sh (application of the Traefik guest, 102): installs the
# dynamic Traefik configuration generated from the guest catalog as
# /etc/traefik/dynamic/phoenix-routes.yml and makes sure traefik.service is
# enabled and running. Traefik's file provider watches that directory, so a
# changed file is picked up without a restart.
#
# Loading the routes is what makes Traefik order their certificates (ACME
# http-01 from the internal CA, validated through the gateway's port 80): Phoenix
# runs this step only once the gateway forwards the challenges (catalog/routes.ts).
# Traefik does not order a failed certificate again until its configuration
# changes (traefik/traefik#9405). /usr/local/sbin/phoenix-traefik-check, the
# guest's health check (run it by hand too), says for every route's host
# (SERVER_NAMES) whether Traefik serves a certificate from the internal CA, and
# what to do when it does not.
#
# Idempotent: the files are written (atomically; the routes mode 640) only when
# their content differs; traefik is only enabled/started when it is not already.
# Requires the traefik feature (binary, static config, unit).
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   TRAEFIK_DYNAMIC_YAML="$(cat routes.yml)" SERVER_NAMES="ca.internal portainer.internal" bash features/apps/traefik_routes.sh
#   { cat features/lib/common.sh; echo; cat features/apps/traefik_routes.sh; } | pct exec 102 -- env TRAEFIK_DYNAMIC_YAML=... bash -s
#
# Parameters (environment variables):
# @param TRAEFIK_DYNAMIC_YAML required format=lines Full content of the Traefik dynamic-configuration file (routers, services, transports)
# @param SERVER_NAMES optional format=server-names Space-separated host names of the routes, which the check verifies (Phoenix derives them: every route's host)
# @param CA_ROOT_FILE default=/usr/local/share/ca-certificates/phoenix_root_ca.crt format=absolute-path The internal root (installed by trusted_ca) the check verifies Traefik's certificates against
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="traefik_routes.sh"
readonly DYNAMIC_DIR="${PHOENIX_ROOT:-}/etc/traefik/dynamic"
readonly ROUTES_FILE="${DYNAMIC_DIR}/phoenix-routes.yml"
readonly UNIT_FILE="${PHOENIX_ROOT:-}/etc/systemd/system/traefik.service"
readonly ROUTE_CHECK="/usr/local/sbin/phoenix-traefik-check"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

main() {
  [[ -n "${TRAEFIK_DYNAMIC_YAML//[[:space:]]/}" ]] || fatal "required parameter TRAEFIK_DYNAMIC_YAML is not set"
  check_format TRAEFIK_DYNAMIC_YAML lines
  SERVER_NAMES=${SERVER_NAMES:-}
  check_format SERVER_NAMES server-names
  CA_ROOT_FILE=${CA_ROOT_FILE:-/usr/local/share/ca-certificates/phoenix_root_ca.crt}
  check_format CA_ROOT_FILE absolute-path
  local -a names=()
  read -r -a names <<<"${SERVER_NAMES}"
  [[ -f "${UNIT_FILE}" ]] || fatal "traefik.service not found (${UNIT_FILE}); apply the traefik feature first"
  [[ -d "${DYNAMIC_DIR}" ]] || fatal "${DYNAMIC_DIR} does not exist; apply the traefik feature first"

  # Normalise to exactly one trailing newline.
  write_file "${ROUTES_FILE}" 640 <<<"${TRAEFIK_DYNAMIC_YAML%$'\n'}"
  if ((FILE_CHANGED)); then
    info "wrote ${ROUTES_FILE} (Traefik's file watcher picks it up and orders the certificates of new hosts)"
  else
    info "routes unchanged, skipping"
  fi

  enable_unit traefik.service
  ensure_unit_active traefik.service
  install_route_check "${ROUTE_CHECK}" traefik "${CA_ROOT_FILE}" "${names[@]}"
}

main "$@"
