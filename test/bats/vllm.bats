#!/usr/bin/env bats
# features/vllm.sh

load helpers

SCRIPT=features/vllm.sh

setup() {
  common_setup
  export MODEL=Qwen/Qwen2.5-7B-Instruct-AWQ SERVED_MODEL_NAME=qwen2.5-7b-awq QUANTIZATION=awq_marlin
  export GPU_MEMORY_UTILIZATION=0.5 TENSOR_PARALLEL_SIZE=2 MAX_MODEL_LEN=4096 DTYPE=auto TRUST_REMOTE_CODE=true
  UNIT="${PHOENIX_ROOT}/etc/systemd/system/vllm.service"
  # The nvidia feature ran: two GPUs, nvidia-smi on PATH.
  mkdir -p "${PHOENIX_ROOT}/dev" "${PHOENIX_ROOT}/proc/driver/nvidia" "${PHOENIX_ROOT}/var/lib/stub-nvidia"
  touch "${PHOENIX_ROOT}/dev/nvidia0" "${PHOENIX_ROOT}/dev/nvidia1"
  echo "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.76.05  Release Build" >"${PHOENIX_ROOT}/proc/driver/nvidia/version"
  echo 580.76.05 >"${PHOENIX_ROOT}/var/lib/stub-nvidia/userspace"
  ln -sf "${STUBS_SRC}/pkg/nvidia-smi" "${STUB_BIN}/nvidia-smi"
}

@test "first run installs the pinned vLLM in a venv, downloads the model and serves it as vllm.service" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends python3-venv python3-dev build-essential ca-certificates curl$'
  assert_called 'useradd --system --create-home --home-dir /var/lib/vllm --shell /usr/sbin/nologin --user-group vllm$'
  assert_called "python3 -m venv ${PHOENIX_ROOT}/opt/vllm$"
  assert_called 'pip install --no-input vllm==0.10.2$'
  assert_called "hf-download Qwen/Qwen2.5-7B-Instruct-AWQ  ${PHOENIX_ROOT}/var/lib/vllm/models$"
  assert_called "chown -R vllm:vllm ${PHOENIX_ROOT}/var/lib/vllm/models$"
  assert_file_mode "${UNIT}" 644
  assert_file_contains "${UNIT}" 'ExecStart="/opt/vllm/bin/vllm" "serve" "Qwen/Qwen2.5-7B-Instruct-AWQ" "--host" "0.0.0.0" "--port" "8000" "--served-model-name" "qwen2.5-7b-awq" "--dtype" "auto" "--max-model-len" "4096" "--quantization" "awq_marlin" "--gpu-memory-utilization" "0.5" "--tensor-parallel-size" "2" "--trust-remote-code"'
  assert_file_contains "${UNIT}" "User=vllm"
  assert_file_contains "${UNIT}" "Environment=HF_HUB_CACHE=/var/lib/vllm/models"
  assert_file_contains "${UNIT}" "Environment=HF_HUB_OFFLINE=1"
  assert_called 'systemctl daemon-reload$'
  assert_called 'systemctl enable vllm.service$'
  assert_called 'systemctl start vllm.service$'
  refute_called 'systemctl restart'
  [ ! -e "${PHOENIX_ROOT}/etc/vllm/api-key.env" ]
  assert_output_contains "it answers http://127.0.0.1:8000/health once the model is loaded"
}

@test "second run changes nothing and does not restart" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "vLLM 0.10.2 already installed in /opt/vllm, skipping"
  assert_output_contains "model Qwen/Qwen2.5-7B-Instruct-AWQ@main already downloaded, skipping"
  assert_output_contains "vllm.service already running with the current configuration, skipping restart"
}

@test "new engine settings rewrite the unit and restart, without installing or downloading again" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  GPU_MEMORY_UTILIZATION=0.9 EXTRA_ARGS="--enforce-eager --limit-mm-per-prompt {\"image\":2}" run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${UNIT}" '"--gpu-memory-utilization" "0.9"'
  assert_file_contains "${UNIT}" '"--trust-remote-code" "--enforce-eager" "--limit-mm-per-prompt" "{\"image\":2}"'
  refute_called pip
  refute_called hf-download
  assert_called 'systemctl restart vllm.service$'
}

