#!/usr/bin/env bats
# Every parameter of every feature and application script, from the scripts'
# own headers (`# @param NAME MODE format=F ...`): a malformed value (a line
# break, a separator of where the value goes, a relative path) is refused with
# a message naming the parameter and a non-zero exit, before anything changes:
# no stubbed command runs and the fake root stays as it was. A new script or
# parameter is covered without touching this file.

load helpers

# A valid value per format (features/lib/common.sh PHOENIX_FORMAT), for the
# parameters a test does not break.
declare -gA EXAMPLE=(
  [text]='Phoenix Test CA'
  [bool]='true'
  [seconds]='30'
  [hostname]='ca.internal.example'
  [dns-names]='ca.internal.example,10.0.0.10'
  [server-names]='a.internal b.internal'
  [packages]='jq vim'
  [locale]='en_US.UTF-8'
  [timezone]='Etc/UTC'
  [user-name]='ops'
  [ssh-public-key]='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPhoenix ops@host'
  [absolute-path]='/srv/phoenix'
  [file-name]='phoenix_test_ca'
  [listen-address]=':9000'
  [https-url]='https://10.0.0.10:9000'
  [http-url]='http://10.0.0.12:80'
  [release-tag]='v3.3.4'
  [sha256]='0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
  [fingerprint]='0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
  [email]='admin@example.com'
  [lines]='10.0.0.13:/export /mnt/export'
  [port]='8000'
  [ip-address]='0.0.0.0'
  [positive-int]='2'
  [count]='4096'
  [driver-version]='580.76.05'
  [index-list]='0,1'
  [runfile-url]='https://us.download.nvidia.com/XFree86/Linux-x86_64/580.76.05/NVIDIA-Linux-x86_64-580.76.05.run'
  [cuda-version]='12.8'
  [cuda-architectures]='86;120'
  [hf-model]='Qwen/Qwen2.5-7B-Instruct-AWQ'
  [git-ref]='main'
  [model-name]='qwen2.5-7b'
  [model-list]='llama3.2:3b,qwen2.5:7b'
  [gguf-url]='https://huggingface.co/org/repo/resolve/main/model-Q4_K_M.gguf'
  [pypi-version]='0.10.2'
  [ollama-version]='0.12.10'
  [llamacpp-tag]='b6910'
  [dtype]='bfloat16'
  [quantization]='awq_marlin'
  [fraction]='0.9'
  [image]='portainer/portainer-ce:2.21.5'
)

# Appended to a valid value: a line break (a second config line), a control
# character, separators of config lines, mount options, fstab and the shell.
LINE_BREAK=$'\nlxc.hook.pre-start: /bin/sh'
# shellcheck disable=SC2016 # the $(...) is meant literally: a value must not run it
SEPARATORS=($'\r' ',mp=/etc' ' ; $(touch /tmp/phoenix-pwned)' '/../etc')

