#!/usr/bin/env bats
# features/step_cli.sh

load helpers

SCRIPT=features/step_cli.sh
LIST_LINE='deb [signed-by=/etc/apt/keyrings/smallstep.asc] https://packages.smallstep.com/stable/debian debs main'

@test "first run adds Smallstep's key and repository and installs step-cli" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends ca-certificates curl$'
  assert_called "curl -fsSL --retry 3 --connect-timeout 15 --max-time 120 -o ${PHOENIX_ROOT}/etc/apt/keyrings/smallstep.asc\.phoenix\.[A-Za-z0-9]+ https://packages.smallstep.com/keys/apt/repo-signing-key.gpg$"
  assert_file_mode "${PHOENIX_ROOT}/etc/apt/keyrings/smallstep.asc" 644
  [ "$(cat "${PHOENIX_ROOT}/etc/apt/sources.list.d/smallstep.list")" = "${LIST_LINE}" ]
  assert_file_mode "${PHOENIX_ROOT}/etc/apt/sources.list.d/smallstep.list" 644
  # apt-get update runs again after the repository was added, then step-cli is installed.
  [ "$(grep -c 'apt-get .*update$' "${STUB_LOG}")" -eq 2 ]
  [ "$(tail -n 1 "${STUB_LOG}")" = "apt-get -y -q -o DPkg::Lock::Timeout=300 install --no-install-recommends step-cli" ]
  [ -x "${STUB_BIN}/step" ]
}

@test "second run changes nothing and says it skipped" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "step-cli already installed"
  assert_output_contains "skipping"
}

@test "an existing key and list file are kept" {
  stub_installed ca-certificates curl
  mkdir -p "${PHOENIX_ROOT}/etc/apt/keyrings" "${PHOENIX_ROOT}/etc/apt/sources.list.d"
  echo "existing key" >"${PHOENIX_ROOT}/etc/apt/keyrings/smallstep.asc"
  echo "${LIST_LINE}" >"${PHOENIX_ROOT}/etc/apt/sources.list.d/smallstep.list"
  run_script "${SCRIPT}"
  assert_success
  refute_called curl
  assert_output_contains "apt signing key ${PHOENIX_ROOT}/etc/apt/keyrings/smallstep.asc already present, skipping"
  assert_output_contains "smallstep apt repository already configured, skipping"
  [ "$(grep -c 'apt-get .*update$' "${STUB_LOG}")" -eq 1 ]
  assert_called 'apt-get .* install --no-install-recommends step-cli$'
}

@test "fails clearly when the key download fails, without writing the repository" {
  stub_installed ca-certificates curl
  export STUB_FAIL=curl
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step_cli.sh: ERROR: download of https://packages.smallstep.com/keys/apt/repo-signing-key.gpg failed"
  [ ! -e "${PHOENIX_ROOT}/etc/apt/sources.list.d/smallstep.list" ]
  [ -z "$(ls "${PHOENIX_ROOT}/etc/apt/keyrings")" ]
}

@test "fails clearly when apt-get install fails" {
  stub_installed ca-certificates curl
  export STUB_FAIL=apt-get:install
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step_cli.sh: ERROR: apt-get install failed for: step-cli"
}