@test "a new VLLM_VERSION upgrades the venv in place and restarts; a new revision downloads it" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  VLLM_VERSION=0.11.0 MODEL_REVISION=c2f8e1a run_script "${SCRIPT}"
  assert_success
  refute_called 'python3 -m venv'
  assert_called 'pip install --no-input vllm==0.11.0$'
  assert_called "hf-download Qwen/Qwen2.5-7B-Instruct-AWQ c2f8e1a "
  assert_file_contains "${UNIT}" '"--revision" "c2f8e1a"'
  assert_called 'systemctl restart vllm.service$'
}

@test "a failed model download fails clearly and writes no unit" {
  export STUB_FAIL=hf-download
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "vllm.sh: ERROR: download of Qwen/Qwen2.5-7B-Instruct-AWQ@main from the Hugging Face Hub failed"
  [ ! -e "${UNIT}" ]
  refute_called systemctl
}

@test "a failed pip install of the pinned version fails clearly" {
  export STUB_FAIL=pip
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "vllm.sh: ERROR: pip install vllm==0.10.2 failed"
  refute_called hf-download
}

@test "without the NVIDIA userspace, or with fewer GPUs than the tensor parallel size, it fails first" {
  rm "${STUB_BIN}/nvidia-smi"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "vllm.sh: ERROR: nvidia-smi not found: vLLM needs the NVIDIA userspace (the nvidia feature, before vllm)"
  ln -sf "${STUBS_SRC}/pkg/nvidia-smi" "${STUB_BIN}/nvidia-smi"
  rm "${PHOENIX_ROOT}/dev/nvidia1"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "TENSOR_PARALLEL_SIZE 2 needs as many GPUs; nvidia-smi sees 1 in this container"
  [ ! -s "${STUB_LOG}" ]
}

@test "the API key and the Hugging Face token come from files, never from the command line or the unit" {
  printf 'sk-local-key' >"${BATS_TEST_TMPDIR}/key"
  printf 'hf_secret_token' >"${BATS_TEST_TMPDIR}/token"
  API_KEY_FILE="${BATS_TEST_TMPDIR}/key" HF_TOKEN_FILE="${BATS_TEST_TMPDIR}/token" run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${PHOENIX_ROOT}/etc/vllm/api-key.env" 600
  [ "$(cat "${PHOENIX_ROOT}/etc/vllm/api-key.env")" = "VLLM_API_KEY=sk-local-key" ]
  assert_file_contains "${UNIT}" "EnvironmentFile=-/etc/vllm/api-key.env"
  if grep -q -e sk-local-key -e hf_secret_token "${UNIT}" "${STUB_LOG}"; then fail "a secret reached the unit or a command line"; fi
  refute_output_contains sk-local-key
  # The token reached the download (the stub records what it was given).
  [ "$(cat "${PHOENIX_ROOT}/var/lib/vllm/models/models--Qwen--Qwen2.5-7B-Instruct-AWQ/.stub-token")" = hf_secret_token ]
  # Dropping the key removes the file and restarts.
  : >"${STUB_LOG}"
  run_script "${SCRIPT}"
  assert_success
  [ ! -e "${PHOENIX_ROOT}/etc/vllm/api-key.env" ]
  assert_called 'systemctl restart vllm.service$'
}

@test "malformed parameters fail before anything runs" {
  MODEL="qwen; rm -rf /" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains 'MODEL must be a Hugging Face model id such as Qwen/Qwen2.5-7B-Instruct; got qwen\;\ rm\ -rf\ /'
  GPU_MEMORY_UTILIZATION=1.5 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "GPU_MEMORY_UTILIZATION must be a share of the memory of each GPU (0 < x <= 1); got 1.5"
  PORT=80000 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "PORT must be a port number 1..65535; got 80000"
  MODEL="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "vllm.sh: ERROR: required parameter MODEL is not set"
  [ ! -s "${STUB_LOG}" ]
}
