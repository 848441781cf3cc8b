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
# Run it by hand as root:
#   TRAEFIK_DYNAMIC_YAML="$(cat routes.yml)" bash features/apps/traefik_routes.sh
#   ... | pct exec 102 -- env TRAEFIK_DYNAMIC_YAML=... bash -s
#
# Parameters (environment variables):
# @param TRAEFIK_DYNAMIC_YAML required Full content of the Traefik dynamic-configuration file (routers, services, transports)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="traefik_routes.sh"
readonly DYNAMIC_DIR="${PHOENIX_ROOT:-}/etc/traefik/dynamic"
readonly ROUTES_FILE="${DYNAMIC_DIR}/phoenix-routes.yml"
readonly UNIT_FILE="${PHOENIX_ROOT:-}/etc/systemd/system/traefik.service"

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

main() {
  [[ -n "${TRAEFIK_DYNAMIC_YAML//[[:space:]]/}" ]] || fatal "required parameter TRAEFIK_DYNAMIC_YAML is not set"
  if [[ "${TRAEFIK_DYNAMIC_YAML}" =~ (^|$'\n')$'\t' ]]; then
    fatal "TRAEFIK_DYNAMIC_YAML is not valid YAML: a line is indented with a tab"
  fi
  [[ -f "${UNIT_FILE}" ]] || fatal "traefik.service not found (${UNIT_FILE}); apply the traefik feature first"
  [[ -d "${DYNAMIC_DIR}" ]] || fatal "${DYNAMIC_DIR} does not exist; apply the traefik feature first"

  # Normalise to exactly one trailing newline.
  write_file "${ROUTES_FILE}" 640 <<<"${TRAEFIK_DYNAMIC_YAML%$'\n'}"
  if ((FILE_CHANGED)); then
    info "wrote ${ROUTES_FILE} (Traefik's file watcher picks it up)"
  else
    info "routes unchanged, skipping"
  fi

  if systemctl is-enabled --quiet traefik.service; then
    info "traefik.service already enabled, skipping"
  else
    systemctl enable traefik.service || fatal "systemctl enable traefik.service failed"
  fi
  if systemctl is-active --quiet traefik.service; then
    info "traefik.service already active, skipping start"
  else
    info "starting traefik.service"
    systemctl start traefik.service || fatal "systemctl start traefik.service failed (see journalctl -u traefik)"
  fi
}

main "$@"
