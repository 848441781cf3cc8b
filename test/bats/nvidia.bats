#!/usr/bin/env bats
# features/nvidia.sh

load helpers

SCRIPT=features/nvidia.sh
RUNFILE_URL_DEFAULT=https://us.download.nvidia.com/XFree86/Linux-x86_64/580.76.05/NVIDIA-Linux-x86_64-580.76.05.run

# node_module VERSION: the node's kernel module as the container sees it (/proc is the node's).
node_module() {
  mkdir -p "${PHOENIX_ROOT}/proc/driver/nvidia"
  printf 'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Jul 24 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n' "$1" \
    >"${PHOENIX_ROOT}/proc/driver/nvidia/version"
}

# devices N...: the device nodes Proxmox creates from the container's devN entries.
devices() {
  mkdir -p "${PHOENIX_ROOT}/dev"
  touch "${PHOENIX_ROOT}/dev/nvidiactl" "${PHOENIX_ROOT}/dev/nvidia-uvm" "${PHOENIX_ROOT}/dev/nvidia-uvm-tools"
  local g
  for g in "$@"; do touch "${PHOENIX_ROOT}/dev/nvidia${g}"; done
}

setup() {
  common_setup
  export NVIDIA_DRIVER_VERSION=580.76.05 NVIDIA_GPUS=0,1
  node_module 580.76.05
  devices 0 1
  mkdir -p "${PHOENIX_ROOT}/etc"
  printf 'ID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n' >"${PHOENIX_ROOT}/etc/os-release"
}

# The SHA-256 of what the curl stub serves for URL.
served_sha() {
  local f="${BATS_TEST_TMPDIR}/served"
  env PATH="${TEST_PATH}" curl -o "${f}" "$1" && sha256sum "${f}" | cut -d' ' -f1
}

@test "first run installs the userspace of the node's version without a kernel module and checks nvidia-smi" {
  run_script "${SCRIPT}"
  assert_success
  assert_output_contains "node kernel module 580.76.05 matches NVIDIA_DRIVER_VERSION"
  assert_called "curl -fsSL .* ${RUNFILE_URL_DEFAULT}$"
  assert_called 'nvidia-installer --silent --no-kernel-module --no-x-check --no-nouveau-check --no-nvidia-modprobe --no-systemd$'
  assert_output_contains "RUNFILE_SHA256 not set, skipping checksum verification"
  assert_output_contains "nvidia-smi: driver 580.76.05, 2 GPU(s)"
  # No CUDA toolkit unless asked for.
  refute_called apt-get
}

@test "second run changes nothing and says so" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "NVIDIA userspace 580.76.05 already installed, skipping"
  assert_output_contains "nvidia-smi: driver 580.76.05, 2 GPU(s)"
}

@test "a node whose kernel module differs from the catalog fails before downloading anything" {
  node_module 575.64.05
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: version mismatch: the node's NVIDIA kernel module is 575.64.05, the catalog says 580.76.05 (defaults.yaml nodes.<node>.nvidiaDriver)"
  refute_called curl
  refute_called nvidia-installer
}

@test "a node upgraded after the install: the catalog's new version reinstalls the userspace" {
  run_script "${SCRIPT}"
  assert_success
  node_module 580.82.07
  : >"${STUB_LOG}"
  NVIDIA_DRIVER_VERSION=580.82.07 run_script "${SCRIPT}"
  assert_success
  assert_output_contains "installing the NVIDIA userspace 580.82.07 (installed: none)"
  assert_called 'curl .*/580.82.07/NVIDIA-Linux-x86_64-580.82.07.run$'
  assert_output_contains "nvidia-smi: driver 580.82.07, 2 GPU(s)"
}

@test "a failed download fails clearly and installs nothing" {
  export STUB_FAIL=curl
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: download of ${RUNFILE_URL_DEFAULT} failed"
  refute_called nvidia-installer
}

@test "the installer is verified against RUNFILE_SHA256; a mismatch installs nothing" {
  RUNFILE_SHA256=$(printf '0%.0s' {1..64}) run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: checksum mismatch for ${RUNFILE_URL_DEFAULT}"
  refute_called nvidia-installer
  local sha
  sha=$(served_sha "${RUNFILE_URL_DEFAULT}")
  : >"${STUB_LOG}"
  RUNFILE_SHA256=${sha^^} run_script "${SCRIPT}"
  assert_success
  assert_output_contains "checksum of NVIDIA-Linux-x86_64-580.76.05.run verified"
  assert_called nvidia-installer
}

@test "a failing installer is reported" {
  export STUB_FAIL=nvidia-installer
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: the NVIDIA installer NVIDIA-Linux-x86_64-580.76.05.run failed (its log: /var/log/nvidia-installer.log)"
}

@test "missing device nodes or kernel module fail with what to check" {
  rm "${PHOENIX_ROOT}/dev/nvidia1"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: missing GPU device nodes /dev/nvidia1: the container was not started with its GPU passthrough (catalog gpus: [0,1]"
  devices 0 1
  rm "${PHOENIX_ROOT}/proc/driver/nvidia/version"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "the node's NVIDIA kernel module is not visible (/proc/driver/nvidia/version missing)"
  refute_called curl
}

@test "nvidia-smi seeing another number of GPUs than the catalog passes fails" {
  NVIDIA_GPUS=0 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: nvidia-smi sees 2 GPU(s), the catalog passes 1 (0)"
}

@test "CUDA_VERSION installs the toolkit from NVIDIA's repository for this distribution, once" {
  CUDA_VERSION=12.8 run_script "${SCRIPT}"
  assert_success
  assert_called 'curl -fsSL .* https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/3bf863cc.pub$'
  assert_file_contains "${PHOENIX_ROOT}/etc/apt/sources.list.d/nvidia-cuda.list" \
    "deb [signed-by=/etc/apt/keyrings/nvidia-cuda.asc] https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/ /"
  assert_called 'apt-get .* install --no-install-recommends cuda-toolkit-12-8$'
  [ -x "${PHOENIX_ROOT}/usr/local/cuda/bin/nvcc" ]
  export CUDA_VERSION=12.8
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "cuda-toolkit-12-8 already installed, skipping"
}

@test "malformed parameters fail before anything runs" {
  NVIDIA_DRIVER_VERSION="580; reboot" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains 'NVIDIA_DRIVER_VERSION must be an NVIDIA driver version such as 580.76.05; got 580\;\ reboot'
  NVIDIA_GPUS="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nvidia.sh: ERROR: required parameter NVIDIA_GPUS is not set"
  RUNFILE_URL=http://example.com/x.run run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "RUNFILE_URL must be an https:// URL of a .run file; got http://example.com/x.run"
  CUDA_VERSION=latest run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CUDA_VERSION must be a CUDA release such as 12.8; got latest"
  [ ! -s "${STUB_LOG}" ]
}

@test "as Phoenix sends it (lib/common.sh ahead, on stdin) it runs the same" {
  run_script_piped "${SCRIPT}"
  assert_success
  [[ "${stderr}" == *"nvidia-smi: driver 580.76.05, 2 GPU(s)"* ]]
}
