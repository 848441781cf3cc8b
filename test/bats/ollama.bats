#!/usr/bin/env bats
# features/ollama.sh

load helpers

SCRIPT=features/ollama.sh
RELEASE=https://github.com/ollama/ollama/releases/download/v0.12.10

setup() {
  common_setup
  UNIT="${PHOENIX_ROOT}/etc/systemd/system/ollama.service"
  ln -sf "${STUBS_SRC}/pkg/nvidia-smi" "${STUB_BIN}/nvidia-smi"
}

@test "first run installs the pinned release checked against its sha256sum.txt, serves it and pulls the models" {
  MODELS=llama3.2:3b,qwen2.5 run_script "${SCRIPT}"
  assert_success
  assert_called "curl -fsSL .* ${RELEASE}/sha256sum.txt$"
  assert_called "curl -fsSL .* ${RELEASE}/ollama-linux-amd64.tgz$"
  assert_output_contains "checksum of ollama-linux-amd64.tgz verified"
  [ -x "${PHOENIX_ROOT}/opt/ollama/0.12.10/bin/ollama" ]
  [ "$(readlink "${PHOENIX_ROOT}/usr/local/bin/ollama")" = /opt/ollama/0.12.10/bin/ollama ]
  assert_called 'useradd --system --create-home --home-dir /var/lib/ollama --shell /usr/sbin/nologin --user-group ollama$'
  assert_file_contains "${UNIT}" "ExecStart=/opt/ollama/0.12.10/bin/ollama serve"
  assert_file_contains "${UNIT}" "Environment=OLLAMA_HOST=0.0.0.0:11434"
  assert_file_contains "${UNIT}" "Environment=OLLAMA_MODELS=/var/lib/ollama/models"
  assert_file_contains "${UNIT}" "User=ollama"
  assert_called 'systemctl start ollama.service$'
  assert_called 'curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:11434/api/version$'
  assert_called 'ollama pull llama3.2:3b$'
  assert_called 'ollama pull qwen2.5:latest$'
}

@test "second run changes nothing and says so" {
  MODELS=llama3.2:3b run_script "${SCRIPT}"
  assert_success
  export MODELS=llama3.2:3b
  local before
  before=$(snapshot_root)
  : >"${STUB_LOG}"
  run_script "${SCRIPT}"
  assert_success
  # Only the read-only probe of the API: no download, no pull, no restart.
  refute_called "curl -fsSL"
  refute_called "ollama pull"
  refute_called 'systemctl (enable|start|restart|daemon-reload)'
  [ "$(snapshot_root)" = "${before}" ]
  assert_output_contains "ollama 0.12.10 already installed in /opt/ollama/0.12.10, skipping download"
  assert_output_contains "model llama3.2:3b already pulled, skipping"
  assert_output_contains "ollama.service already running with the current configuration, skipping restart"
}

@test "without models there is nothing to pull and the second run makes no call that changes anything" {
  run_script "${SCRIPT}"
  assert_success
  refute_called "ollama pull"
  assert_second_run_changes_nothing "${SCRIPT}"
}

@test "a new OLLAMA_VERSION is installed beside the old one, and the service restarted on it" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  OLLAMA_VERSION=0.13.0 run_script "${SCRIPT}"
  assert_success
  assert_called 'curl -fsSL .*/download/v0.13.0/ollama-linux-amd64.tgz$'
  assert_file_contains "${UNIT}" "ExecStart=/opt/ollama/0.13.0/bin/ollama serve"
  [ "$(readlink "${PHOENIX_ROOT}/usr/local/bin/ollama")" = /opt/ollama/0.13.0/bin/ollama ]
  [ -x "${PHOENIX_ROOT}/opt/ollama/0.12.10/bin/ollama" ]
  assert_called 'systemctl restart ollama.service$'
}

@test "a tarball that does not match the release's sha256sum.txt installs nothing" {
  export STUB_FAIL=sha256sum.txt
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ollama.sh: ERROR: checksum mismatch for ${RELEASE}/ollama-linux-amd64.tgz"
  [ ! -e "${PHOENIX_ROOT}/opt/ollama/0.12.10" ]
  refute_called tar
}

@test "a failed download fails clearly" {
  export STUB_FAIL=curl:ollama-linux-amd64.tgz
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ollama.sh: ERROR: download of ${RELEASE}/ollama-linux-amd64.tgz failed"
  refute_called systemctl
}

@test "a server that never answers, or a model pull that fails, fails clearly" {
  STUB_FAIL=curl:/api/version MODELS=llama3.2:3b run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ollama.sh: ERROR: ollama.service does not answer http://127.0.0.1:11434/api/version after 60 s"
  STUB_FAIL=ollama:pull MODELS=nosuchmodel:1b run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ollama.sh: ERROR: ollama pull nosuchmodel:1b failed"
}

@test "without the NVIDIA userspace it refuses to run on the CPU; malformed parameters fail first" {
  rm "${STUB_BIN}/nvidia-smi"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia-smi not found: Ollama would run on the CPU; add the nvidia feature before ollama"
  ln -sf "${STUBS_SRC}/pkg/nvidia-smi" "${STUB_BIN}/nvidia-smi"
  MODELS='llama3.2:3b,$(reboot)' run_script "${SCRIPT}"
  assert_failure
  assert_output_contains 'MODELS must be comma-separated model names such as llama3.2:3b,qwen2.5:7b; got llama3.2:3b\,\$\(reboot\)'
  OLLAMA_VERSION=latest run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "OLLAMA_VERSION must be a release such as 0.12.10; got latest"
  [ ! -s "${STUB_LOG}" ]
}
