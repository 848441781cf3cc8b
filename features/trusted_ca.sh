#!/usr/bin/env bash
#
# trusted_ca.sh: makes the guest trust the internal root CA.
#
# Verifies that the SHA-256 fingerprint of CA_ROOT_PEM equals CA_FINGERPRINT
# (refuses to trust anything else), installs it as
# /usr/local/share/ca-certificates/<CA_CERT_NAME>.crt and runs
# update-ca-certificates.
#
# Idempotent: the certificate is only written when its content differs and
# update-ca-certificates only runs after a change (or when the system store lacks
# the certificate); otherwise "already trusted, skipping". Other certificates in
# /usr/local/share/ca-certificates are never touched.
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   CA_ROOT_PEM="$(cat root_ca.crt)" CA_FINGERPRINT=3f1c... bash features/trusted_ca.sh
#   { cat features/lib/common.sh; echo; cat features/trusted_ca.sh; } | pct exec 101 -- env CA_ROOT_PEM=... CA_FINGERPRINT=... bash -s
#
# Parameters (environment variables):
# @param CA_ROOT_PEM required format=lines PEM text of the internal root CA certificate (step_ca.sh stdout)
# @param CA_FINGERPRINT required format=fingerprint Expected SHA-256 fingerprint of the root (hex; case and colons are ignored)
# @param CA_CERT_NAME default=phoenix_root_ca format=file-name File name (without .crt) below /usr/local/share/ca-certificates
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="trusted_ca.sh"
readonly LOCAL_CA_DIR="${PHOENIX_ROOT:-}/usr/local/share/ca-certificates"
readonly SYSTEM_CERTS_DIR="${PHOENIX_ROOT:-}/etc/ssl/certs"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

# AB:CD:ef -> abcdef
normalize_fingerprint() {
  local fp=${1//:/}
  fp=${fp//[[:space:]]/}
  printf '%s' "${fp,,}"
}

load_params() {
  require_params CA_ROOT_PEM CA_FINGERPRINT
  check_format CA_ROOT_PEM lines
  check_format CA_FINGERPRINT fingerprint
  CA_CERT_NAME=${CA_CERT_NAME:-phoenix_root_ca}
  check_format CA_CERT_NAME file-name
  EXPECTED_FP=$(normalize_fingerprint "${CA_FINGERPRINT}")
  [[ "${CA_ROOT_PEM}" == *"-----BEGIN CERTIFICATE-----"* && "${CA_ROOT_PEM}" == *"-----END CERTIFICATE-----"* ]] ||
    fatal "CA_ROOT_PEM is not a PEM certificate (no BEGIN/END CERTIFICATE lines)"
}

ensure_packages() {
  local -a missing=()
  pkg_installed ca-certificates || missing+=(ca-certificates)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  if ((${#missing[@]} == 0)); then
    info "ca-certificates and openssl already installed, skipping"
    return 0
  fi
  apt_install "${missing[@]}"
}

verify_fingerprint() {
  local pem_file=$1 out actual
  out=$(openssl x509 -noout -fingerprint -sha256 -in "${pem_file}") || fatal "openssl could not parse CA_ROOT_PEM"
  actual=$(normalize_fingerprint "${out#*=}")
  if [[ "${actual}" != "${EXPECTED_FP}" ]]; then
    fatal "fingerprint mismatch: CA_ROOT_PEM has sha256 ${actual} but CA_FINGERPRINT is ${EXPECTED_FP}; refusing to trust this certificate"
  fi
  info "CA_ROOT_PEM fingerprint verified (sha256 ${actual})"
}

main() {
  load_params
  ensure_packages

  TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
  local pem="${TMP_DIR}/root.pem"
  printf '%s\n' "${CA_ROOT_PEM%$'\n'}" >"${pem}"
  verify_fingerprint "${pem}"

  local dest="${LOCAL_CA_DIR}/${CA_CERT_NAME}.crt"
  if [[ ! -d "${LOCAL_CA_DIR}" ]]; then
    install -d -m 755 "${LOCAL_CA_DIR}"
  fi
  write_file "${dest}" 644 <"${pem}"
  if ((FILE_CHANGED)); then
    info "installed ${dest}"
  elif [[ ! -e "${SYSTEM_CERTS_DIR}/${CA_CERT_NAME}.pem" ]]; then
    info "${dest} is current but not yet in the system store"
  else
    info "root CA ${CA_CERT_NAME} already trusted, skipping"
    return 0
  fi
  update-ca-certificates >&2 || fatal "update-ca-certificates failed"
  info "root CA ${CA_CERT_NAME} is now trusted"
}

main "$@"
