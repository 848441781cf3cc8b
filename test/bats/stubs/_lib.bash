# Shared by every stub in this directory (sourced, not executed).
#
# Environment (set by ../helpers.bash):
#   PHOENIX_ROOT  fake root; stub state lives in $PHOENIX_ROOT/var/lib/stub-*
#   STUB_LOG      every stub appends "<command> <args...>" to this file
#   STUBS_SRC     this directory
#   STUB_BIN      the PATH directory holding the stubs (apt-get links package commands here)
#   STUB_FAIL     space-separated keys of stubbed steps that must fail, e.g. "apt-get:install mount"
#   STUB_DRAIN_STDIN  if set, every stub reads its stdin to the end (like a prompting
#                 command would); proves that a script run with `bash -s` keeps its own text
set -euo pipefail
: "${PHOENIX_ROOT:?}" "${STUB_LOG:?}"
if [[ -n "${STUB_DRAIN_STDIN:-}" ]]; then
  cat >/dev/null
fi

STUB_NAME=${0##*/}

stub_log() { printf '%s\n' "${STUB_NAME}${*:+ $*}" >>"${STUB_LOG}"; }

# Prints (and creates) the state directory $PHOENIX_ROOT/var/lib/stub-<name>.
stub_state() {
  [[ -d "${PHOENIX_ROOT}/var/lib/stub-$1" ]] || mkdir -p "${PHOENIX_ROOT}/var/lib/stub-$1"
  printf '%s' "${PHOENIX_ROOT}/var/lib/stub-$1"
}

# True when KEY is listed in STUB_FAIL.
stub_should_fail() { [[ " ${STUB_FAIL:-} " == *" $1 "* ]]; }

# sha256 of a file (or stdin with "-"), lowercase hex.
stub_sha256() { sha256sum "$1" | cut -d' ' -f1; }
