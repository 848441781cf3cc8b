# Shared setup for the feature-script tests.
#
# Each test gets:
#   PHOENIX_ROOT  a temporary fake root the scripts write into
#   STUB_LOG      one line per stubbed command call: "<command> <args...>"
#   a PATH made of ONLY the stubs (test/bats/stubs) and links to a fixed list of
#   harmless real tools (coreutils, grep, sed, awk, jq ...). Nothing else of the
#   machine (apt-get, systemctl, docker, step, nginx ...) is reachable, so a
#   script calling an unstubbed system command fails the test.
# Stubs keep their state as marker files below $PHOENIX_ROOT/var/lib/stub-*
# (see stubs/_lib.bash); STUB_FAIL="<key> ..." makes individual steps fail.

# status, output, lines and stderr are set by bats' `run`.
# shellcheck disable=SC2154

bats_require_minimum_version 1.5.0

REPO_ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
export STUBS_SRC="${BATS_TEST_DIRNAME}/stubs"

# Real tools the scripts and stubs may use. Everything else must be a stub.
REAL_TOOLS=(bash env cat cmp chmod cp cut dirname find grep head install jq ln ls mkdir mktemp mv
  paste readlink rm sed sha256sum sort stat tail timeout touch tr wc awk nproc)

common_setup_file() {
  export SYSBIN="${BATS_FILE_TMPDIR}/sysbin"
  mkdir -p "${SYSBIN}"
  local tool
  local -a paths=()
  for tool in "${REAL_TOOLS[@]}"; do
    paths+=("$(type -P "${tool}")") || true
    [[ -n "${paths[-1]}" ]] || {
      echo "real tool ${tool} is required by the tests" >&2
      return 1
    }
  done
  ln -sf "${paths[@]}" "${SYSBIN}/"
}