# The scripts' parameter lines: "<script> <NAME> <mode> <format>" (text when a header names none).
declared_params() {
  local f line
  for f in "${REPO_ROOT}"/features/*.sh "${REPO_ROOT}"/features/apps/*.sh; do
    while IFS= read -r line; do
      [[ "${line}" =~ ^#\ @(param|secret)\ ([A-Z][A-Z0-9_]*)\ (required|optional|default=[^ ]*)(\ format=([a-z0-9-]+))?\  ]] || continue
      printf '%s %s %s %s %s\n' "${f#"${REPO_ROOT}"/}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[5]:-text}" "${BASH_REMATCH[1]}"
    done <"${f}"
  done
}

# Whether each VALUE has its FORMAT, asked of check_format itself, in one bash
# run (a subshell per value: it exits on a refusal). Reads FORMAT and VALUE
# pairs, NUL-separated, on stdin; prints one 1 (has it) or 0 per pair.
formats_admit() {
  bash -c '
    SCRIPT_NAME=test
    source "$1"
    while IFS= read -r -d "" format && IFS= read -r -d "" PHOENIX_VALUE; do
      if (check_format PHOENIX_VALUE "${format}") >/dev/null 2>&1; then printf 1; else printf 0; fi
    done' _ "${REPO_ROOT}/features/lib/common.sh"
}

has_format() { [[ "$(printf '%s\0%s\0' "$2" "$1" | formats_admit)" == 1 ]]; }

# The malformed values tried on a parameter, by format: a line break, and a
# relative path where the format is a path, else the first separator it refuses.
declare -gA MALFORMED=()
choose_malformed() {
  local -a formats=("${!EXAMPLE[@]}") cases=() verdicts
  local format sep i=0 n
  for format in "${formats[@]}"; do
    cases+=("${format}" "${EXAMPLE[${format}]}${LINE_BREAK}" "${format}" relative/path)
    for sep in "${SEPARATORS[@]}"; do cases+=("${format}" "${EXAMPLE[${format}]}${sep}"); done
  done
  mapfile -t verdicts < <(printf '%s\0' "${cases[@]}" | formats_admit | fold -w1)
  n=$((2 + ${#SEPARATORS[@]}))
  for format in "${formats[@]}"; do
    local -a picked=()
    [[ "${verdicts[i]}" == 1 ]] || picked+=("${cases[2 * i + 1]}")
    if [[ "${verdicts[i + 1]}" == 0 ]]; then
      picked+=(relative/path)
    else
      for ((j = 2; j < n; j++)); do
        if [[ "${verdicts[i + j]}" == 0 ]]; then
          picked+=("${cases[2 * (i + j) + 1]}")
          break
        fi
      done
    fi
    MALFORMED[${format}]=$(printf '%s\0' "${picked[@]}" | base64 -w0)
    i=$((i + n))
  done
}

@test "every format has a valid example here, and every header names a known format" {
  local format script name mode
  # shellcheck source=../../features/lib/common.sh
  source <(sed -n '/^declare -A PHOENIX_FORMAT=/,/^$/p' "${REPO_ROOT}/features/lib/common.sh")
  for format in "${!PHOENIX_FORMAT[@]}" lines; do
    [[ -n "${EXAMPLE[${format}]:-}" ]] || fail "no example for format ${format}"
    has_format "${EXAMPLE[${format}]}" "${format}" || fail "the example for ${format} does not pass: ${EXAMPLE[${format}]}"
  done
  while read -r script name mode format _; do
    [[ -n "${EXAMPLE[${format}]:-}" ]] || fail "${script} ${name}: unknown format ${format}"
  done < <(declared_params)
}

@test "every script refuses every malformed parameter, naming it, before changing anything" {
  local script name mode format kind bad checked=0 other before
  local -a params
  mapfile -t params < <(declared_params)
  ((${#params[@]} > 10))
  choose_malformed
  before=$(snapshot_root)
  for entry in "${params[@]}"; do
    read -r script name mode format kind <<<"${entry}"
    [[ "${kind}" == param ]] || continue
    local -a bads
    mapfile -d '' -t bads < <(base64 -d <<<"${MALFORMED[${format}]}")
    ((${#bads[@]} > 0)) || fail "no malformed value for format ${format}"
    for bad in "${bads[@]}"; do
      # Every other parameter of the script valid, secrets as root-only files, the one under test malformed.
      local -a env=(PATH="${TEST_PATH}" "${name}=${bad}")
      for other in "${params[@]}"; do
        local o_script o_name o_format o_kind
        read -r o_script o_name _ o_format o_kind <<<"${other}"
        [[ "${o_script}" == "${script}" && "${o_name}" != "${name}" ]] || continue
        if [[ "${o_kind}" == secret ]]; then
          printf 'secret' >"${BATS_TEST_TMPDIR}/${o_name}"
          chmod 600 "${BATS_TEST_TMPDIR}/${o_name}"
          env+=("${o_name}_FILE=${BATS_TEST_TMPDIR}/${o_name}")
        else
          env+=("${o_name}=${EXAMPLE[${o_format}]}")
        fi
      done
      : >"${STUB_LOG}"
      run env -i "${env[@]}" PHOENIX_ROOT="${PHOENIX_ROOT}" STUB_LOG="${STUB_LOG}" STUBS_SRC="${STUBS_SRC}" bash "${REPO_ROOT}/${script}"
      [[ "${status}" -ne 0 ]] || fail "${script} accepted ${name}=$(printf '%q' "${bad}")" "${output}"
      [[ "${output}" == *"ERROR: ${name}"* ]] || fail "${script} refused ${name}=$(printf '%q' "${bad}") without naming it" "${output}"
      [[ ! -s "${STUB_LOG}" ]] || fail "${script} ran commands before refusing ${name}=$(printf '%q' "${bad}"):" "$(cat "${STUB_LOG}")"
      [[ "$(snapshot_root)" == "${before}" ]] || fail "${script} changed files before refusing ${name}=$(printf '%q' "${bad}")"
      checked=$((checked + 1))
    done
  done
  ((checked > 40)) || fail "only ${checked} refusals checked"
}
