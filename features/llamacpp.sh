#!/usr/bin/env bash
#
# llamacpp.sh: serves one GGUF model with llama.cpp's llama-server (its
# OpenAI-compatible /v1/... API and /health) as llama-server.service: a pinned
# llama.cpp release built from its source tarball with CUDA (llama.cpp publishes
# no Linux CUDA binaries) into /opt/llama.cpp/<tag>, the model downloaded from
# MODEL_URL into MODELS_DIR, the server run as the system user llamacpp with
# every layer offloaded to the container's GPUs.
#
# Needs the NVIDIA userspace and the CUDA toolkit: the nvidia feature, before
# this one, with cudaVersion (it installs /usr/local/cuda/bin/nvcc).
#
# Downloads: the source tarball is checked against LLAMACPP_SHA256 and the model
# against MODEL_SHA256 (Hugging Face shows each file's SHA-256 on its page); a
# file without one is used with a warning.
#
# Idempotent: a release is built only when /opt/llama.cpp/<tag> has none, the
# model is downloaded only when its file is missing (or fails MODEL_SHA256), the
# unit is rewritten only when it differs; the server is restarted only when one of
# them changed. Earlier releases and models are kept.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   MODEL_URL=https://huggingface.co/<org>/<repo>/resolve/main/<file>.gguf PORT=8081 bash features/llamacpp.sh
#   { cat features/lib/common.sh; echo; cat features/llamacpp.sh; } | pct exec 917 -- env MODEL_URL=... bash -s
#
# Parameters (environment variables):
# @param LLAMACPP_VERSION default=b6910 format=llamacpp-tag llama.cpp release tag (github.com/ggml-org/llama.cpp/releases), built from source
# @param LLAMACPP_SHA256 optional format=sha256 Expected SHA-256 of the release's source tarball
# @param CUDA_ARCHITECTURES default=native format=cuda-architectures CMAKE_CUDA_ARCHITECTURES of the build (native: the GPUs this container sees)
# @param MODEL_URL required format=gguf-url https:// URL of the GGUF model file served
# @param MODEL_SHA256 optional format=sha256 Expected SHA-256 of the model file
# @param ALIAS optional format=model-name Model name clients ask for (default: the file name)
# @param HOST default=0.0.0.0 format=ip-address Address the API listens on
# @param PORT default=8080 format=port Port of the API
# @listens PORT http the llama.cpp server API (plain HTTP; Traefik serves it over TLS)
# @unit llama-server.service The server, enabled at boot (a template's conversion stops and disables it)
# @param CONTEXT_SIZE default=4096 format=count llama-server --ctx-size (tokens)
# @param GPU_LAYERS default=999 format=count llama-server --n-gpu-layers: layers offloaded to the GPUs (999: all)
# @param EXTRA_ARGS optional format=text Further llama-server arguments separated by spaces, e.g. --flash-attn on
# @param MODELS_DIR default=/var/lib/llama.cpp/models format=absolute-path Where the models are stored
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="llamacpp.sh"
readonly SERVICE_HOME="/var/lib/llama.cpp"
readonly NVCC="/usr/local/cuda/bin/nvcc"
readonly BIN_LINK="/usr/local/bin/llama-server"
readonly UNIT="llama-server.service"

CHANGED=0

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  require_params MODEL_URL
  LLAMACPP_VERSION=${LLAMACPP_VERSION:-b6910}
  check_format LLAMACPP_VERSION llamacpp-tag
  require_sha256 LLAMACPP_SHA256
  CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-native}
  check_format CUDA_ARCHITECTURES cuda-architectures
  check_format MODEL_URL gguf-url
  require_sha256 MODEL_SHA256
  MODEL_FILE=${MODEL_URL%%\?*}
  MODEL_FILE=${MODEL_FILE##*/}
  ALIAS=${ALIAS:-}
  check_format ALIAS model-name
  server_params 8080
  CONTEXT_SIZE=${CONTEXT_SIZE:-4096}
  check_format CONTEXT_SIZE count
  GPU_LAYERS=${GPU_LAYERS:-999}
  check_format GPU_LAYERS count
  MODELS_DIR=${MODELS_DIR:-/var/lib/llama.cpp/models}
  check_format MODELS_DIR absolute-path
  PREFIX="/opt/llama.cpp/${LLAMACPP_VERSION}"
}

