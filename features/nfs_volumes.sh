#!/usr/bin/env bash
#
# nfs_volumes.sh (VMs): mounts NFS exports persistently through /etc/fstab.
#
# NFS_VOLUMES holds one volume per line: `<server>:<export> <mountpoint> [options]`
# (options default to defaults,_netdev,nofail; blank lines and # comments are
# ignored). For each volume: install nfs-common if missing, create the
# mountpoint, add the fstab line (type nfs, dump 0, pass 0) if the mountpoint has
# no entry yet - or replace a different entry for that mountpoint and say so -
# and mount it unless `mountpoint -q` says it is mounted. Fails with a clear
# message when a mount does not come up (each mount is bounded by
# NFS_MOUNT_TIMEOUT seconds).
#
# Idempotent: a second run finds the package, the directories, the fstab lines
# and the mounts in place and changes nothing. A changed entry for an already
# mounted volume is written to fstab but not remounted (a warning says so).
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   NFS_VOLUMES='10.0.0.13:/quickOS/vm-persistent-data/1001 /persistent-storage' bash features/nfs_volumes.sh
#   { cat features/lib/common.sh; echo; cat features/nfs_volumes.sh; } | ssh root@vm env NFS_VOLUMES=... bash -s
#
# Parameters (environment variables):
# @param NFS_VOLUMES required format=lines Newline-separated lines "<server>:<export> <mountpoint> [options]" (options default to defaults,_netdev,nofail)
# @param NFS_MOUNT_TIMEOUT default=60 format=seconds Seconds to wait for each mount command before failing
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="nfs_volumes.sh"
readonly FSTAB="${PHOENIX_ROOT:-}/etc/fstab"
readonly DEFAULT_OPTIONS="defaults,_netdev,nofail"

FSTAB_CHANGED=0
ENTRY_CHANGED=0
VOL_SOURCES=()
VOL_CHANGED=()
VOL_MOUNTPOINTS=()
VOL_OPTIONS=()

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

