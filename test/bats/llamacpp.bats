#!/usr/bin/env bats
# features/llamacpp.sh

load helpers

SCRIPT=features/llamacpp.sh
MODEL=https://huggingface.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/resolve/main/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf
SOURCE=https://github.com/ggml-org/llama.cpp/archive/refs/tags/b6910.tar.gz

setup() {
  common_setup
  export MODEL_URL=${MODEL} PORT=8081
  UNIT="${PHOENIX_ROOT}/etc/systemd/system/llama-server.service"
  # The nvidia feature ran with cudaVersion: nvidia-smi on PATH, nvcc installed.
  ln -sf "${STUBS_SRC}/pkg/nvidia-smi" "${STUB_BIN}/nvidia-smi"
  mkdir -p "${PHOENIX_ROOT}/usr/local/cuda/bin"
  printf '#!/usr/bin/env bash\n' >"${PHOENIX_ROOT}/usr/local/cuda/bin/nvcc"
  chmod 755 "${PHOENIX_ROOT}/usr/local/cuda/bin/nvcc"
}

served_sha() { printf 'stub download of %s\n' "$1" | sha256sum | cut -d' ' -f1; }

@test "first run builds the pinned release with CUDA, downloads the model and serves it" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends build-essential cmake ca-certificates curl$'
  assert_called "curl -fsSL .* ${SOURCE}$"
  assert_called 'tar -xzf .* --strip-components=1$'
  assert_called "cmake -S .* -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_CUDA_ARCHITECTURES=native -DCMAKE_CUDA_COMPILER=${PHOENIX_ROOT}/usr/local/cuda/bin/nvcc$"
  assert_called 'cmake --build .* --config Release --target llama-server -j [0-9]+$'
  [ "$("${PHOENIX_ROOT}/opt/llama.cpp/b6910/bin/llama-server")" = "version: 6910 (stub)" ]
  [ "$(readlink "${PHOENIX_ROOT}/usr/local/bin/llama-server")" = /opt/llama.cpp/b6910/bin/llama-server ]
  assert_called "curl -fsSL .* ${MODEL}$"
  assert_file_mode "${PHOENIX_ROOT}/var/lib/llama.cpp/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf" 644
  assert_output_contains "MODEL_SHA256 not set, skipping checksum verification"
  assert_file_contains "${UNIT}" 'ExecStart="/opt/llama.cpp/b6910/bin/llama-server" "--model" "/var/lib/llama.cpp/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf" "--host" "0.0.0.0" "--port" "8081" "--ctx-size" "4096" "--n-gpu-layers" "999"'
  assert_file_contains "${UNIT}" "User=llamacpp"
  assert_called 'systemctl start llama-server.service$'
  assert_output_contains "it answers http://127.0.0.1:8081/health once the model is loaded"
}

@test "second run changes nothing and says so" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "llama.cpp b6910 already built in /opt/llama.cpp/b6910, skipping"
  assert_output_contains "model Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf already downloaded, skipping"
  assert_output_contains "llama-server.service already running with the current configuration, skipping restart"
}

@test "checksums: a verified model is not downloaded again; a mismatch fails and leaves no file" {
  MODEL_SHA256=$(served_sha "${MODEL}") run_script "${SCRIPT}"
  assert_success
  assert_output_contains "checksum of Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf verified"
  export MODEL_SHA256
  MODEL_SHA256=$(served_sha "${MODEL}")
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "already downloaded (checksum verified), skipping"
  local other=https://huggingface.co/org/repo/resolve/main/other.gguf
  MODEL_URL=${other} MODEL_SHA256=$(printf 'a%.0s' {1..64}) run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "llamacpp.sh: ERROR: checksum mismatch for ${other}"
  [ ! -e "${PHOENIX_ROOT}/var/lib/llama.cpp/models/other.gguf" ]
  [ ! -e "${PHOENIX_ROOT}/var/lib/llama.cpp/models/other.gguf.part" ]
}

@test "a new release is built beside the old one and the service restarted on it" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  LLAMACPP_VERSION=b7000 run_script "${SCRIPT}"
  assert_success
  assert_called 'curl .*/archive/refs/tags/b7000.tar.gz$'
  assert_file_contains "${UNIT}" 'ExecStart="/opt/llama.cpp/b7000/bin/llama-server"'
  [ -x "${PHOENIX_ROOT}/opt/llama.cpp/b6910/bin/llama-server" ]
  refute_called "curl .*\\.gguf$"
  assert_called 'systemctl restart llama-server.service$'
}

@test "a failed download or build fails clearly" {
  STUB_FAIL=curl:.gguf run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "llamacpp.sh: ERROR: download of ${MODEL} failed"
  [ ! -e "${UNIT}" ]
  rm -rf "${PHOENIX_ROOT}/opt"
  STUB_FAIL=curl:/archive/ run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "llamacpp.sh: ERROR: download of ${SOURCE} failed"
  STUB_FAIL=cmake:build run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "llamacpp.sh: ERROR: the build of llama.cpp b6910 failed"
  [ ! -e "${PHOENIX_ROOT}/opt/llama.cpp/b6910/bin/llama-server" ]
}

@test "without nvcc (no cudaVersion on the nvidia feature) it says what to add" {
  rm "${PHOENIX_ROOT}/usr/local/cuda/bin/nvcc"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "llama.cpp is built with CUDA, but /usr/local/cuda/bin/nvcc is missing: give the nvidia feature cudaVersion"
  [ ! -s "${STUB_LOG}" ]
}

@test "malformed parameters fail before anything runs" {
  MODEL_URL=http://example.com/m.gguf run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "MODEL_URL must be an https:// URL of a .gguf file; got http://example.com/m.gguf"
  LLAMACPP_VERSION=master run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "LLAMACPP_VERSION must be a release tag such as b6910; got master"
  MODEL_SHA256=abc run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "MODEL_SHA256 must be a SHA-256 hex digest (64 hex digits); got abc"
  [ ! -s "${STUB_LOG}" ]
}
