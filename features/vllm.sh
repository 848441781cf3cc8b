#!/usr/bin/env bash
#
# vllm.sh: serves one model with vLLM's OpenAI-compatible API (/v1/completions,
# /v1/chat/completions, /v1/embeddings, /v1/models; /health for checks) as
# vllm.service: a pinned vLLM release from PyPI in the virtual environment
# /opt/vllm, the model downloaded from the Hugging Face Hub ahead of the start
# (so a failed download fails here, not in a restart loop), the server run as
# the system user vllm with the catalog's engine settings.
#
# Needs the NVIDIA userspace (the nvidia feature, before this one) and at least
# TENSOR_PARALLEL_SIZE GPUs in the container. The server loads the model in the
# background after the start (minutes for large models): the guest's health check
# (curl -fsS http://127.0.0.1:<port>/health) is what waits for it.
#
# Downloads: pip verifies every file against the SHA-256 PyPI publishes for it;
# MODEL_REVISION (a commit hash of the model repository) pins the model's files.
#
# Idempotent: the venv, the vLLM version, the model (a marker per model and
# revision), the API key file and the unit are each checked first; the server is
# restarted only when one of them changed.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   MODEL=Qwen/Qwen2.5-7B-Instruct-AWQ QUANTIZATION=awq_marlin bash features/vllm.sh
#   { cat features/lib/common.sh; echo; cat features/vllm.sh; } | pct exec 910 -- env MODEL=Qwen/Qwen2.5-7B-Instruct-AWQ bash -s
#
# Parameters (environment variables):
# @param MODEL required format=hf-model Hugging Face model served, e.g. Qwen/Qwen2.5-7B-Instruct-AWQ
# @param MODEL_REVISION optional format=git-ref Revision of the model repository (a commit hash pins its files; default: main when first downloaded)
# @param SERVED_MODEL_NAME optional format=model-name Model name clients ask for (default: MODEL)
# @param VLLM_VERSION default=0.10.2 format=pypi-version vLLM release installed from PyPI into /opt/vllm
# @param HOST default=0.0.0.0 format=ip-address Address the API listens on
# @param PORT default=8000 format=port Port of the API
# @listens PORT http the OpenAI-compatible API of vLLM (plain HTTP; Traefik serves it over TLS)
# @unit vllm.service The server, enabled at boot (a template's conversion stops and disables it: a clone serves only what its own vllm step says)
# @gpu-share GPU_MEMORY_UTILIZATION 0.9 vLLM reserves this share of each of its GPUs' memory when it starts and does not start without it free (0.9, its default, when unset); the catalog orders and checks the servers on one GPU by it
# @param DTYPE optional format=dtype vllm serve --dtype (auto, half, bfloat16 ...)
# @param MAX_MODEL_LEN optional format=positive-int vllm serve --max-model-len (tokens)
# @param QUANTIZATION optional format=quantization vllm serve --quantization (awq_marlin, fp8 ...)
# @param GPU_MEMORY_UTILIZATION optional format=fraction vllm serve --gpu-memory-utilization: share of each GPU's memory the server takes (0 < x <= 1)
# @param TENSOR_PARALLEL_SIZE default=1 format=positive-int vllm serve --tensor-parallel-size: GPUs the model is split over
# @param TRUST_REMOTE_CODE default=false format=bool vllm serve --trust-remote-code: run Python code from the model repository
# @param EXTRA_ARGS optional format=text Further vllm serve arguments separated by spaces, e.g. --enforce-eager
# @param DOWNLOAD_DIR default=/var/lib/vllm/models format=absolute-path Directory of the downloaded models (Hugging Face cache layout)
# @secret API_KEY optional Key clients must send (Authorization: Bearer); /health stays open
# @secret HF_TOKEN optional Hugging Face token, for gated models
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="vllm.sh"
readonly VENV="/opt/vllm"
readonly SERVICE_HOME="/var/lib/vllm"
readonly KEY_FILE="/etc/vllm/api-key.env"
readonly UNIT="vllm.service"