load_params() {
  [[ -n "${NFS_VOLUMES//[[:space:]]/}" ]] || fatal "required parameter NFS_VOLUMES is not set"
  check_format NFS_VOLUMES lines
  NFS_MOUNT_TIMEOUT=${NFS_MOUNT_TIMEOUT:-60}
  check_format NFS_MOUNT_TIMEOUT seconds

  local line n=0 src mp opts extra
  # server (name, IPv4 or [IPv6]) ":" absolute export path
  local src_re='^[][A-Za-z0-9._:-]+:/[^[:space:]]*$'
  while IFS= read -r line || [[ -n "${line}" ]]; do
    n=$((n + 1))
    line=${line%%#*}
    [[ -n "${line//[[:space:]]/}" ]] || continue
    read -r src mp opts extra <<<"${line}"
    [[ -z "${extra:-}" ]] || fatal "NFS_VOLUMES line ${n}: expected '<server>:<export> <mountpoint> [options]', got '${line}'"
    [[ "${src}" =~ ${src_re} ]] || fatal "NFS_VOLUMES line ${n}: '${src}' is not <server>:/<export>"
    [[ -n "${mp:-}" ]] || fatal "NFS_VOLUMES line ${n}: missing mountpoint for ${src}"
    # The same rule as the catalog's (common.sh absolute-path): no . or .. segment, a dot inside a name is fine.
    [[ "${mp}" =~ ${PHOENIX_FORMAT[absolute-path]} ]] || fatal "NFS_VOLUMES line ${n}: mountpoint '${mp}' must be ${PHOENIX_FORMAT_HINT[absolute-path]}"
    mp=${mp%/}
    opts=${opts:-${DEFAULT_OPTIONS}}
    [[ "${opts}" =~ ^[A-Za-z0-9_,=.:/-]+$ ]] || fatal "NFS_VOLUMES line ${n}: invalid mount options '${opts}'"
    if [[ " ${VOL_MOUNTPOINTS[*]} " == *" ${mp} "* ]]; then
      fatal "NFS_VOLUMES line ${n}: mountpoint ${mp} is listed twice"
    fi
    VOL_SOURCES+=("${src}")
    VOL_MOUNTPOINTS+=("${mp}")
    VOL_OPTIONS+=("${opts}")
  done <<<"${NFS_VOLUMES}"
}

ensure_nfs_client() {
  if pkg_installed nfs-common; then
    info "nfs-common already installed, skipping"
  else
    apt_install nfs-common
  fi
}

# Makes fstab hold exactly one entry "SRC MP nfs OPTS 0 0" for mountpoint MP.
ensure_fstab_entry() {
  local src=$1 mp=$2 opts=$3 desired current content
  ENTRY_CHANGED=0
  desired="${src} ${mp} nfs ${opts} 0 0"
  if [[ ! -f "${FSTAB}" ]]; then
    install -d -m 755 "$(dirname "${FSTAB}")"
    : >"${FSTAB}"
    chmod 644 "${FSTAB}"
  fi
  current=$(awk -v mp="${mp}" '$1 !~ /^#/ && $2 == mp { print $1, $2, $3, $4, $5, $6 }' "${FSTAB}")
  if [[ "${current}" == "${desired}" ]]; then
    info "fstab entry for ${mp} already present, skipping"
    return 0
  fi
  if [[ -z "${current}" ]]; then
    info "adding fstab entry: ${desired}"
    content=$(cat "${FSTAB}")
    if [[ -n "${content}" ]]; then
      content+=$'\n'
    fi
    content+=${desired}
  else
    warn "replacing fstab entry for ${mp}: '${current//$'\n'/' | '}' -> '${desired}'"
    content=$(awk -v mp="${mp}" -v desired="${desired}" '
      $1 !~ /^#/ && $2 == mp { if (!done) print desired; done = 1; next }
      { print }' "${FSTAB}")
  fi
  write_file "${FSTAB}" 644 <<<"${content}"
  if ((FILE_CHANGED)); then
    FSTAB_CHANGED=1
    ENTRY_CHANGED=1
  fi
}

ensure_mounted() {
  local src=$1 mp=$2 path="${PHOENIX_ROOT:-}$2" rc=0
  if mountpoint -q "${path}"; then
    info "${mp} already mounted, skipping"
    return 0
  fi
  info "mounting ${src} on ${mp}"
  timeout "${NFS_MOUNT_TIMEOUT}" mount "${path}" || rc=$?
  if ((rc == 124)); then
    fatal "mounting ${src} on ${mp} timed out after ${NFS_MOUNT_TIMEOUT}s; check that the server is reachable and exports it to this guest"
  elif ((rc != 0)); then
    fatal "mounting ${src} on ${mp} failed (exit ${rc}); check that the server is reachable and exports it to this guest"
  fi
  mountpoint -q "${path}" || fatal "NFS volume ${src} did not come up on ${mp} (mount returned 0 but ${mp} is not a mountpoint)"
  info "mounted ${src} on ${mp}"
}

main() {
  load_params
  ensure_nfs_client
  local i mp
  for i in "${!VOL_MOUNTPOINTS[@]}"; do
    mp=${VOL_MOUNTPOINTS[i]}
    if [[ -d "${PHOENIX_ROOT:-}${mp}" ]]; then
      info "mountpoint ${mp} already exists, skipping mkdir"
    else
      mkdir -p "${PHOENIX_ROOT:-}${mp}"
      info "created mountpoint ${mp}"
    fi
    ensure_fstab_entry "${VOL_SOURCES[i]}" "${mp}" "${VOL_OPTIONS[i]}"
    VOL_CHANGED[i]=${ENTRY_CHANGED}
  done
  if ((FSTAB_CHANGED)); then
    # Let systemd regenerate its mount units from the new fstab.
    systemctl daemon-reload || warn "systemctl daemon-reload failed; mount may warn about a stale fstab"
  fi
  for i in "${!VOL_MOUNTPOINTS[@]}"; do
    mp=${VOL_MOUNTPOINTS[i]}
    if ((VOL_CHANGED[i])) && mountpoint -q "${PHOENIX_ROOT:-}${mp}"; then
      warn "${mp} is mounted; a changed fstab entry applies at the next mount (umount ${mp} && mount ${mp})"
    fi
    ensure_mounted "${VOL_SOURCES[i]}" "${mp}"
  done
  info "done"
}

main "$@"