check_toolchain() {
  command -v nvidia-smi >/dev/null 2>&1 || fatal "nvidia-smi not found: llama.cpp needs the NVIDIA userspace (the nvidia feature, before llamacpp)"
  [[ -x "${PHOENIX_ROOT:-}${NVCC}" ]] || fatal "llama.cpp is built with CUDA, but ${NVCC} is missing: give the nvidia feature cudaVersion (it installs the CUDA toolkit)"
}

build_release() {
  local server="${PHOENIX_ROOT:-}${PREFIX}/bin/llama-server"
  if [[ -x "${server}" ]]; then
    info "llama.cpp ${LLAMACPP_VERSION} already built in ${PREFIX}, skipping"
  else
    apt_install_missing build-essential cmake ca-certificates curl
    local url="https://github.com/ggml-org/llama.cpp/archive/refs/tags/${LLAMACPP_VERSION}.tar.gz"
    TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
    download_verified "${url}" "${TMP_DIR}/src.tar.gz" "${LLAMACPP_SHA256}" LLAMACPP_SHA256
    mkdir -p "${TMP_DIR}/src"
    tar -xzf "${TMP_DIR}/src.tar.gz" -C "${TMP_DIR}/src" --strip-components=1 || fatal "could not unpack ${url}"
    info "building llama-server ${LLAMACPP_VERSION} with CUDA (architectures: ${CUDA_ARCHITECTURES}); this takes a while"
    cmake -S "${TMP_DIR}/src" -B "${TMP_DIR}/src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
      "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}" "-DCMAKE_CUDA_COMPILER=${PHOENIX_ROOT:-}${NVCC}" ||
      fatal "cmake could not configure llama.cpp ${LLAMACPP_VERSION} (see the messages above)"
    cmake --build "${TMP_DIR}/src/build" --config Release --target llama-server -j "$(nproc)" ||
      fatal "the build of llama.cpp ${LLAMACPP_VERSION} failed (see the compiler messages above)"
    install -D -m 755 "${TMP_DIR}/src/build/bin/llama-server" "${server}"
    info "installed ${PREFIX}/bin/llama-server"
    CHANGED=1
  fi
  ensure_link "${PREFIX}/bin/llama-server" "${BIN_LINK}"
}

download_model() {
  local dir="${PHOENIX_ROOT:-}${MODELS_DIR}" file
  file="${dir}/${MODEL_FILE}"
  if [[ -s "${file}" ]]; then
    if [[ -z "${MODEL_SHA256}" ]]; then
      info "model ${MODEL_FILE} already downloaded, skipping"
      return 0
    fi
    if [[ "$(sha256sum "${file}" | cut -d' ' -f1)" == "${MODEL_SHA256}" ]]; then
      info "model ${MODEL_FILE} already downloaded (checksum verified), skipping"
      return 0
    fi
    warn "${MODELS_DIR}/${MODEL_FILE} does not match MODEL_SHA256: downloading it again"
  fi
  install -d -m 755 "${dir}"
  download_verified "${MODEL_URL}" "${file}" "${MODEL_SHA256}" MODEL_SHA256
  chmod 644 "${file}"
  CHANGED=1
}

write_unit() {
  local -a args=("${PREFIX}/bin/llama-server" --model "${MODELS_DIR}/${MODEL_FILE}" --host "${HOST}" --port "${PORT}"
    --ctx-size "${CONTEXT_SIZE}" --n-gpu-layers "${GPU_LAYERS}")
  local -a extra=()
  [[ -n "${ALIAS}" ]] && args+=(--alias "${ALIAS}")
  read -ra extra <<<"${EXTRA_ARGS}"
  write_systemd_unit "${UNIT}" <<UNIT
# Managed by Phoenix (features/llamacpp.sh); local edits are overwritten.
[Unit]
Description=llama.cpp server for ${MODEL_FILE} (Phoenix)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=llamacpp
Group=llamacpp
Environment=HOME=${SERVICE_HOME}
ExecStart=$(systemd_quote "${args[@]}" "${extra[@]}")
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
  if ((FILE_CHANGED)); then
    CHANGED=1
  fi
}

main() {
  load_params
  check_toolchain
  build_release
  ensure_system_user llamacpp "${SERVICE_HOME}"
  download_model
  write_unit
  enable_unit "${UNIT}"
  refresh_unit "${UNIT}" "${CHANGED}" restart "restarting ${UNIT} (release, model or unit changed)" \
    "${UNIT} already running with the current configuration, skipping restart"
  info "llama-server serves ${ALIAS:-${MODEL_FILE}} on ${HOST}:${PORT}; it answers http://127.0.0.1:${PORT}/health once the model is loaded"
}

main "$@"
