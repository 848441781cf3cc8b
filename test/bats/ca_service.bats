#!/usr/bin/env bats
# features/apps/ca_service.sh

load helpers

SCRIPT=features/apps/ca_service.sh

setup() {
  common_setup
  STEP_DIR="${PHOENIX_ROOT}/etc/step-ca"
  mkdir -p "${STEP_DIR}/config" "${STEP_DIR}/certs"
  echo '{"authority":{"provisioners":[]}}' >"${STEP_DIR}/config/ca.json"
  printf -- '-----BEGIN CERTIFICATE-----\nMIIBstubROOT\n-----END CERTIFICATE-----\n' >"${STEP_DIR}/certs/root_ca.crt"
  stub_installed step-cli step-ca
}

expected_stdout() {
  cat "${STEP_DIR}/certs/root_ca.crt"
  echo "PHOENIX_CA_FINGERPRINT=$(sha256sum "${STEP_DIR}/certs/root_ca.crt" | cut -d' ' -f1)"
}

@test "first run enables and starts step-ca, waits for health and prints PEM + fingerprint" {
  run_script_split "${SCRIPT}"
  assert_success
  assert_called 'systemctl enable step-ca.service$'
  assert_called 'systemctl start step-ca.service$'
  assert_called "step ca health --ca-url https://127.0.0.1:9000 --root ${STEP_DIR}/certs/root_ca.crt$"
  [ "${output}" = "$(expected_stdout)" ] || fail "stdout:" "${output}"
  [[ "${stderr}" == *"step-ca is healthy at https://127.0.0.1:9000"* ]]
}

@test "second run changes nothing and prints the same data" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "step-ca.service already enabled, skipping"
  assert_output_contains "step-ca.service already active, skipping start"
  run_script_split "${SCRIPT}"
  [ "${output}" = "$(expected_stdout)" ]
}

@test "runs standalone when piped to bash -s, with the port of CA_ADDRESS" {
  stub_running step-ca.service
  CA_ADDRESS=0.0.0.0:9443 STUB_DRAIN_STDIN=1 run_script_piped "${SCRIPT}"
  assert_success
  assert_called 'step ca health --ca-url https://127.0.0.1:9443 '
  [ "${output}" = "$(expected_stdout)" ]
}

@test "the health wait is bounded and fails with a clear message" {
  export STUB_FAIL=step:health CA_HEALTH_TIMEOUT=6
  run_script_split "${SCRIPT}"
  assert_failure
  [[ "${stderr}" == *"ca_service.sh: ERROR: step-ca did not become healthy at https://127.0.0.1:9000 within 6s"* ]]
  [ "$(grep -c '^step ca health' "${STUB_LOG}")" -eq 3 ]
  [ -z "${output}" ] # nothing on stdout when it fails
}

@test "fails clearly when the CA is not initialised" {
  rm -rf "${STEP_DIR}"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "no initialised CA in ${STEP_DIR}"
  assert_output_contains "apply the step_ca feature first"
}

@test "a failing service start is reported" {
  export STUB_FAIL=systemctl:start
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ca_service.sh: ERROR: systemctl start step-ca.service failed"
}
