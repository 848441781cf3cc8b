#!/usr/bin/env bats
# features/lib/common.sh: how the scripts get it (sourced by hand, sent ahead by
# Phoenix) and the ERR trap's report in both cases.

load helpers

# line_of FILE TEXT: the number of the (first) line of FILE holding TEXT (fixed string).
line_of() { grep -nF -- "$2" "${REPO_ROOT}/$1" | head -n 1 | cut -d: -f1; }

@test "run by hand, a script sources lib/common.sh from beside it (features/ and features/apps/, any cwd)" {
  # Nothing defines the helpers beforehand: the scripts must find lib/common.sh themselves.
  run env PATH="${TEST_PATH}" bash -c 'cd / && bash "$1"' _ "${REPO_ROOT}/features/step_cli.sh"
  assert_success
  assert_output_contains "step_cli.sh: step-cli installed"

  mkdir -p "${PHOENIX_ROOT}/etc/traefik/dynamic" "${PHOENIX_ROOT}/etc/systemd/system"
  echo "[Unit]" >"${PHOENIX_ROOT}/etc/systemd/system/traefik.service"
  # A relative path from another directory.
  run env PATH="${TEST_PATH}" TRAEFIK_DYNAMIC_YAML=$'http: {}\n' \
    bash -c 'cd "$1/features" && bash apps/traefik_routes.sh' _ "${REPO_ROOT}"
  assert_success
  assert_output_contains "traefik_routes.sh: wrote ${PHOENIX_ROOT}/etc/traefik/dynamic/phoenix-routes.yml"
}

@test "a failing command is reported with the script's name and its own line, by hand and as Phoenix sends it" {
  local script=features/base_setup.sh
  local cmd='mkdir -p "$(dirname "${AUTO_UPGRADES_FILE}")"' line
  line=$(line_of "${script}" "${cmd}")
  [[ "${line}" =~ ^[0-9]+$ ]]
  # As in base_setup.bats, up to the unattended-upgrades file, whose directory cannot be made.
  mkdir -p "${PHOENIX_ROOT}/usr/share/zoneinfo/Etc" "${PHOENIX_ROOT}/etc/apt"
  touch "${PHOENIX_ROOT}/usr/share/zoneinfo/Etc/UTC"
  touch "${PHOENIX_ROOT}/etc/apt/apt.conf.d" # a file where a directory is expected
  stub_installed ca-certificates curl gnupg jq locales rsync vim htop tzdata unattended-upgrades
  local expected="base_setup.sh: line ${line}: 'mkdir -p \"\$(dirname \"\${AUTO_UPGRADES_FILE}\")\"' failed (exit 1)"

  run_script "${script}"
  assert_failure
  [ "${status}" -eq 1 ]
  assert_output_contains "${expected}"

  run_script_piped "${script}"
  assert_failure
  [[ "${stderr}" == *"${expected}"* ]] || fail "expected: ${expected}" "--- stderr:" "${stderr}"

  # Inside a helper of lib/common.sh: the script line that called it, then the helper and its line.
  local app=features/apps/traefik_routes.sh call helper
  call=$(line_of "${app}" 'write_file "${ROUTES_FILE}" 640')
  helper=$(line_of features/lib/common.sh 'tmp=$(mktemp "${dest}.phoenix.XXXXXX")')
  mkdir -p "${PHOENIX_ROOT}/etc/traefik/dynamic" "${PHOENIX_ROOT}/etc/systemd/system"
  echo "[Unit]" >"${PHOENIX_ROOT}/etc/systemd/system/traefik.service"
  printf '#!/usr/bin/env bash\necho "mktemp: simulated failure" >&2\nexit 1\n' >"${STUB_BIN}/mktemp"
  chmod +x "${STUB_BIN}/mktemp"
  export TRAEFIK_DYNAMIC_YAML=$'http: {}\n'
  expected="traefik_routes.sh: line ${call}: 'tmp=\$(mktemp \"\${dest}.phoenix.XXXXXX\")' failed (exit 1) in write_file() at features/lib/common.sh line ${helper}"

  run_script "${app}"
  assert_failure
  assert_output_contains "${expected}"

  run_script_piped "${app}"
  assert_failure
  [[ "${stderr}" == *"${expected}"* ]] || fail "expected: ${expected}" "--- stderr:" "${stderr}"
}

@test "lib/common.sh ends with the line-offset line and leaves stdin to the script" {
  local lib="${REPO_ROOT}/features/lib/common.sh"
  # Its last line computes PHOENIX_LINE_OFFSET from its own LINENO: nothing may follow it.
  [[ "$(tail -n 1 "${lib}")" == *'PHOENIX_LINE_OFFSET=$((LINENO + 1))'* ]]
  # Sent ahead of a script, the script's line 1 is line offset + 1 of the text; and
  # loading it consumed nothing of stdin (a `read` in the script gets the next line).
  run bash -s < <(
    cat "${lib}"
    printf '\n'
    printf '%s\n' 'echo "offset=${PHOENIX_LINE_OFFSET} line=${LINENO}"' 'read -r rest' 'the next line' 'echo "rest=[${rest}]"'
  )
  [ "${status}" -eq 0 ]
  local n
  n=$(wc -l <"${lib}")
  [ "${output}" = "offset=$((n + 1)) line=$((n + 2))"$'\n'"rest=[the next line]" ] || fail "${output}"
}
