# shellcheck shell=bash
#
# lib/common.sh: the helpers shared by the feature and application scripts
# (features/*.sh, features/apps/*.sh). Not a feature itself: it only defines
# functions and a few globals, and installs two traps.
#
# How a script gets it:
#   - Phoenix sends it AHEAD of the script, as one text on stdin (ScriptInfo.runnable
#     in catalog/scripts.ts): this file, "\n", the script, run by `bash -s`.
#   - Run by hand from a checkout (`bash features/x.sh`), the script sources it
#     from beside itself (features/lib/common.sh).
#   - By hand on a guest, send it the way Phoenix does (the `echo` is Phoenix's
#     separator line; it keeps the line numbers of error messages right):
#       { cat features/lib/common.sh; echo; cat features/x.sh; } | bash -s
# A script tells the cases apart with `declare -F phoenix_common_loaded` (defined
# at the end of this file) and sources this file only when it is not loaded yet.
#
# Contract with the script: it sets SCRIPT_NAME (the prefix of every message,
# e.g. "docker.sh") and `set -Eeuo pipefail` itself. Loading this file
#   - defines the globals APT_UPDATED, FILE_CHANGED and TMP_DIR (below),
#   - installs the ERR trap: "<script>: line N: '<command>' failed (exit X)",
#     N being the line in the script (see on_error),
#   - installs the EXIT trap that removes TMP_DIR when the script created one.
# Nothing here reads stdin, so a script piped to `bash -s` keeps its own text.
#
# Tests: the scripts prefix absolute paths with PHOENIX_ROOT (a fake root); the
# commands used here are called by name so they can be stubbed through PATH.

# 1 once `apt-get update` ran; set it back to 0 after changing apt sources or keys.
APT_UPDATED=0
# Set by write_file: 1 when it created or rewrote its file.
# shellcheck disable=SC2034 # read by the scripts
FILE_CHANGED=0
# A temporary directory of the script (TMP_DIR=$(mktemp -d)); removed on exit.
TMP_DIR=""

# --- messages (all on stderr) ------------------------------------------------

info() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
warn() { printf '%s: WARNING: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
fatal() {
  printf '%s: ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

#######################################
# ERR trap: prints "<script>: line N: '<command>' failed (exit X)" and exits X.
# N is the line in the script. When the command failed inside a helper of this
# file, N is the script line that called the helper, and the helper and its line
# here are added ("in write_file() at features/lib/common.sh line 97").
# Sent ahead of the script, this file and the script count lines as one text;
# PHOENIX_LINE_OFFSET (the last line of this file) is the script's share of it.
# Arguments: $LINENO and $BASH_COMMAND of the failed command.
#######################################
on_error() {
  local code=$? line=$1 offset=${PHOENIX_LINE_OFFSET:-0} helper="" i=1
  # Frame i ran the failed command (i = 1) or called the function of frame i-1;
  # walk out of the functions defined in this file.
  while ((i < ${#FUNCNAME[@]})); do
    if ((offset > 0)); then
      ((line <= offset)) || break
    else
      [[ "${BASH_SOURCE[i]:-}" == "${BASH_SOURCE[0]}" ]] || break
    fi
    [[ -n "${helper}" ]] || helper=" in ${FUNCNAME[i]}() at features/lib/common.sh line ${line}"
    line=${BASH_LINENO[i]}
    i=$((i + 1))
  done
  printf "%s: line %s: '%s' failed (exit %s)%s\n" "${SCRIPT_NAME}" "$((line - offset))" "$2" "${code}" "${helper}" >&2
  exit "${code}"
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

cleanup_tmp_dir() {
  if [[ -n "${TMP_DIR}" ]]; then
    rm -rf "${TMP_DIR}"
  fi
}
trap cleanup_tmp_dir EXIT

# --- parameters ---------------------------------------------------------------

# Fails unless every environment variable NAME... is set and not empty.
require_params() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || fatal "required parameter ${name} is not set"
  done
}

# Parameter formats. A script's header names one per parameter (`# @param NAME
# MODE format=NAME ...`); the script checks its values with check_format, and
# the catalog checks the values it would pass against the same expressions
# before anything is deployed (catalog/paramFormats.ts reads the phoenix_format
# lines below from this file). So they are written in the part of POSIX ERE
# that JavaScript reads alike: no \d, no (?:), no lookarounds; [:cntrl:] is the
# only class. None admits a control character, so no value can carry a line
# break into a file; each also keeps out the separators of where its value goes.
# phoenix_format NAME 'ERE' 'what a value must look like' (check_format's message).
declare -A PHOENIX_FORMAT=() PHOENIX_FORMAT_HINT=()
phoenix_format() {
  PHOENIX_FORMAT[$1]=$2
  PHOENIX_FORMAT_HINT[$1]=$3
}
phoenix_format text '^[^[:cntrl:]]+$' \
  'one line of text without control characters'
phoenix_format bool '^(true|false)$' \
  'true or false'
phoenix_format seconds '^[1-9][0-9]{0,4}$' \
  'a whole number of seconds, 1..99999'
phoenix_format hostname '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$' \
  'a DNS name such as ca.internal.example'
phoenix_format dns-names '^[A-Za-z0-9*.:-]+(, *[A-Za-z0-9*.:-]+)*$' \
  'comma-separated DNS names or IP addresses'
phoenix_format server-names '^[A-Za-z0-9*._-]+( [A-Za-z0-9*._-]+)*$' \
  'space-separated server names'
phoenix_format packages '^[a-z0-9][a-z0-9+.-]*( [a-z0-9][a-z0-9+.-]*)*$' \
  'space-separated Debian package names'
phoenix_format locale '^(C|POSIX|[A-Za-z0-9_@-]+\.[A-Za-z0-9_.@-]+)$' \
  'a locale with its codeset such as en_US.UTF-8 (or C, POSIX)'
phoenix_format timezone '^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$' \
  'a time zone name such as Europe/Berlin'
phoenix_format user-name '^[a-z_][a-z0-9_-]{0,31}$' \
  'a user name (lowercase letters, digits, _ and -, at most 32 characters)'
phoenix_format ssh-public-key '^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( [^[:cntrl:]]*)?$' \
  'one OpenSSH public key line (type base64 [comment])'
phoenix_format absolute-path '^(/([A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*|\.[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*|\.\.[A-Za-z0-9_.+@-]+))+$' \
  'an absolute path without . or .. segments, //, a trailing / or characters other than letters, digits and _.+@-'
phoenix_format file-name '^[A-Za-z0-9_-][A-Za-z0-9_.-]*$' \
  'a file name of letters, digits, _, . and - (not starting with .)'
phoenix_format listen-address '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$' \
  '[host]:port with a port 1..65535, such as :9000'
phoenix_format https-url '^https://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?$' \
  'an https:// URL such as https://10.0.0.10:9000'
phoenix_format http-url '^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?$' \
  'an http:// or https:// URL such as http://10.0.0.12:80'
phoenix_format release-tag '^v[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$' \
  'a release tag such as v3.3.4'
phoenix_format sha256 '^[0-9A-Fa-f]{64}$' \
  'a SHA-256 hex digest (64 hex digits)'
phoenix_format fingerprint '^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$' \
  'a SHA-256 fingerprint (64 hex digits, colons allowed between pairs)'
phoenix_format email '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$' \
  'an e-mail address such as admin@example.com'
phoenix_format port '^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$' \
  'a port number 1..65535'
phoenix_format ip-address '^[0-9A-Fa-f.:]+$' \
  'an IP address such as 0.0.0.0'
phoenix_format positive-int '^[1-9][0-9]*$' \
  'a whole number of at least 1'
phoenix_format count '^[0-9]+$' \
  'a whole number'
phoenix_format driver-version '^[0-9]+\.[0-9]+(\.[0-9]+)?$' \
  'an NVIDIA driver version such as 580.76.05'
phoenix_format index-list '^[0-9]+(,[0-9]+)*$' \
  'comma-separated GPU indexes such as 0,1'
phoenix_format runfile-url '^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+-]*\.run$' \
  'an https:// URL of a .run file'
phoenix_format cuda-version '^[0-9]+\.[0-9]+$' \
  'a CUDA release such as 12.8'
phoenix_format cuda-architectures '^(native|all|all-major|[0-9]+[a-z]*(-real|-virtual)?(;[0-9]+[a-z]*(-real|-virtual)?)*)$' \
  'native, all, all-major or a list such as 86;120'
phoenix_format hf-model '^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$' \
  'a Hugging Face model id such as Qwen/Qwen2.5-7B-Instruct'
phoenix_format git-ref '^[A-Za-z0-9][A-Za-z0-9._/-]*$' \
  'a commit, branch or tag'
phoenix_format model-name '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' \
  'a model name of letters, digits and ._:/-'
phoenix_format model-list '^[A-Za-z0-9][A-Za-z0-9._/-]*(:[A-Za-z0-9._-]+)?(,[A-Za-z0-9][A-Za-z0-9._/-]*(:[A-Za-z0-9._-]+)?)*$' \
  'comma-separated model names such as llama3.2:3b,qwen2.5:7b'
phoenix_format gguf-url '^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+-]*\.gguf(\?[A-Za-z0-9._~=&%-]*)?$' \
  'an https:// URL of a .gguf file'
phoenix_format pypi-version '^[0-9]+\.[0-9]+\.[0-9]+([.a-z0-9]*)?$' \
  'a release such as 0.10.2'
phoenix_format ollama-version '^v?[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?$' \
  'a release such as 0.12.10'
phoenix_format llamacpp-tag '^b[0-9]+$' \
  'a release tag such as b6910'
phoenix_format dtype '^[a-z0-9]+$' \
  'a dtype such as auto or bfloat16'
phoenix_format quantization '^[a-z0-9_-]+$' \
  'a method such as awq_marlin or fp8'
phoenix_format image '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$' \
  'a container image such as portainer/portainer-ce:2.21.5'
phoenix_format fraction '^(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$' \
  'a share of the memory of each GPU (0 < x <= 1)'

#######################################
# Fails unless the value of parameter NAME has the format FORMAT (a key of
# PHOENIX_FORMAT, or "lines": lines of text, empty lines allowed). An unset or
# empty value passes: require_params says whether one is needed. The message
# shows the value escaped (printf %q), so a control character cannot forge a log line.
# Arguments: NAME, FORMAT.
#######################################
check_format() {
  local name=$1 format=$2 value=${!1:-} line re
  [[ -n "${value}" ]] || return 0
  if [[ "${format}" == lines ]]; then
    while IFS= read -r line; do
      [[ -z "${line}" || "${line}" =~ ${PHOENIX_FORMAT[text]} ]] ||
        fatal "${name} must be lines of text without control characters; got $(printf '%q' "${line}")"
    done <<<"${value}"
    return 0
  fi
  [[ -n "${PHOENIX_FORMAT[${format}]:-}" ]] || fatal "${name}: unknown parameter format '${format}'"
  re=${PHOENIX_FORMAT[${format}]}
  [[ "${value}" =~ ${re} ]] || fatal "${name} must be ${PHOENIX_FORMAT_HINT[${format}]}; got $(printf '%q' "${value}")"
}

# --- files --------------------------------------------------------------------

#######################################
# Writes stdin to DEST (mode MODE) through a temp file + mv, only if the content
# differs. Globals: FILE_CHANGED (set to 1 when DEST was created or rewritten).
#######################################
write_file() {
  local dest=$1 mode=$2 tmp
  FILE_CHANGED=0
  tmp=$(mktemp "${dest}.phoenix.XXXXXX")
  cat >"${tmp}"
  chmod "${mode}" "${tmp}"
  if [[ -f "${dest}" && ! -L "${dest}" ]] && cmp -s "${tmp}" "${dest}"; then
    rm -f "${tmp}"
    if [[ "$(stat -c %a "${dest}")" != "${mode}" ]]; then
      chmod "${mode}" "${dest}"
      info "fixed mode of ${dest} to ${mode}"
    fi
    return 0
  fi
  mv -f "${tmp}" "${dest}"
  FILE_CHANGED=1
}

# --- apt ----------------------------------------------------------------------

pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ "${status}" == "install ok installed" ]]
}

# Runs `apt-get update` once per run (again after APT_UPDATED=0).
apt_update() {
  ((APT_UPDATED)) && return 0
  info "apt-get update"
  if ! apt-get -q -o DPkg::Lock::Timeout=300 update; then
    fatal "apt-get update failed (network or apt sources problem)"
  fi
  APT_UPDATED=1
}

apt_install() {
  apt_update
  info "installing: $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 \
    install --no-install-recommends "$@"; then
    fatal "apt-get install failed for: $*"
  fi
}

# Installs those of the packages PKG... that are not installed (nothing if all are).
apt_install_missing() {
  local -a missing=()
  local pkg
  for pkg in "$@"; do
    pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi
}

#######################################
# Downloads the apt signing key URL to DEST (mode 644) unless DEST is already
# there (not empty); a new key forces the next apt_update.
# Arguments: URL, DEST (with PHOENIX_ROOT), LABEL naming the key in the log.
#######################################
fetch_key() {
  local url=$1 dest=$2 label=$3 tmp
  if [[ -s "${dest}" ]]; then
    info "${label} already present, skipping"
    return 0
  fi
  if [[ ! -d "$(dirname "${dest}")" ]]; then
    install -d -m 755 "$(dirname "${dest}")"
  fi
  info "downloading ${label} from ${url}"
  tmp=$(mktemp "${dest}.phoenix.XXXXXX")
  if ! curl -fsSL --retry 3 --connect-timeout 15 --max-time 120 -o "${tmp}" "${url}"; then
    rm -f "${tmp}"
    fatal "download of ${url} failed"
  fi
  if [[ ! -s "${tmp}" ]]; then
    rm -f "${tmp}"
    fatal "download of ${url} returned an empty file"
  fi
  chmod 644 "${tmp}"
  mv -f "${tmp}" "${dest}"
  APT_UPDATED=0
}

#######################################
# Makes the apt source file LIST (mode 644) hold exactly the line LINE; a change
# forces the next apt_update.
# Arguments: LIST (with PHOENIX_ROOT), LINE, LABEL naming the repository in the log.
#######################################
write_apt_source() {
  local list=$1 line=$2 label=$3
  mkdir -p "$(dirname "${list}")"
  write_file "${list}" 644 <<<"${line}"
  if ((FILE_CHANGED)); then
    info "wrote ${list}"
    APT_UPDATED=0
  else
    info "${label} already configured, skipping"
  fi
}

# --- systemd ------------------------------------------------------------------

# Enables UNIT unless it already is.
enable_unit() {
  if systemctl is-enabled --quiet "$1"; then
    info "$1 already enabled, skipping"
  else
    systemctl enable "$1" || fatal "systemctl enable $1 failed"
  fi
}

# Starts UNIT (the caller knows it is not active).
start_unit() {
  info "starting $1"
  systemctl start "$1" || fatal "systemctl start $1 failed (see journalctl -u ${1%.service})"
}

# Starts UNIT if it is not active; otherwise, when CHANGED is 1, runs `systemctl ACTION` (restart or reload) on it
# after saying WHY; otherwise says SKIPPED.
refresh_unit() {
  local unit=$1 changed=$2 action=$3 why=$4 skipped=$5
  if ! systemctl is-active --quiet "${unit}"; then
    start_unit "${unit}"
  elif ((changed)); then
    info "${why}"
    systemctl "${action}" "${unit}" || fatal "systemctl ${action} ${unit} failed (see journalctl -u ${unit%.service})"
  else
    info "${skipped}"
  fi
}

# Starts UNIT unless it is active.
ensure_unit_active() {
  if systemctl is-active --quiet "$1"; then
    info "$1 already active, skipping start"
  else
    start_unit "$1"
  fi
}

# --- downloads, users, services ----------------------------------------------

#######################################
# The listening address of a server feature: HOST (default 0.0.0.0, all
# addresses: the guest firewall decides who reaches it) and PORT (default
# DEFAULT_PORT), checked. Also checks EXTRA_ARGS (further server arguments, one line).
# Arguments: DEFAULT_PORT.
#######################################
server_params() {
  HOST=${HOST:-0.0.0.0}
  check_format HOST ip-address
  PORT=${PORT:-$1}
  check_format PORT port
  EXTRA_ARGS=${EXTRA_ARGS:-}
  check_format EXTRA_ARGS text
}

# Points the symlink LINK (with PHOENIX_ROOT) at TARGET unless it already does.
ensure_link() {
  local target=$1 link="${PHOENIX_ROOT:-}$2"
  if [[ "$(readlink "${link}" 2>/dev/null || true)" != "${target}" ]]; then
    mkdir -p "$(dirname "${link}")"
    ln -sfn "${target}" "${link}"
    info "$2 -> ${target}"
  fi
}

# Fails unless the variable NAME is unset, empty or a SHA-256 hex digest; sets it (lower case, empty when unset).
require_sha256() {
  check_format "$1" sha256
  local value=${!1:-}
  printf -v "$1" '%s' "${value,,}"
}

#######################################
# Downloads URL to DEST (through DEST.part, so DEST is never a partial file) and
# checks its SHA-256 against SHA256 when given; without one it warns that the
# file is unverified. A failed download or a mismatch removes the partial file
# and fails, naming the URL.
# Arguments: URL, DEST, SHA256 (may be empty), NAME of the parameter holding it.
#######################################
download_verified() {
  local url=$1 dest=$2 sha=$3 name=$4 actual
  info "downloading ${url}"
  if ! curl -fsSL --retry 3 --connect-timeout 15 -o "${dest}.part" "${url}"; then
    rm -f "${dest}.part"
    fatal "download of ${url} failed"
  fi
  if [[ -n "${sha}" ]]; then
    actual=$(sha256sum "${dest}.part" | cut -d' ' -f1)
    if [[ "${actual}" != "${sha}" ]]; then
      rm -f "${dest}.part"
      fatal "checksum mismatch for ${url}: got ${actual}, expected ${name}=${sha}"
    fi
    info "checksum of ${url##*/} verified"
  else
    warn "${name} not set, skipping checksum verification of ${url}"
  fi
  mv -f "${dest}.part" "${dest}"
}

# Creates the system user NAME (no login, its home HOME created) unless it exists.
ensure_system_user() {
  if getent passwd "$1" >/dev/null; then
    info "user $1 already exists, skipping"
    return 0
  fi
  useradd --system --create-home --home-dir "$2" --shell /usr/sbin/nologin --user-group "$1" || fatal "useradd $1 failed"
  info "created system user $1"
}

#######################################
# Writes stdin as the systemd unit NAME (/etc/systemd/system/NAME, mode 644) and
# reloads systemd when it changed. Globals: FILE_CHANGED (1 when rewritten).
#######################################
write_systemd_unit() {
  local file="${PHOENIX_ROOT:-}/etc/systemd/system/$1"
  mkdir -p "$(dirname "${file}")"
  write_file "${file}" 644
  if ((FILE_CHANGED)); then
    info "wrote /etc/systemd/system/$1"
    systemctl daemon-reload || fatal "systemctl daemon-reload failed"
  else
    info "$1 unchanged, skipping"
  fi
}

# Quotes each argument for a systemd ExecStart= line ("..." with \, ", % and $ escaped).
systemd_quote() {
  local arg out=()
  for arg in "$@"; do
    arg=${arg//\\/\\\\}
    arg=${arg//\"/\\\"}
    arg=${arg//%/%%}
    arg=${arg//\$/\$\$}
    out+=("\"${arg}\"")
  done
  printf '%s' "${out[*]}"
}

#######################################
# Polls URL (curl -fsS) until it answers, at most TRIES times DELAY seconds apart.
# Returns 1 when it never answered (the caller says what that means).
#######################################
wait_for_http() {
  local url=$1 tries=$2 delay=$3 i
  for ((i = 1; i <= tries; i++)); do
    if curl -fsS --max-time 5 -o /dev/null "${url}" 2>/dev/null; then
      return 0
    fi
    if ((i < tries)); then
      sleep "${delay}"
    fi
  done
  return 1
}

# --- the internal CA ----------------------------------------------------------

#######################################
# Prints the root certificate CRT (PEM) and PHOENIX_CA_FINGERPRINT=<sha256 hex>
# to fd 3 (the caller's real stdout): the output contract of step_ca.sh and
# apps/ca_service.sh.
#######################################
export_root() {
  local crt=$1 fp
  [[ -s "${crt}" ]] || fatal "root certificate ${crt} not found"
  grep -q -- '-----BEGIN CERTIFICATE-----' "${crt}" || fatal "${crt} is not a PEM certificate"
  fp=$(step certificate fingerprint "${crt}") || fatal "step certificate fingerprint ${crt} failed"
  fp=${fp//[[:space:]]/}
  fp=${fp,,}
  [[ "${fp}" =~ ^[0-9a-f]{64}$ ]] || fatal "unexpected fingerprint '${fp}' from step certificate fingerprint"
  cat "${crt}" >&3
  if [[ -n "$(tail -c 1 "${crt}")" ]]; then
    printf '\n' >&3
  fi
  printf 'PHOENIX_CA_FINGERPRINT=%s\n' "${fp}" >&3
  info "exported root certificate (sha256 ${fp})"
}

# 1 when acme_certificate issued a certificate in this run.
# shellcheck disable=SC2034 # read by the scripts
CERT_CHANGED=0

#######################################
# Makes CRT and KEY (mode 600) a certificate from the internal CA at CA_URL
# (trusted through CA_ROOT_FILE) for NAME...: the first is the subject, all are
# SANs (DNS names or IP addresses). Issued by ACME (provisioner "acme", http-01):
# MODE is --webroot=DIR (a web server on port 80 serves DIR) or --standalone
# (step listens on port 80 itself). Issued only when missing, for other names
# (CRT.names lists the current ones) or when it needs renewal; otherwise left.
# Globals: CA_URL, CA_ROOT_FILE; sets CERT_CHANGED.
# Arguments: CRT KEY MODE NAME...
#######################################
acme_certificate() {
  local crt=$1 key=$2 mode=$3 subject=$4 name
  shift 3
  local want="$*"
  CERT_CHANGED=0
  if [[ -s "${crt}" && -s "${key}" && "$(cat "${crt}.names" 2>/dev/null)" == "${want}" ]]; then
    if ! step certificate needs-renewal "${crt}" >/dev/null 2>&1; then
      info "certificate ${crt} for ${want} is current, skipping"
      return 0
    fi
    info "certificate ${crt} needs renewal: issuing a new one"
  fi
  local -a args=(ca certificate "${subject}" "${crt}.new" "${key}.new" --provisioner acme "${mode}"
    --ca-url "${CA_URL}" --root "${CA_ROOT_FILE}" --force)
  for name in "$@"; do
    args+=(--san "${name}")
  done
  info "requesting a certificate for ${want} from ${CA_URL} (ACME http-01, ${mode})"
  (
    umask 077
    step "${args[@]}"
  ) || fatal "step ca certificate for ${want} failed (is ${CA_URL} reachable, and does it reach this guest on port 80?)"
  chmod 600 "${key}.new"
  mv -f "${key}.new" "${key}"
  mv -f "${crt}.new" "${crt}"
  printf '%s\n' "${want}" >"${crt}.names"
  # shellcheck disable=SC2034 # read by the scripts
  CERT_CHANGED=1
}

#######################################
# Installs and starts UNIT.timer with UNIT.service, which renews CRT and KEY
# with `step ca renew` (mTLS with the certificate itself) once
# `step certificate needs-renewal` says so, then runs RELOAD (an absolute
# command line). Checked hourly; certificates of the internal CA live 24 h.
# Globals: CA_URL, CA_ROOT_FILE. Arguments: UNIT CRT KEY RELOAD
#######################################
install_cert_renewal() {
  local unit=$1 crt=$2 key=$3 reload=$4 dir="${PHOENIX_ROOT:-}/etc/systemd/system" changed=0
  mkdir -p "${dir}"
  write_file "${dir}/${unit}.service" 644 <<UNIT
# Managed by Phoenix (${SCRIPT_NAME}); local edits are overwritten.
[Unit]
Description=Renew ${crt} from the internal CA (Phoenix)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecCondition=/usr/bin/step certificate needs-renewal ${crt}
ExecStart=/usr/bin/step ca renew --force --ca-url ${CA_URL} --root ${CA_ROOT_FILE} ${crt} ${key}
ExecStartPost=${reload}
UNIT
  ((FILE_CHANGED)) && changed=1
  write_file "${dir}/${unit}.timer" 644 <<UNIT
# Managed by Phoenix (${SCRIPT_NAME}); local edits are overwritten.
[Unit]
Description=Renew ${crt} from the internal CA, hourly check (Phoenix)

[Timer]
OnCalendar=hourly
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
UNIT
  ((FILE_CHANGED)) && changed=1
  if ((changed)); then
    info "wrote ${unit}.service and ${unit}.timer"
    systemctl daemon-reload || fatal "systemctl daemon-reload failed"
  else
    info "${unit}.timer unchanged, skipping"
  fi
  enable_unit "${unit}.timer"
  ensure_unit_active "${unit}.timer"
}

# --- routes -------------------------------------------------------------------

#######################################
# Writes FILE (mode 755): the check of every route HOST... that the guest's
# health check runs, and a person can run by hand. It asks this guest's port
# 443 for each host as a client would (curl --resolve HOST:443:127.0.0.1) and
# verifies the certificate against the internal root CA_ROOT. MODE gateway: each
# route must answer below 500 through the whole path (the gateway, Traefik, the
# service); MODE traefik: each host must be served with a certificate from the
# internal CA (Traefik's ACME order done; the service may not be up yet). Prints
# one line per route and what to look at when one fails; exits 1 if any fails.
# Globals: FILE_CHANGED. Arguments: FILE MODE CA_ROOT HOST...
#######################################
install_route_check() {
  local file=$1 mode=$2 ca_root=$3
  shift 3
  [[ "${mode}" == gateway || "${mode}" == traefik ]] || fatal "install_route_check: unknown mode ${mode}"
  mkdir -p "$(dirname "${PHOENIX_ROOT:-}${file}")"
  write_file "${PHOENIX_ROOT:-}${file}" 755 < <(route_check_text "${mode}" "${ca_root}" "$@")
  if ((FILE_CHANGED)); then
    info "wrote ${file} (the health check: ${#} route(s) through port 443)"
  else
    info "${file} unchanged, skipping"
  fi
}

# The text of the check install_route_check writes. Arguments: MODE CA_ROOT HOST...
route_check_text() {
  local hosts=""
  if (($# > 2)); then
    printf -v hosts '%q ' "${@:3}"
  fi
  printf '#!/usr/bin/env bash\n# Managed by Phoenix (%s); local edits are overwritten.\n' "${SCRIPT_NAME}"
  printf 'readonly MODE=%q CA_ROOT=%q\nreadonly HOSTS=(%s)\n' "$1" "$2" "${hosts% }"
  cat <<'CHECK'
# Checks every route as a client would, on this guest's port 443, verifying the
# certificate against the internal root; one line per route, exit 1 if any fails.
set -euo pipefail
service=nginx
if [[ "${MODE}" == traefik ]]; then service=traefik; fi
err=$(mktemp)
trap 'rm -f "${err}"' EXIT
failed=0
for host in "${HOSTS[@]}"; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout 5 --max-time 30 \
    --resolve "${host}:443:127.0.0.1" --cacert "${CA_ROOT}" "https://${host}/" 2>"${err}") && rc=0 || rc=$?
  why=$(head -n 1 "${err}")
  if ((rc == 60)) && [[ "${MODE}" == traefik ]]; then
    echo "route ${host}: FAILED: Traefik serves no certificate from the internal CA for ${host} yet (${why})." \
      "Traefik orders it by ACME http-01 once its routes are loaded, and the CA validates it at" \
      "http://${host}/.well-known/acme-challenge/: where the name resolves (the gateway, which forwards it, or this guest), it must reach this guest's port 80." \
      "If journalctl -u traefik shows 'Unable to obtain ACME certificate', Traefik does not order it again until its" \
      "configuration changes (traefik/traefik#9405): fix the cause, then systemctl restart traefik." >&2
  elif ((rc == 60)); then
    echo "route ${host}: FAILED: the gateway's certificate for ${host} does not verify against ${CA_ROOT} (${why}); nginx_gateway requests it from the internal CA" >&2
  elif ((rc != 0)); then
    echo "route ${host}: FAILED: no answer on port 443 (${why}); is ${service}.service running (systemctl status ${service})?" >&2
  elif [[ "${MODE}" == gateway ]] && ((code >= 500)); then
    echo "route ${host}: FAILED: HTTP ${code} through the gateway: nginx could not reach Traefik or verify its certificate for ${host}," \
      "or Traefik could not reach the service. /var/log/nginx/error.log says which: 'upstream SSL certificate verify error'" \
      "means Traefik serves no certificate from the internal CA for ${host} yet (run phoenix-traefik-check on the Traefik guest)." >&2
  else
    echo "route ${host}: ok (HTTP ${code}, the certificate verified against the internal root)"
    continue
  fi
  failed=1
done
exit "${failed}"
CHECK
}

# The marker the scripts test before sourcing this file.
phoenix_common_loaded() { :; }

# Sourced, $LINENO counts the script's own lines: no offset. Sent ahead of the
# script, the script's line 1 comes after this line and Phoenix's "\n": offset
# this line + 1. KEEP THIS THE LAST LINE (test/bats/common.bats checks it).
if (return 0 2>/dev/null); then PHOENIX_LINE_OFFSET=0; else PHOENIX_LINE_OFFSET=$((LINENO + 1)); fi
