#!/usr/bin/env bats
# features/trusted_ca.sh

load helpers

SCRIPT=features/trusted_ca.sh

setup() {
  common_setup
  export CA_ROOT_PEM=$'-----BEGIN CERTIFICATE-----\nMIIBstubROOTPhoenixCA\n-----END CERTIFICATE-----'
  # The openssl stub hashes the PEM text (what the script writes: PEM + newline).
  export CA_FINGERPRINT
  CA_FINGERPRINT=$(printf '%s\n' "${CA_ROOT_PEM}" | sha256sum | cut -d' ' -f1)
  CRT="${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
}

@test "first run verifies the fingerprint, installs the certificate and updates the store" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends ca-certificates$'
  assert_called 'openssl x509 -noout -fingerprint -sha256 -in '
  [ "$(cat "${CRT}")" = "${CA_ROOT_PEM}" ]
  assert_file_mode "${CRT}" 644
  assert_called 'update-ca-certificates$'
  assert_output_contains "CA_ROOT_PEM fingerprint verified (sha256 ${CA_FINGERPRINT})"
  [ -L "${PHOENIX_ROOT}/etc/ssl/certs/phoenix_root_ca.pem" ]
}

@test "second run changes nothing and says the CA is already trusted" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "root CA phoenix_root_ca already trusted, skipping"
  assert_output_contains "ca-certificates and openssl already installed, skipping"
}

@test "a fingerprint mismatch fails and trusts nothing" {
  export CA_FINGERPRINT=0000000000000000000000000000000000000000000000000000000000000000
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "trusted_ca.sh: ERROR: fingerprint mismatch: CA_ROOT_PEM has sha256"
  assert_output_contains "but CA_FINGERPRINT is 0000000000000000000000000000000000000000000000000000000000000000; refusing to trust this certificate"
  [ ! -e "${CRT}" ]
  refute_called update-ca-certificates
}

@test "the expected fingerprint may be upper case with colons" {
  CA_FINGERPRINT=$(sed 's/../&:/g; s/:$//' <<<"${CA_FINGERPRINT^^}") run_script "${SCRIPT}"
  assert_success
  [ -f "${CRT}" ]
}

@test "a rotated root replaces the file, other certificates are left alone" {
  mkdir -p "${PHOENIX_ROOT}/usr/local/share/ca-certificates"
  echo other >"${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_other.crt"
  run_script "${SCRIPT}"
  assert_success
  export CA_ROOT_PEM=$'-----BEGIN CERTIFICATE-----\nMIIBstubROTATED\n-----END CERTIFICATE-----'
  CA_FINGERPRINT=$(printf '%s\n' "${CA_ROOT_PEM}" | sha256sum | cut -d' ' -f1)
  : >"${STUB_LOG}"
  run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${CRT}")" = "${CA_ROOT_PEM}" ]
  assert_called 'update-ca-certificates$'
  [ "$(cat "${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_other.crt")" = other ]
}

@test "CA_CERT_NAME chooses the file name" {
  CA_CERT_NAME=internal_root run_script "${SCRIPT}"
  assert_success
  [ -f "${PHOENIX_ROOT}/usr/local/share/ca-certificates/internal_root.crt" ]
}

@test "missing or malformed parameters fail with a clear message" {
  CA_ROOT_PEM="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "required parameter CA_ROOT_PEM is not set"

  CA_FINGERPRINT=abc run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CA_FINGERPRINT must be a SHA-256 fingerprint (64 hex digits, colons allowed between pairs); got abc"

  CA_ROOT_PEM="not a pem" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CA_ROOT_PEM is not a PEM certificate"
}

@test "a failing update-ca-certificates is reported" {
  export STUB_FAIL=update-ca-certificates
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "trusted_ca.sh: ERROR: update-ca-certificates failed"
}
