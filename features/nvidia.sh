#!/usr/bin/env bash
#
# nvidia.sh: installs the NVIDIA userspace driver (libraries, nvidia-smi) in a
# container whose GPUs the node passes through, at exactly the version of the
# node's kernel module, and no kernel module (the .run installer with
# --no-kernel-module): a container shares the node's kernel, and a userspace of
# any other version cannot talk to it ("Driver/library version mismatch").
# Optionally installs the CUDA toolkit (nvcc, to build CUDA programs such as
# llama.cpp) from NVIDIA's apt repository.
#
# Before it changes anything it checks that
#   - every GPU device node the catalog passes through is there (/dev/nvidiactl,
#     /dev/nvidia-uvm, /dev/nvidia<N> for each of NVIDIA_GPUS);
#   - the node's kernel module (/proc/driver/nvidia/version, the node's procfs)
#     is NVIDIA_DRIVER_VERSION. Another version fails: the catalog
#     (defaults.yaml nodes.<node>.nvidiaDriver) and the node must agree.
# Every run ends with the nvidia-smi check: it reports NVIDIA_DRIVER_VERSION and
# sees one GPU per entry of NVIDIA_GPUS.
#
# Idempotent: nothing is downloaded when nvidia-smi already reports the version;
# the CUDA apt key, source and package are each checked first.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   NVIDIA_DRIVER_VERSION=580.76.05 NVIDIA_GPUS=0 bash features/nvidia.sh
#   { cat features/lib/common.sh; echo; cat features/nvidia.sh; } | pct exec 911 -- env NVIDIA_DRIVER_VERSION=580.76.05 NVIDIA_GPUS=0 bash -s
#
# Parameters (environment variables):
# @param NVIDIA_DRIVER_VERSION required format=driver-version Driver version of the node (set by the catalog from defaults.yaml nodes.<node>.nvidiaDriver)
# @param NVIDIA_GPUS required format=index-list GPU indexes passed through, comma-separated (set by the catalog from the guest's gpus)
# @param RUNFILE_URL optional format=runfile-url URL of the .run installer (default: NVIDIA's download server for NVIDIA_DRIVER_VERSION)
# @param RUNFILE_SHA256 optional format=sha256 Expected SHA-256 of the installer (verification is skipped with a warning when unset)
# @param CUDA_VERSION optional format=cuda-version CUDA toolkit to install from NVIDIA's apt repository, e.g. 12.8 (default: none)
# @param CUDA_REPO_URL optional format=https-url NVIDIA's CUDA apt repository (default: the one for this distribution, from /etc/os-release)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="nvidia.sh"
readonly MODULE_VERSION_FILE="${PHOENIX_ROOT:-}/proc/driver/nvidia/version"
readonly OS_RELEASE="${PHOENIX_ROOT:-}/etc/os-release"
readonly CUDA_KEY="/etc/apt/keyrings/nvidia-cuda.asc"
readonly CUDA_LIST="${PHOENIX_ROOT:-}/etc/apt/sources.list.d/nvidia-cuda.list"
readonly INSTALLER_FLAGS=(--silent --no-kernel-module --no-x-check --no-nouveau-check --no-nvidia-modprobe --no-systemd)

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  require_params NVIDIA_DRIVER_VERSION NVIDIA_GPUS
  check_format NVIDIA_DRIVER_VERSION driver-version
  check_format NVIDIA_GPUS index-list
  RUNFILE_URL=${RUNFILE_URL:-https://us.download.nvidia.com/XFree86/Linux-x86_64/${NVIDIA_DRIVER_VERSION}/NVIDIA-Linux-x86_64-${NVIDIA_DRIVER_VERSION}.run}
  check_format RUNFILE_URL runfile-url
  require_sha256 RUNFILE_SHA256
  CUDA_VERSION=${CUDA_VERSION:-}
  check_format CUDA_VERSION cuda-version
  CUDA_REPO_URL=${CUDA_REPO_URL:-}
  check_format CUDA_REPO_URL https-url
  IFS=, read -ra GPUS <<<"${NVIDIA_GPUS}"
}

