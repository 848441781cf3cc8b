#!/usr/bin/env bats
# features/traefik.sh

load helpers

SCRIPT=features/traefik.sh

setup() {
  common_setup
  export CA_URL=https://10.0.0.10:9000
  YML="${PHOENIX_ROOT}/etc/traefik/traefik.yml"
  UNIT="${PHOENIX_ROOT}/etc/systemd/system/traefik.service"
}

tarball_sha() {
  printf 'stub download of %s\n' "https://github.com/traefik/traefik/releases/download/$1/traefik_$1_linux_amd64.tar.gz" | sha256sum | cut -d' ' -f1
}

@test "first run installs the binary, writes config and unit and starts traefik" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'curl -fsSL .* https://github.com/traefik/traefik/releases/download/v3.3.4/traefik_v3.3.4_linux_amd64.tar.gz$'
  assert_called 'tar -xzf .* traefik$'
  assert_file_mode "${PHOENIX_ROOT}/usr/local/bin/traefik" 755
  [ "$("${PHOENIX_ROOT}/usr/local/bin/traefik" version | head -n 1)" = "Version:      3.3.4" ]
  assert_output_contains "TRAEFIK_SHA256 not set, skipping checksum verification"

  assert_file_mode "${YML}" 644
  assert_file_contains "${YML}" 'address: ":80"'
  assert_file_contains "${YML}" 'address: ":443"'
  assert_file_contains "${YML}" "directory: /etc/traefik/dynamic"
  assert_file_contains "${YML}" "watch: true"
  assert_file_contains "${YML}" 'caServer: "https://10.0.0.10:9000/acme/acme/directory"'
  assert_file_contains "${YML}" 'email: "admin@stubhost"'
  assert_file_contains "${YML}" "storage: /etc/traefik/acme.json"
  assert_file_contains "${YML}" "entryPoint: web"
  [ -d "${PHOENIX_ROOT}/etc/traefik/dynamic" ]
  assert_file_mode "${PHOENIX_ROOT}/etc/traefik/acme.json" 600

  assert_file_contains "${UNIT}" "Environment=LEGO_CA_CERTIFICATES=/etc/ssl/certs/ca-certificates.crt"
  assert_file_contains "${UNIT}" "ExecStart=/usr/local/bin/traefik --configFile=/etc/traefik/traefik.yml"
  assert_called 'systemctl daemon-reload$'
  assert_called 'systemctl enable traefik.service$'
  assert_called 'systemctl start traefik.service$'
  refute_called 'systemctl restart'
}

@test "second run changes nothing and does not restart" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "traefik v3.3.4 already installed, skipping download"
  assert_output_contains "/etc/traefik/traefik.yml unchanged, skipping"
  assert_output_contains "traefik.service already running with the current configuration, skipping restart"
}

@test "a changed CA_URL rewrites the config and restarts, without a download" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  CA_URL=https://ca.internal:9443/ ACME_EMAIL=ops@example.com run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${YML}" 'caServer: "https://ca.internal:9443/acme/acme/directory"'
  assert_file_contains "${YML}" 'email: "ops@example.com"'
  refute_called curl
  refute_called 'systemctl daemon-reload'
  assert_called 'systemctl restart traefik.service$'
}

@test "a new TRAEFIK_VERSION is downloaded and traefik restarted" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  TRAEFIK_VERSION=v3.4.0 TRAEFIK_SHA256=$(tarball_sha v3.4.0) run_script "${SCRIPT}"
  assert_success
  assert_called 'curl .*/v3.4.0/traefik_v3.4.0_linux_amd64.tar.gz$'
  assert_output_contains "tarball checksum verified"
  [ "$("${PHOENIX_ROOT}/usr/local/bin/traefik" version | head -n 1)" = "Version:      3.4.0" ]
  assert_called 'systemctl restart traefik.service$'
}

@test "a checksum mismatch fails and installs nothing" {
  TRAEFIK_SHA256=$(printf '0%.0s' {1..64}) run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "traefik.sh: ERROR: checksum mismatch for https://github.com/traefik/traefik/releases/download/v3.3.4/traefik_v3.3.4_linux_amd64.tar.gz"
  [ ! -e "${PHOENIX_ROOT}/usr/local/bin/traefik" ]
  refute_called systemctl
}

@test "an existing acme.json keeps its content and gets mode 600" {
  mkdir -p "${PHOENIX_ROOT}/etc/traefik"
  echo '{"internal":{}}' >"${PHOENIX_ROOT}/etc/traefik/acme.json"
  chmod 644 "${PHOENIX_ROOT}/etc/traefik/acme.json"
  run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${PHOENIX_ROOT}/etc/traefik/acme.json" 600
  [ "$(cat "${PHOENIX_ROOT}/etc/traefik/acme.json")" = '{"internal":{}}' ]
}

@test "missing or invalid CA_URL fails with a clear message" {
  CA_URL="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "traefik.sh: ERROR: required parameter CA_URL is not set"
  CA_URL=http://10.0.0.10:9000 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CA_URL must be an https:// URL such as https://10.0.0.10:9000; got http://10.0.0.10:9000"
  [ ! -s "${STUB_LOG}" ]
}

@test "a failed download fails with a clear message" {
  export STUB_FAIL=curl
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "traefik.sh: ERROR: download of https://github.com/traefik/traefik/releases/download/v3.3.4/traefik_v3.3.4_linux_amd64.tar.gz failed"
}
