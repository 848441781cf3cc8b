#!/usr/bin/env bats
# features/step_ca.sh

load helpers

SCRIPT=features/step_ca.sh
CA_PW="ca-S3cret-pw-4711"
PROV_PW="prov-S3cret-pw-0815"

setup() {
  common_setup
  local secrets="${BATS_TEST_TMPDIR}/secrets"
  mkdir -p "${secrets}"
  printf '%s\n' "${CA_PW}" >"${secrets}/ca.pw"
  printf '%s\n' "${PROV_PW}" >"${secrets}/prov.pw"
  chmod 600 "${secrets}/ca.pw" "${secrets}/prov.pw"
  export CA_NAME="Phoenix CA" CA_DNS_NAMES="ca.internal, 10.0.0.10" CA_PROVISIONER=admin@phoenix
  export CA_PASSWORD_FILE="${secrets}/ca.pw" CA_PROVISIONER_PASSWORD_FILE="${secrets}/prov.pw"
  STEP_DIR="${PHOENIX_ROOT}/etc/step-ca"
}

# Line number of the first stub call matching REGEX.
call_line() { grep -nE "^$1" "${STUB_LOG}" | head -n 1 | cut -d: -f1; }

expected_stdout() {
  cat "${STEP_DIR}/certs/root_ca.crt"
  echo "PHOENIX_CA_FINGERPRINT=$(sha256sum "${STEP_DIR}/certs/root_ca.crt" | cut -d' ' -f1)"
}

@test "first run installs step-ca, initialises the CA, then installs and starts the unit" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends step-cli step-ca jq$'
  [ "$(cat "${PHOENIX_ROOT}/etc/apt/sources.list.d/smallstep.list")" = 'deb [signed-by=/etc/apt/keyrings/smallstep.asc] https://packages.smallstep.com/stable/debian debs main' ]
  assert_called "step ca init --deployment-type standalone --name Phoenix CA --address :9000 --provisioner admin@phoenix --password-file ${STEP_DIR}/secrets/password --provisioner-password-file ${CA_PROVISIONER_PASSWORD_FILE} --dns ca.internal --dns 10.0.0.10 --dns 127.0.0.1 --acme$"
  assert_file_mode "${STEP_DIR}" 700
  assert_file_mode "${STEP_DIR}/secrets" 700
  assert_file_mode "${STEP_DIR}/secrets/password" 600
  cmp -s "${CA_PASSWORD_FILE}" "${STEP_DIR}/secrets/password"

  local unit="${PHOENIX_ROOT}/etc/systemd/system/step-ca.service"
  assert_file_mode "${unit}" 644
  assert_file_contains "${unit}" "ExecStart=/usr/bin/step-ca /etc/step-ca/config/ca.json --password-file /etc/step-ca/secrets/password"
  assert_file_contains "${unit}" "Environment=STEPPATH=/etc/step-ca"
  assert_called 'systemctl daemon-reload$'
  assert_called 'systemctl enable step-ca.service$'
  assert_called 'systemctl start step-ca.service$'
  # The unit is enabled and started only after the CA exists.
  [ "$(call_line 'step ca init')" -lt "$(call_line 'systemctl enable')" ]
  [ "$(call_line 'step ca init')" -lt "$(call_line 'systemctl start')" ]
  refute_called 'step ca provisioner add'
  is_active step-ca.service
}

@test "stdout is exactly the root PEM and the PHOENIX_CA_FINGERPRINT line; logs go to stderr" {
  run_script_split "${SCRIPT}"
  assert_success
  [ "${output}" = "$(expected_stdout)" ] || fail "stdout:" "${output}"
  [ "${#lines[@]}" -eq 4 ]
  [[ "${lines[3]}" =~ ^PHOENIX_CA_FINGERPRINT=[0-9a-f]{64}$ ]]
  [[ "${stderr}" == *"step_ca.sh: initialising CA 'Phoenix CA'"* ]]
  [[ "${stderr}" == *"Your PKI is ready to go."* ]] # step's own output is on stderr too
}