# The device nodes Proxmox creates from the container's devN entries.
check_devices() {
  local dev missing=()
  for dev in /dev/nvidiactl /dev/nvidia-uvm "${GPUS[@]/#//dev/nvidia}"; do
    [[ -e "${PHOENIX_ROOT:-}${dev}" ]] || missing+=("${dev}")
  done
  if ((${#missing[@]} > 0)); then
    fatal "missing GPU device nodes ${missing[*]}: the container was not started with its GPU passthrough (catalog gpus: [${NVIDIA_GPUS}]; pct config shows them as devN entries, and /dev/nvidia-uvm appears on the node once nvidia-uvm is loaded)"
  fi
  info "GPU device nodes present: /dev/nvidiactl, /dev/nvidia-uvm, ${GPUS[*]/#//dev/nvidia}"
}

# The node's kernel module version, from the NVRM line of /proc/driver/nvidia/version.
check_kernel_module() {
  [[ -r "${MODULE_VERSION_FILE}" ]] || fatal "the node's NVIDIA kernel module is not visible (/proc/driver/nvidia/version missing): install the NVIDIA driver ${NVIDIA_DRIVER_VERSION} on the node and load it"
  local module
  module=$(grep -m 1 '^NVRM version' "${MODULE_VERSION_FILE}" | grep -oE '[[:space:]][0-9]+\.[0-9]+(\.[0-9]+)?[[:space:]]' | head -n 1 | tr -d '[:space:]') || true
  [[ -n "${module}" ]] || fatal "cannot read the kernel module version from /proc/driver/nvidia/version"
  if [[ "${module}" != "${NVIDIA_DRIVER_VERSION}" ]]; then
    fatal "version mismatch: the node's NVIDIA kernel module is ${module}, the catalog says ${NVIDIA_DRIVER_VERSION} (defaults.yaml nodes.<node>.nvidiaDriver); the container's userspace must match the node exactly: correct the catalog or the node's driver"
  fi
  info "node kernel module ${module} matches NVIDIA_DRIVER_VERSION"
}

# The userspace version nvidia-smi reports (empty when there is none or it cannot talk to the module).
userspace_version() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '[:space:]' || true
}

install_userspace() {
  local current
  current=$(userspace_version)
  if [[ "${current}" == "${NVIDIA_DRIVER_VERSION}" ]]; then
    info "NVIDIA userspace ${NVIDIA_DRIVER_VERSION} already installed, skipping"
    return 0
  fi
  info "installing the NVIDIA userspace ${NVIDIA_DRIVER_VERSION} (installed: ${current:-none})"
  TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
  local runfile="${TMP_DIR}/${RUNFILE_URL##*/}"
  download_verified "${RUNFILE_URL}" "${runfile}" "${RUNFILE_SHA256}" RUNFILE_SHA256
  if ! bash "${runfile}" "${INSTALLER_FLAGS[@]}"; then
    fatal "the NVIDIA installer ${RUNFILE_URL##*/} failed (its log: /var/log/nvidia-installer.log)"
  fi
}

# nvidia-smi must report the node's version and see every GPU passed through.
verify() {
  command -v nvidia-smi >/dev/null 2>&1 || fatal "nvidia-smi not found after the installation"
  local version count
  version=$(userspace_version)
  [[ "${version}" == "${NVIDIA_DRIVER_VERSION}" ]] || fatal "nvidia-smi check failed: it reports driver '${version:-none}' (expected ${NVIDIA_DRIVER_VERSION}); run nvidia-smi in the container"
  count=$(nvidia-smi -L | grep -c '^GPU ' || true)
  ((count == ${#GPUS[@]})) || fatal "nvidia-smi sees ${count} GPU(s), the catalog passes ${#GPUS[@]} (${NVIDIA_GPUS})"
  info "nvidia-smi: driver ${version}, ${count} GPU(s)"
}

os_release_value() {
  sed -n "s/^$1=//p" "${OS_RELEASE}" | tr -d "\"'" | head -n 1
}

# The CUDA toolkit (nvcc and libraries) from NVIDIA's apt repository, when CUDA_VERSION is set.
install_cuda_toolkit() {
  [[ -n "${CUDA_VERSION}" ]] || return 0
  if [[ -z "${CUDA_REPO_URL}" ]]; then
    [[ -f "${OS_RELEASE}" ]] || fatal "${OS_RELEASE} not found; set CUDA_REPO_URL"
    local distro version arch
    distro=$(os_release_value ID)
    version=$(os_release_value VERSION_ID)
    case "$(dpkg --print-architecture)" in
      amd64) arch=x86_64 ;;
      arm64) arch=sbsa ;;
      *) fatal "no CUDA repository for architecture $(dpkg --print-architecture); set CUDA_REPO_URL" ;;
    esac
    CUDA_REPO_URL="https://developer.download.nvidia.com/compute/cuda/repos/${distro}${version//./}/${arch}/"
  fi
  CUDA_REPO_URL="${CUDA_REPO_URL%/}/"
  apt_install_missing ca-certificates curl
  fetch_key "${CUDA_REPO_URL}3bf863cc.pub" "${PHOENIX_ROOT:-}${CUDA_KEY}" "NVIDIA CUDA apt key"
  write_apt_source "${CUDA_LIST}" "deb [signed-by=${CUDA_KEY}] ${CUDA_REPO_URL} /" "NVIDIA CUDA apt repository"
  local pkg="cuda-toolkit-${CUDA_VERSION//./-}"
  if pkg_installed "${pkg}"; then
    info "${pkg} already installed, skipping"
  else
    apt_install "${pkg}"
  fi
}

main() {
  load_params
  check_devices
  check_kernel_module
  install_userspace
  verify
  install_cuda_toolkit
  info "done"
}

main "$@"