CHANGED=0

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  require_params MODEL
  check_format MODEL hf-model
  MODEL_REVISION=${MODEL_REVISION:-}
  check_format MODEL_REVISION git-ref
  SERVED_MODEL_NAME=${SERVED_MODEL_NAME:-}
  check_format SERVED_MODEL_NAME model-name
  VLLM_VERSION=${VLLM_VERSION:-0.10.2}
  check_format VLLM_VERSION pypi-version
  server_params 8000
  DTYPE=${DTYPE:-}
  check_format DTYPE dtype
  MAX_MODEL_LEN=${MAX_MODEL_LEN:-}
  check_format MAX_MODEL_LEN positive-int
  QUANTIZATION=${QUANTIZATION:-}
  check_format QUANTIZATION quantization
  GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-}
  check_format GPU_MEMORY_UTILIZATION fraction
  TENSOR_PARALLEL_SIZE=${TENSOR_PARALLEL_SIZE:-1}
  check_format TENSOR_PARALLEL_SIZE positive-int
  TRUST_REMOTE_CODE=${TRUST_REMOTE_CODE:-false}
  check_format TRUST_REMOTE_CODE bool
  DOWNLOAD_DIR=${DOWNLOAD_DIR:-/var/lib/vllm/models}
  check_format DOWNLOAD_DIR absolute-path
  API_KEY_FILE=${API_KEY_FILE:-}
  HF_TOKEN_FILE=${HF_TOKEN_FILE:-}
}

check_gpus() {
  command -v nvidia-smi >/dev/null 2>&1 || fatal "nvidia-smi not found: vLLM needs the NVIDIA userspace (the nvidia feature, before vllm)"
  local count
  count=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  ((count >= TENSOR_PARALLEL_SIZE)) || fatal "TENSOR_PARALLEL_SIZE ${TENSOR_PARALLEL_SIZE} needs as many GPUs; nvidia-smi sees ${count} in this container (catalog gpus)"
  info "${count} GPU(s) visible"
}

installed_version() {
  [[ -x "${PHOENIX_ROOT:-}${VENV}/bin/python" ]] || return 0
  "${PHOENIX_ROOT:-}${VENV}/bin/python" -m pip show vllm 2>/dev/null | awk '$1 == "Version:" { print $2; exit }' || true
}

install_vllm() {
  apt_install_missing python3-venv python3-dev build-essential ca-certificates curl
  ensure_system_user vllm "${SERVICE_HOME}"
  local current
  current=$(installed_version)
  if [[ "${current}" == "${VLLM_VERSION}" ]]; then
    info "vLLM ${VLLM_VERSION} already installed in ${VENV}, skipping"
    return 0
  fi
  if [[ ! -x "${PHOENIX_ROOT:-}${VENV}/bin/python" ]]; then
    python3 -m venv "${PHOENIX_ROOT:-}${VENV}" || fatal "python3 -m venv ${VENV} failed"
    info "created the virtual environment ${VENV}"
  fi
  info "installing vLLM ${VLLM_VERSION} (installed: ${current:-none})"
  "${PHOENIX_ROOT:-}${VENV}/bin/python" -m pip install --no-input "vllm==${VLLM_VERSION}" || fatal "pip install vllm==${VLLM_VERSION} failed (network, or no wheel of that release for this Python)"
  CHANGED=1
}

# The model's files, downloaded once per model and revision (a marker records each completed download).
download_model() {
  local dir="${PHOENIX_ROOT:-}${DOWNLOAD_DIR}"
  local marker="${dir}/.phoenix-downloaded-${MODEL//\//--}@${MODEL_REVISION:-main}"
  if [[ -f "${marker}" ]]; then
    info "model ${MODEL}@${MODEL_REVISION:-main} already downloaded, skipping"
    return 0
  fi
  install -d -m 755 "${dir}"
  info "downloading ${MODEL}@${MODEL_REVISION:-main} into ${DOWNLOAD_DIR}"
  local token=""
  if [[ -n "${HF_TOKEN_FILE}" ]]; then
    token=$(cat "${HF_TOKEN_FILE}")
  fi
  # shellcheck disable=SC2016 # Python code, not shell
  if ! HF_TOKEN=${token} "${PHOENIX_ROOT:-}${VENV}/bin/python" -c 'import sys
from huggingface_hub import snapshot_download
snapshot_download(repo_id=sys.argv[1], revision=sys.argv[2] or None, cache_dir=sys.argv[3])' "${MODEL}" "${MODEL_REVISION}" "${dir}"; then
    fatal "download of ${MODEL}@${MODEL_REVISION:-main} from the Hugging Face Hub failed (network, a wrong model id or revision, or a gated model without HF_TOKEN)"
  fi
  chown -R vllm:vllm "${dir}"
  touch "${marker}"
  CHANGED=1
}