@test "passwords never appear in argv (stub log) or in the output" {
  run_script_split "${SCRIPT}"
  assert_success
  run_script_split "${SCRIPT}"
  assert_success
  ! grep -qF -e "${CA_PW}" -e "${PROV_PW}" "${STUB_LOG}"
  [[ "${output}${stderr}" != *"${CA_PW}"* && "${output}${stderr}" != *"${PROV_PW}"* ]]
}

@test "second run changes nothing, says it skipped and prints the same stdout" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "step-cli already installed, skipping"
  assert_output_contains "step-ca already installed, skipping"
  assert_output_contains "CA already initialised (${STEP_DIR}/config/ca.json exists), skipping step ca init"
  assert_output_contains "ACME provisioner 'acme' already present, skipping"
  assert_output_contains "step-ca.service already running with the current configuration, skipping restart"

  run_script_split "${SCRIPT}"
  [ "${output}" = "$(expected_stdout)" ]
}

@test "runs standalone when piped to bash -s, even if commands read stdin" {
  # main "$@" is the last line, so a child reading stdin cannot eat the script.
  STUB_DRAIN_STDIN=1 run_script_piped "${SCRIPT}"
  assert_success
  [ "${output}" = "$(expected_stdout)" ]
}

@test "a world-writable STEPPATH is fixed to 700" {
  mkdir -p "${STEP_DIR}"
  chmod 777 "${STEP_DIR}"
  run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${STEP_DIR}" 700
  assert_output_contains "${STEP_DIR} had mode 777; setting 700"
}

@test "an existing CA without ACME provisioner gets one and step-ca is restarted" {
  CA_ACME=false run_script "${SCRIPT}"
  assert_success
  refute_called 'step ca init .*--acme'
  assert_output_contains "CA_ACME=false, not managing an ACME provisioner"
  : >"${STUB_LOG}"

  run_script "${SCRIPT}"
  assert_success
  refute_called 'step ca init'
  assert_called "step ca provisioner add acme --type ACME --ca-config ${STEP_DIR}/config/ca.json$"
  assert_called 'systemctl restart step-ca.service$'
  jq -e '.authority.provisioners[] | select(.type == "ACME" and .name == "acme")' "${STEP_DIR}/config/ca.json"
}

@test "missing parameters and secrets fail with a message naming them" {
  CA_NAME="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step_ca.sh: ERROR: required parameter CA_NAME is not set"

  CA_PASSWORD_FILE="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "required secret CA_PASSWORD is missing: set CA_PASSWORD_FILE to the path of a root-only file holding it"

  CA_PROVISIONER_PASSWORD_FILE=/nonexistent run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CA_PROVISIONER_PASSWORD_FILE: /nonexistent is not a readable file"
  [ ! -s "${STUB_LOG}" ]
}

@test "a failing step ca init stops before the unit is written or started" {
  export STUB_FAIL=step:init
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step_ca.sh: ERROR: step ca init failed"
  [ ! -e "${PHOENIX_ROOT}/etc/systemd/system/step-ca.service" ]
  refute_called 'systemctl (enable|start)'
}

@test "a partially initialised CA is not overwritten" {
  mkdir -p "${STEP_DIR}/certs"
  echo partial >"${STEP_DIR}/certs/root_ca.crt"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "partially initialised CA in ${STEP_DIR}"
  refute_called 'step ca init'
  [ "$(cat "${STEP_DIR}/certs/root_ca.crt")" = partial ]
}

@test "a changed CA password on an initialised CA is refused, the installed one kept" {
  run_script "${SCRIPT}"
  assert_success
  printf '%s\n' "another-pw" >"${CA_PASSWORD_FILE}"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "is initialised with another password"
  [ "$(cat "${STEP_DIR}/secrets/password")" = "${CA_PW}" ]
  [[ "${output}" != *another-pw* ]]
}
