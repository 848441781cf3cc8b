#!/usr/bin/env bats
# features/apps/traefik_routes.sh

load helpers

SCRIPT=features/apps/traefik_routes.sh

setup() {
  common_setup
  # What the traefik feature leaves behind.
  mkdir -p "${PHOENIX_ROOT}/etc/traefik/dynamic" "${PHOENIX_ROOT}/etc/systemd/system"
  echo "[Unit]" >"${PHOENIX_ROOT}/etc/systemd/system/traefik.service"
  export TRAEFIK_DYNAMIC_YAML=$'http:\n  routers:\n    portainer:\n      rule: "Host(`portainer.internal`)"\n      service: portainer\n  services:\n    portainer:\n      loadBalancer:\n        servers:\n          - url: "https://10.0.0.111:9443"\n'
  ROUTES="${PHOENIX_ROOT}/etc/traefik/dynamic/phoenix-routes.yml"
}

@test "first run writes the routes file and starts traefik" {
  run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${ROUTES}")" = "${TRAEFIK_DYNAMIC_YAML%$'\n'}" ]
  [ "$(tail -c 1 "${ROUTES}" | od -An -c | tr -d ' ')" = '\n' ]
  assert_file_mode "${ROUTES}" 640
  assert_called 'systemctl enable traefik.service$'
  assert_called 'systemctl start traefik.service$'
}

@test "second run changes nothing and says it skipped" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "routes unchanged, skipping"
  assert_output_contains "traefik.service already active, skipping start"
}

@test "changed routes are written without restarting a running traefik" {
  stub_running traefik.service
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  TRAEFIK_DYNAMIC_YAML=$'http:\n  routers: {}\n' run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${ROUTES}")" = $'http:\n  routers: {}' ]
  assert_output_contains "wrote ${ROUTES} (Traefik's file watcher picks it up)"
  refute_called systemctl
}

@test "fails clearly without routes or without the traefik feature" {
  TRAEFIK_DYNAMIC_YAML="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "traefik_routes.sh: ERROR: required parameter TRAEFIK_DYNAMIC_YAML is not set"

  TRAEFIK_DYNAMIC_YAML=$'http:\n\trouters: {}' run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "TRAEFIK_DYNAMIC_YAML must be lines of text without control characters; got \$'\\trouters: {}'"

  rm "${PHOENIX_ROOT}/etc/systemd/system/traefik.service"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "traefik.service not found"
  assert_output_contains "apply the traefik feature first"
  [ ! -e "${ROUTES}" ]
}
