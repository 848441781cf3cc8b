#!/usr/bin/env bats
# features/apps/nginx_gateway.sh

load helpers

SCRIPT=features/apps/nginx_gateway.sh

setup() {
  common_setup
  export UPSTREAM_URL=http://10.0.0.12:80 SERVER_NAMES="portainer.internal nginx.internal"
  SITE="${PHOENIX_ROOT}/etc/nginx/sites-available/phoenix-gateway"
  LINK="${PHOENIX_ROOT}/etc/nginx/sites-enabled/phoenix-gateway"
  # Existing configuration that must survive every run.
  mkdir -p "${PHOENIX_ROOT}/etc/nginx/sites-available" "${PHOENIX_ROOT}/etc/nginx/sites-enabled" "${PHOENIX_ROOT}/etc/nginx/conf.d"
  echo "server { listen 80 default_server; }" >"${PHOENIX_ROOT}/etc/nginx/sites-available/default"
  ln -s /etc/nginx/sites-available/default "${PHOENIX_ROOT}/etc/nginx/sites-enabled/default"
  echo "# custom" >"${PHOENIX_ROOT}/etc/nginx/conf.d/custom.conf"
}

@test "first run installs nginx, writes and enables the site, tests and starts nginx" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends nginx$'
  assert_file_mode "${SITE}" 644
  assert_file_contains "${SITE}" "server_name portainer.internal nginx.internal;"
  assert_file_contains "${SITE}" "proxy_pass http://10.0.0.12:80;"
  assert_file_contains "${SITE}" 'proxy_set_header Host $host;'
  assert_file_contains "${SITE}" 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'
  [ "$(readlink "${LINK}")" = /etc/nginx/sites-available/phoenix-gateway ]
  assert_called 'nginx -t$'
  assert_called 'systemctl enable nginx.service$'
  assert_called 'systemctl start nginx.service$'
  # Nothing else was removed.
  [ -f "${PHOENIX_ROOT}/etc/nginx/sites-available/default" ]
  [ -L "${PHOENIX_ROOT}/etc/nginx/sites-enabled/default" ]
  [ -f "${PHOENIX_ROOT}/etc/nginx/conf.d/custom.conf" ]
}

@test "second run changes nothing: no nginx -t, no reload" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  refute_called 'nginx -t'
  assert_output_contains "nginx already installed, skipping"
  assert_output_contains "gateway site unchanged, skipping"
  assert_output_contains "gateway site already enabled, skipping"
  assert_output_contains "nginx already running with the current gateway site, skipping reload"
}

@test "a changed upstream is tested and reloaded" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  UPSTREAM_URL=http://10.0.0.22:8080/ run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${SITE}" "proxy_pass http://10.0.0.22:8080;"
  assert_called 'nginx -t$'
  assert_called 'systemctl reload nginx.service$'
  refute_called 'systemctl (start|restart)'
}

@test "a failing nginx -t restores the previous site and does not reload" {
  run_script "${SCRIPT}"
  assert_success
  local before
  before=$(cat "${SITE}")
  : >"${STUB_LOG}"
  STUB_FAIL=nginx:-t UPSTREAM_URL=http://10.0.0.99:80 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nginx_gateway.sh: ERROR: nginx -t failed with the new gateway site; the previous site was restored and nginx was not reloaded"
  [ "$(cat "${SITE}")" = "${before}" ]
  refute_called 'systemctl reload'
}

@test "a failing nginx -t on the first run removes only the new site" {
  stub_installed nginx
  STUB_FAIL=nginx:-t run_script "${SCRIPT}"
  assert_failure
  [ ! -e "${SITE}" ]
  [ ! -L "${LINK}" ]
  [ -f "${PHOENIX_ROOT}/etc/nginx/sites-available/default" ]
}

@test "missing or unsafe parameters fail with a clear message" {
  UPSTREAM_URL="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nginx_gateway.sh: ERROR: required parameter UPSTREAM_URL is not set"

  SERVER_NAMES="ok.internal evil;}" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains 'SERVER_NAMES must be space-separated server names; got ok.internal\ evil\;\}'

  UPSTREAM_URL="10.0.0.12:80" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "UPSTREAM_URL must be an http:// or https:// URL such as http://10.0.0.12:80; got 10.0.0.12:80"
  [ ! -s "${STUB_LOG}" ]
}
