#!/usr/bin/env bash
#
# ollama.sh: serves Ollama's API (/api/generate, /api/chat, OpenAI-compatible
# /v1/...; /api/version for checks) as ollama.service: a pinned release from
# GitHub, checked against the SHA-256 the release publishes (sha256sum.txt),
# unpacked into /opt/ollama/<version> (binary and its CUDA runners), run as the
# system user ollama, with the catalog's models pulled once the server answers
# (Ollama checks every layer it pulls against its SHA-256 digest).
#
# Needs the NVIDIA userspace (the nvidia feature, before this one) to use the
# GPUs; without it Ollama runs on the CPU, so the script refuses to go on.
#
# Idempotent: a release is downloaded only when /opt/ollama/<version> has none,
# a model is pulled only when `ollama list` lacks it, the unit is rewritten only
# when it differs; the server is restarted only when release or unit changed.
# Models the catalog no longer names are kept (remove them with `ollama rm`).
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   MODELS=llama3.2:3b bash features/ollama.sh
#   { cat features/lib/common.sh; echo; cat features/ollama.sh; } | pct exec 914 -- env MODELS=llama3.2:3b bash -s
#
# Parameters (environment variables):
# @param OLLAMA_VERSION default=0.12.10 format=ollama-version Ollama release (github.com/ollama/ollama/releases)
# @param HOST default=0.0.0.0 format=ip-address Address the API listens on
# @param PORT default=11434 format=port Port of the API
# @listens PORT http the Ollama API (plain HTTP; Traefik serves it over TLS)
# @unit ollama.service The server, enabled at boot (a template's conversion stops and disables it)
# @param MODELS optional format=model-list Models pulled from the Ollama library, comma-separated, e.g. llama3.2:3b,qwen2.5:7b
# @param MODELS_DIR default=/var/lib/ollama/models format=absolute-path Where the models are stored
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="ollama.sh"
readonly SERVICE_HOME="/var/lib/ollama"
readonly BIN_LINK="/usr/local/bin/ollama"
readonly UNIT="ollama.service"

CHANGED=0

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  OLLAMA_VERSION=${OLLAMA_VERSION:-0.12.10}
  check_format OLLAMA_VERSION ollama-version
  OLLAMA_VERSION=${OLLAMA_VERSION#v}
  server_params 11434
  MODELS=${MODELS:-}
  check_format MODELS model-list
  IFS=, read -ra MODEL_LIST <<<"${MODELS}"
  MODELS_DIR=${MODELS_DIR:-/var/lib/ollama/models}
  check_format MODELS_DIR absolute-path
  PREFIX="/opt/ollama/${OLLAMA_VERSION}"
}

install_release() {
  local bin="${PHOENIX_ROOT:-}${PREFIX}/bin/ollama"
  if [[ -x "${bin}" ]]; then
    info "ollama ${OLLAMA_VERSION} already installed in ${PREFIX}, skipping download"
  else
    local arch base asset expected
    arch=$(dpkg --print-architecture)
    [[ "${arch}" == amd64 || "${arch}" == arm64 ]] || fatal "no Ollama release for architecture ${arch}"
    asset="ollama-linux-${arch}.tgz"
    base="https://github.com/ollama/ollama/releases/download/v${OLLAMA_VERSION}"
    TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
    curl -fsSL --retry 3 --connect-timeout 15 -o "${TMP_DIR}/sha256sum.txt" "${base}/sha256sum.txt" || fatal "download of ${base}/sha256sum.txt failed"
    expected=$(awk -v a="${asset}" '$2 == a || $2 == "./" a { print tolower($1); exit }' "${TMP_DIR}/sha256sum.txt")
    [[ "${expected}" =~ ^[0-9a-f]{64}$ ]] || fatal "${base}/sha256sum.txt lists no SHA-256 for ${asset}"
    download_verified "${base}/${asset}" "${TMP_DIR}/${asset}" "${expected}" "the release's sha256sum.txt"
    install -d -m 755 "${PHOENIX_ROOT:-}${PREFIX}.phoenix"
    tar -xzf "${TMP_DIR}/${asset}" -C "${PHOENIX_ROOT:-}${PREFIX}.phoenix" || fatal "could not unpack ${asset}"
    [[ -x "${PHOENIX_ROOT:-}${PREFIX}.phoenix/bin/ollama" ]] || fatal "${asset} has no bin/ollama"
    mv -f "${PHOENIX_ROOT:-}${PREFIX}.phoenix" "${PHOENIX_ROOT:-}${PREFIX}"
    info "installed ollama ${OLLAMA_VERSION} in ${PREFIX}"
    CHANGED=1
  fi
  ensure_link "${PREFIX}/bin/ollama" "${BIN_LINK}"
}

prepare_user_and_dirs() {
  ensure_system_user ollama "${SERVICE_HOME}"
  local dir="${PHOENIX_ROOT:-}${MODELS_DIR}"
  if [[ ! -d "${dir}" ]]; then
    install -d -m 750 "${dir}"
    chown ollama:ollama "${dir}"
    info "created ${MODELS_DIR}"
  fi
}

write_unit() {
  write_systemd_unit "${UNIT}" <<UNIT
# Managed by Phoenix (features/ollama.sh); local edits are overwritten.
[Unit]
Description=Ollama API (Phoenix)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=ollama
Group=ollama
Environment=HOME=${SERVICE_HOME}
Environment=OLLAMA_HOST=${HOST}:${PORT}
Environment=OLLAMA_MODELS=${MODELS_DIR}
ExecStart=${PREFIX}/bin/ollama serve
Restart=always
RestartSec=3

[Install]
WantedBy=multi-user.target
UNIT
  if ((FILE_CHANGED)); then
    CHANGED=1
  fi
}

pull_models() {
  ((${#MODEL_LIST[@]} > 0)) || return 0
  local api="http://127.0.0.1:${PORT}"
  wait_for_http "${api}/api/version" 30 2 || fatal "ollama.service does not answer ${api}/api/version after 60 s (journalctl -u ollama)"
  local listed m
  listed=$(OLLAMA_HOST="127.0.0.1:${PORT}" "${PHOENIX_ROOT:-}${PREFIX}/bin/ollama" list | awk 'NR > 1 { print $1 }') || fatal "ollama list failed"
  for m in "${MODEL_LIST[@]}"; do
    [[ "${m}" == *:* ]] || m="${m}:latest"
    if grep -qxF -- "${m}" <<<"${listed}"; then
      info "model ${m} already pulled, skipping"
      continue
    fi
    info "pulling ${m}"
    OLLAMA_HOST="127.0.0.1:${PORT}" "${PHOENIX_ROOT:-}${PREFIX}/bin/ollama" pull "${m}" || fatal "ollama pull ${m} failed (a name the Ollama library does not have, or the network)"
  done
}

main() {
  load_params
  command -v nvidia-smi >/dev/null 2>&1 || fatal "nvidia-smi not found: Ollama would run on the CPU; add the nvidia feature before ollama"
  apt_install_missing ca-certificates curl
  install_release
  prepare_user_and_dirs
  write_unit
  enable_unit "${UNIT}"
  refresh_unit "${UNIT}" "${CHANGED}" restart "restarting ${UNIT} (release or unit changed)" \
    "${UNIT} already running with the current configuration, skipping restart"
  pull_models
  info "Ollama ${OLLAMA_VERSION} serves on ${HOST}:${PORT} (check: http://127.0.0.1:${PORT}/api/version)"
}

main "$@"
