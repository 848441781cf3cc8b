#!/usr/bin/env bats
# features/apps/portainer.sh

load helpers

SCRIPT=features/apps/portainer.sh

setup() {
  common_setup
  export CA_URL=https://10.0.0.10:9000 GUEST_ADDRESS=10.0.0.111
  CRT="${PHOENIX_ROOT}/etc/portainer/certs/portainer.crt"
  UNITS="${PHOENIX_ROOT}/etc/systemd/system"
  # What the docker, trusted_ca and step_cli features leave behind.
  mkdir -p "${PHOENIX_ROOT}/usr/local/share/ca-certificates"
  echo "root" >"${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  stub_installed step-cli docker-ce
}

label() { cat "${PHOENIX_ROOT}/var/lib/stub-docker/portainer"; }

@test "first run: a certificate for the guest's address by ACME (standalone on :80), then Portainer on :9443 with it" {
  run_script "${SCRIPT}"
  assert_success
  assert_called "step ca certificate 10.0.0.111 ${CRT}.new ${PHOENIX_ROOT}/etc/portainer/certs/portainer.key.new --provisioner acme --standalone --ca-url https://10.0.0.10:9000 --root /usr/local/share/ca-certificates/phoenix_root_ca.crt --force --san 10.0.0.111$"
  assert_file_mode "${PHOENIX_ROOT}/etc/portainer/certs/portainer.key" 600
  assert_file_mode "${PHOENIX_ROOT}/var/lib/portainer" 700
  assert_called "docker run -d --name portainer --label phoenix.config=[0-9a-f]{64} --restart=always -p 9443:9443 -v /var/run/docker.sock:/var/run/docker.sock -v /var/lib/portainer:/data -v /etc/portainer/certs:/certs:ro portainer/portainer-ce:2.21.5 --sslcert /certs/portainer.crt --sslkey /certs/portainer.key --http-disabled$"
  local log
  log=$(cat "${STUB_LOG}")
  [[ "${log}" == *"step ca certificate"*"docker run -d --name portainer"* ]] || fail "the certificate must exist before the container starts:" "${log}"
  assert_file_contains "${UNITS}/phoenix-portainer-cert.service" "ExecStart=/usr/bin/step ca renew --force --ca-url https://10.0.0.10:9000 --root /usr/local/share/ca-certificates/phoenix_root_ca.crt /etc/portainer/certs/portainer.crt /etc/portainer/certs/portainer.key"
  assert_file_contains "${UNITS}/phoenix-portainer-cert.service" "ExecStartPost=/usr/bin/docker restart portainer"
  is_active phoenix-portainer-cert.timer
}

@test "second run changes nothing: same certificate, same container" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "for 10.0.0.111 is current, skipping"
  assert_output_contains "container portainer already runs this configuration, skipping"
}

@test "a renewed certificate restarts the container; a new image re-creates it, keeping its data directory" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  STUB_EXPIRING=1 run_script "${SCRIPT}"
  assert_success
  assert_called 'docker restart portainer$'
  refute_called 'docker run '
  local before
  before=$(label)
  : >"${STUB_LOG}"
  PORTAINER_IMAGE=portainer/portainer-ce:2.21.6 run_script "${SCRIPT}"
  assert_success
  assert_called 'docker rm -f portainer$'
  assert_called 'docker run -d --name portainer .* portainer/portainer-ce:2.21.6 '
  [ "$(label)" != "${before}" ]
  assert_output_contains "re-creating portainer (configuration changed; its data stays in /var/lib/portainer)"
}

@test "an initial admin password is a root-only file mounted into the container, never on a command line" {
  printf 's3cret-pass' >"${BATS_TEST_TMPDIR}/pw"
  PORTAINER_ADMIN_PASSWORD_FILE="${BATS_TEST_TMPDIR}/pw" run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${PHOENIX_ROOT}/etc/portainer/admin_password" 600
  [ "$(cat "${PHOENIX_ROOT}/etc/portainer/admin_password")" = s3cret-pass ]
  assert_called 'docker run .* -v /etc/portainer/admin_password:/run/secrets/portainer_admin_password:ro .* --admin-password-file /run/secrets/portainer_admin_password$'
  [ "$(grep -c s3cret "${STUB_LOG}")" = 0 ]
  refute_output_contains s3cret
}

@test "without docker, step or the internal root it says which feature to apply" {
  rm "${STUB_BIN}/docker"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "'docker' not found: apply the docker feature first"
  stub_installed docker-ce
  rm "${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "apply the trusted_ca feature first"
}

@test "a failed certificate request or docker run fails the run clearly" {
  STUB_FAIL=step:certificate run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step ca certificate for 10.0.0.111 failed"
  refute_called 'docker run '
  STUB_FAIL=docker:run run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "docker run portainer/portainer-ce:2.21.5 failed (see docker logs portainer)"
}

@test "missing or unsafe parameters fail with a clear message" {
  GUEST_ADDRESS="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "portainer.sh: ERROR: required parameter GUEST_ADDRESS is not set"
  PORTAINER_IMAGE="portainer/portainer-ce:2.21.5; rm -rf /" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "PORTAINER_IMAGE must be a container image such as portainer/portainer-ce:2.21.5"
  [ ! -s "${STUB_LOG}" ]
}