common_setup() {
  export PHOENIX_ROOT="${BATS_TEST_TMPDIR}/root"
  export STUB_LOG="${BATS_TEST_TMPDIR}/stub.log"
  export STUB_BIN="${BATS_TEST_TMPDIR}/bin"
  export STUB_FAIL=""
  mkdir -p "${PHOENIX_ROOT}" "${STUB_BIN}"
  : >"${STUB_LOG}"
  # One ln for all stubs (pkg/ and _lib.bash are linked too but are not commands).
  ln -s "${STUBS_SRC}"/* "${STUB_BIN}/"
  TEST_PATH="${STUB_BIN}:${SYSBIN}"
}

# Defaults; a .bats file may define its own setup() that calls common_setup first.
setup_file() { common_setup_file; }
setup() { common_setup; }

# run_script features/x.sh: runs the script under the stub PATH; stdout+stderr in $output.
run_script() {
  run env PATH="${TEST_PATH}" bash "${REPO_ROOT}/$1"
}

# run_script_split features/x.sh: like run_script, stdout in $output, stderr in $stderr.
run_script_split() {
  run --separate-stderr env PATH="${TEST_PATH}" bash "${REPO_ROOT}/$1"
}

# runnable features/x.sh: the text Phoenix sends on stdin (ScriptInfo.runnable in
# catalog/scripts.ts): features/lib/common.sh, "\n", the script.
runnable() {
  cat "${REPO_ROOT}/features/lib/common.sh"
  printf '\n'
  cat "${REPO_ROOT}/$1"
}

# run_script_piped features/x.sh: the way the TypeScript runs it: runnable through
# a pipe into `bash -s` (stdout in $output, stderr in $stderr).
run_script_piped() {
  run --separate-stderr env PATH="${TEST_PATH}" bash -s < <(runnable "$1")
}

# Marks packages as installed in the dpkg stub.
stub_installed() {
  mkdir -p "${PHOENIX_ROOT}/var/lib/stub-dpkg"
  local pkg
  for pkg in "$@"; do
    touch "${PHOENIX_ROOT}/var/lib/stub-dpkg/${pkg}"
    case "${pkg}" in
      step-cli) ln -sf "${STUBS_SRC}/pkg/step" "${STUB_BIN}/step" ;;
      nginx) ln -sf "${STUBS_SRC}/pkg/nginx" "${STUB_BIN}/nginx" ;;
      docker-ce) ln -sf "${STUBS_SRC}/pkg/docker" "${STUB_BIN}/docker" ;;
    esac
  done
}

# Marks units as enabled and active in the systemctl stub.
stub_running() {
  mkdir -p "${PHOENIX_ROOT}/var/lib/stub-systemd/enabled" "${PHOENIX_ROOT}/var/lib/stub-systemd/active"
  local unit
  for unit in "$@"; do
    touch "${PHOENIX_ROOT}/var/lib/stub-systemd/enabled/${unit}" "${PHOENIX_ROOT}/var/lib/stub-systemd/active/${unit}"
  done
}

is_active() { [[ -e "${PHOENIX_ROOT}/var/lib/stub-systemd/active/$1" ]]; }
is_enabled() { [[ -e "${PHOENIX_ROOT}/var/lib/stub-systemd/enabled/$1" ]]; }

# --- assertions (print context on failure) ----------------------------------

fail() {
  printf '%s\n' "$@" >&2
  return 1
}

assert_success() {
  [[ "${status}" -eq 0 ]] || fail "expected success, got exit ${status}" "--- output:" "${output}" "--- stderr:" "${stderr:-}"
}

assert_failure() {
  [[ "${status}" -ne 0 ]] || fail "expected failure, got exit 0" "--- output:" "${output}"
}

# assert_output_contains TEXT: TEXT (fixed string) is in $output.
assert_output_contains() {
  [[ "${output}" == *"$1"* ]] || fail "output does not contain: $1" "--- output:" "${output}"
}

refute_output_contains() {
  [[ "${output}" != *"$1"* ]] || fail "output unexpectedly contains: $1" "--- output:" "${output}"
}

# assert_called REGEX: a stub log line matches the extended REGEX (anchored at line start).
assert_called() {
  grep -qE "^$1" "${STUB_LOG}" || fail "no stub call matching: ^$1" "--- stub log:" "$(cat "${STUB_LOG}")"
}

refute_called() {
  ! grep -qE "^$1" "${STUB_LOG}" || fail "unexpected stub call matching: ^$1" "--- stub log:" "$(cat "${STUB_LOG}")"
}

# Calls that change the system; none may appear on an idempotent re-run.
CHANGING_CALLS='(apt-get|curl|tar|update-ca-certificates|mount|locale-gen|update-locale|useradd|usermod|chown|systemctl (enable|start|restart|reload|daemon-reload)|step ca (init|provisioner add|certificate)|docker (run|rm|restart)|nvidia-installer|python3|pip|hf-download|cmake|ollama pull)( |$)'

assert_no_changing_calls() {
  refute_called "${CHANGING_CALLS}"
}

assert_file_mode() {
  local mode
  mode=$(stat -c %a "$1") || return 1
  [[ "${mode}" == "$2" ]] || fail "$1 has mode ${mode}, expected $2"
}

# assert_file_contains FILE TEXT: TEXT (fixed string) is in FILE.
assert_file_contains() {
  grep -qF -- "$2" "$1" || fail "$1 does not contain: $2" "--- $1:" "$(cat "$1")"
}

# Everything under PHOENIX_ROOT: path, type, mode, and for non-directories mtime,
# size and link target. Two equal snapshots mean nothing was (re)written.
snapshot_root() {
  find "${PHOENIX_ROOT}" \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %T@ %s %l\n' | sort
}

# Runs SCRIPT a second time and checks that it changes nothing: no changing
# stub call, an identical snapshot of the fake root, and success.
assert_second_run_changes_nothing() {
  local before after
  before=$(snapshot_root)
  : >"${STUB_LOG}"
  run_script "$1"
  assert_success
  assert_no_changing_calls
  after=$(snapshot_root)
  [[ "${before}" == "${after}" ]] || fail "the second run changed files:" "$(diff <(echo "${before}") <(echo "${after}") || true)"
}
