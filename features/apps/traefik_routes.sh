#!/usr/bin/env bash
#
# traefik_routes.sh (application of the Traefik guest, 102): installs the
# dynamic Traefik configuration generated from the guest catalog as
# /etc/traefik/dynamic/phoenix-routes.yml and makes sure traefik.service is
# enabled and running. Traefik's file provider watches that directory, so a
# changed file is picked up without a restart.
#
# Idempotent: the file is written (atomically, mode 640) only when its content
# differs; traefik is only enabled/started when it is not already.
# Requires the traefik feature (binary, static config, unit).
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   TRAEFIK_DYNAMIC_YAML="$(cat routes.yml)" bash features/apps/traefik_routes.sh
#   { cat features/lib/common.sh; echo; cat features/apps/traefik_routes.sh; } | pct exec 102 -- env TRAEFIK_DYNAMIC_YAML=... bash -s
#
# Parameters (environment variables):
# @param TRAEFIK_DYNAMIC_YAML required format=lines Full content of the Traefik dynamic-configuration file (routers, services, transports)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="traefik_routes.sh"
readonly DYNAMIC_DIR="${PHOENIX_ROOT:-}/etc/traefik/dynamic"
readonly ROUTES_FILE="${DYNAMIC_DIR}/phoenix-routes.yml"
readonly UNIT_FILE="${PHOENIX_ROOT:-}/etc/systemd/system/traefik.service"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

main() {
  [[ -n "${TRAEFIK_DYNAMIC_YAML//[[:space:]]/}" ]] || fatal "required parameter TRAEFIK_DYNAMIC_YAML is not set"
  check_format TRAEFIK_DYNAMIC_YAML lines
  [[ -f "${UNIT_FILE}" ]] || fatal "traefik.service not found (${UNIT_FILE}); apply the traefik feature first"
  [[ -d "${DYNAMIC_DIR}" ]] || fatal "${DYNAMIC_DIR} does not exist; apply the traefik feature first"

  # Normalise to exactly one trailing newline.
  write_file "${ROUTES_FILE}" 640 <<<"${TRAEFIK_DYNAMIC_YAML%$'\n'}"
  if ((FILE_CHANGED)); then
    info "wrote ${ROUTES_FILE} (Traefik's file watcher picks it up)"
  else
    info "routes unchanged, skipping"
  fi

  enable_unit traefik.service
  ensure_unit_active traefik.service
}

main "$@"
