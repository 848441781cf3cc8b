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
  export SERVER_NAMES="ca.internal portainer.internal"
  ROUTES="${PHOENIX_ROOT}/etc/traefik/dynamic/phoenix-routes.yml"
  CHECK="${PHOENIX_ROOT}/usr/local/sbin/phoenix-traefik-check"
}

# run_check: runs the check the script installed, under the stub PATH (curl answers as STUB_FAIL says).
run_check() {
  run env PATH="${TEST_PATH}" bash "${CHECK}"
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
  assert_output_contains "/usr/local/sbin/phoenix-traefik-check unchanged, skipping"
}

@test "changed routes are written without restarting a running traefik" {
  stub_running traefik.service
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  TRAEFIK_DYNAMIC_YAML=$'http:\n  routers: {}\n' run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${ROUTES}")" = $'http:\n  routers: {}' ]
  assert_output_contains "wrote ${ROUTES} (Traefik's file watcher picks it up and orders the certificates of new hosts)"
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

@test "the health check says for every route's host whether Traefik serves a certificate from the internal CA" {
  run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${CHECK}" 755
  assert_file_contains "${CHECK}" "readonly MODE=traefik CA_ROOT=/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  : >"${STUB_LOG}"
  run_check
  assert_success
  assert_output_contains "route ca.internal: ok (HTTP 200, the certificate verified against the internal root)"
  assert_called "curl .* --resolve portainer.internal:443:127.0.0.1 --cacert /usr/local/share/ca-certificates/phoenix_root_ca.crt https://portainer.internal/$"

  # The service behind a route may not be up yet (it may wait for Traefik): only the certificate counts here.
  STUB_FAIL=curl-502:portainer.internal run_check
  assert_success

  # Traefik's default certificate: the ACME order is not done, or failed; the message says what to do.
  STUB_FAIL=curl-tls:portainer.internal run_check
  assert_failure
  assert_output_contains "route ca.internal: ok"
  assert_output_contains "route portainer.internal: FAILED: Traefik serves no certificate from the internal CA for portainer.internal yet (curl: (60) SSL certificate problem"
  assert_output_contains "http://portainer.internal/.well-known/acme-challenge/"
  assert_output_contains "Traefik does not order it again until its configuration changes (traefik/traefik#9405): fix the cause, then systemctl restart traefik."
}

@test "without routes the check has nothing to check" {
  SERVER_NAMES="" run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${CHECK}" "readonly HOSTS=()"
  run_check
  assert_success
  refute_called curl
}

@test "the installed check is ShellCheck-clean" {
  command -v shellcheck >/dev/null || skip "shellcheck is not installed (apt-get install shellcheck)"
  run_script "${SCRIPT}"
  assert_success
  run shellcheck "${CHECK}"
  assert_success
}