# The API key as an environment file only root and systemd read; removed when the catalog drops the key.
write_api_key() {
  local file="${PHOENIX_ROOT:-}${KEY_FILE}"
  if [[ -z "${API_KEY_FILE}" ]]; then
    if [[ -e "${file}" ]]; then
      rm -f "${file}"
      info "removed ${KEY_FILE}: the API no longer requires a key"
      CHANGED=1
    fi
    return 0
  fi
  install -d -m 700 "$(dirname "${file}")"
  local key
  key=$(cat "${API_KEY_FILE}")
  [[ -n "${key}" && "${key}" != *$'\n'* ]] || fatal "API_KEY is empty or spans lines"
  write_file "${file}" 600 <<<"VLLM_API_KEY=${key}"
  if ((FILE_CHANGED)); then
    info "wrote ${KEY_FILE}"
    CHANGED=1
  fi
}

serve_args() {
  local -a args=("${VENV}/bin/vllm" serve "${MODEL}" --host "${HOST}" --port "${PORT}")
  local -a extra=()
  [[ -n "${MODEL_REVISION}" ]] && args+=(--revision "${MODEL_REVISION}")
  [[ -n "${SERVED_MODEL_NAME}" ]] && args+=(--served-model-name "${SERVED_MODEL_NAME}")
  [[ -n "${DTYPE}" ]] && args+=(--dtype "${DTYPE}")
  [[ -n "${MAX_MODEL_LEN}" ]] && args+=(--max-model-len "${MAX_MODEL_LEN}")
  [[ -n "${QUANTIZATION}" ]] && args+=(--quantization "${QUANTIZATION}")
  [[ -n "${GPU_MEMORY_UTILIZATION}" ]] && args+=(--gpu-memory-utilization "${GPU_MEMORY_UTILIZATION}")
  args+=(--tensor-parallel-size "${TENSOR_PARALLEL_SIZE}")
  [[ "${TRUST_REMOTE_CODE}" == true ]] && args+=(--trust-remote-code)
  read -ra extra <<<"${EXTRA_ARGS}"
  systemd_quote "${args[@]}" "${extra[@]}"
}

write_unit() {
  write_systemd_unit "${UNIT}" <<UNIT
# Managed by Phoenix (features/vllm.sh); local edits are overwritten.
[Unit]
Description=vLLM OpenAI-compatible API for ${MODEL} (Phoenix)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=vllm
Group=vllm
Environment=HOME=${SERVICE_HOME}
# The model (weights, configuration, tokenizer) was downloaded by the feature into this cache: a restart never
# depends on the Hub.
Environment=HF_HUB_CACHE=${DOWNLOAD_DIR}
Environment=HF_HUB_OFFLINE=1
EnvironmentFile=-${KEY_FILE}
ExecStart=$(serve_args)
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
  if ((FILE_CHANGED)); then
    CHANGED=1
  fi
}

main() {
  load_params
  check_gpus
  install_vllm
  download_model
  write_api_key
  write_unit
  enable_unit "${UNIT}"
  refresh_unit "${UNIT}" "${CHANGED}" restart "restarting ${UNIT} (vLLM, model, key or unit changed)" \
    "${UNIT} already running with the current configuration, skipping restart"
  info "vLLM serves ${SERVED_MODEL_NAME:-${MODEL}} on ${HOST}:${PORT}; it answers http://127.0.0.1:${PORT}/health once the model is loaded"
}

main "$@"
