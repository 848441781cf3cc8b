#!/usr/bin/env bash
#
# base_setup.sh: base configuration of a Debian/Ubuntu guest (LXC or VM).
#
# Generates and sets the system locale, sets the time zone, installs the base
# packages, configures unattended upgrades and optionally creates an admin
# account with an SSH public key.
#
# Idempotent: every step checks the current state first and only changes what
# differs ("... already ..., skipping" otherwise). A second run changes nothing.
# The time zone is set with /etc/localtime + /etc/timezone (not timedatectl, which
# needs a running systemd/dbus).
#
# Run it by hand as root: from a checkout (it sources lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   LOCALE=en_US.UTF-8 TIMEZONE=Europe/Berlin bash features/base_setup.sh
#   ADMIN_USER=ops ADMIN_SSH_KEY="ssh-ed25519 AAAA... ops" bash features/base_setup.sh
#   { cat features/lib/common.sh; echo; cat features/base_setup.sh; } | pct exec 900 -- env TIMEZONE=Etc/UTC bash -s
#
# Parameters (environment variables):
# @param LOCALE default=en_US.UTF-8 format=locale System locale, with codeset (generated with locale-gen, set as LANG)
# @param TIMEZONE default=Etc/UTC format=timezone Time zone name below /usr/share/zoneinfo
# @param BASE_PACKAGES optional format=packages Space-separated apt packages to install (unset or empty: "ca-certificates curl gnupg jq locales rsync vim htop")
# @param UNATTENDED_UPGRADES default=true format=bool true|false: enable or disable unattended upgrades (APT::Periodic)
# @param ADMIN_USER optional format=user-name Admin account to create (bash shell, added to group sudo if that group exists)
# @param ADMIN_SSH_KEY optional format=ssh-public-key SSH public key added to ADMIN_USER's authorized_keys (needs ADMIN_USER)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="base_setup.sh"
readonly DEFAULT_BASE_PACKAGES="ca-certificates curl gnupg jq locales rsync vim htop"
readonly LOCALE_GEN="${PHOENIX_ROOT:-}/etc/locale.gen"
readonly DEFAULT_LOCALE_FILE="${PHOENIX_ROOT:-}/etc/default/locale"
readonly ZONEINFO_DIR="/usr/share/zoneinfo"
readonly LOCALTIME="${PHOENIX_ROOT:-}/etc/localtime"
readonly TIMEZONE_FILE="${PHOENIX_ROOT:-}/etc/timezone"
readonly AUTO_UPGRADES_FILE="${PHOENIX_ROOT:-}/etc/apt/apt.conf.d/20auto-upgrades"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/lib/common.sh"
fi

# en_US.UTF-8 -> en_US.utf8 (the spelling of `locale -a`).
normalize_locale() {
  local name=$1 lang codeset modifier=""
  if [[ "${name}" != *.* ]]; then
    printf '%s' "${name}"
    return 0
  fi
  lang=${name%%.*}
  codeset=${name#*.}
  if [[ "${codeset}" == *@* ]]; then
    modifier="@${codeset#*@}"
    codeset=${codeset%%@*}
  fi
  codeset=${codeset,,}
  printf '%s.%s%s' "${lang}" "${codeset//-/}" "${modifier}"
}

validate_params() {
  LOCALE=${LOCALE:-en_US.UTF-8}
  TIMEZONE=${TIMEZONE:-Etc/UTC}
  BASE_PACKAGES=${BASE_PACKAGES:-${DEFAULT_BASE_PACKAGES}}
  UNATTENDED_UPGRADES=${UNATTENDED_UPGRADES:-true}
  ADMIN_USER=${ADMIN_USER:-}
  ADMIN_SSH_KEY=${ADMIN_SSH_KEY:-}

  check_format LOCALE locale
  check_format TIMEZONE timezone
  check_format UNATTENDED_UPGRADES bool
  check_format BASE_PACKAGES packages
  check_format ADMIN_USER user-name
  check_format ADMIN_SSH_KEY ssh-public-key
  if [[ -n "${ADMIN_SSH_KEY}" && -z "${ADMIN_USER}" ]]; then
    fatal "ADMIN_SSH_KEY is set but ADMIN_USER is not"
  fi
}

install_packages() {
  local -a wanted=() missing=()
  local pkg
  # shellcheck disable=SC2206 # word splitting of the space-separated list is intended
  wanted=(${BASE_PACKAGES} tzdata)
  case "${LOCALE}" in C | POSIX | C.UTF-8 | C.utf8) ;; *) wanted+=(locales) ;; esac
  if [[ "${UNATTENDED_UPGRADES}" == true ]]; then
    wanted+=(unattended-upgrades)
  fi
  for pkg in "${wanted[@]}"; do
    if [[ " ${missing[*]} " == *" ${pkg} "* ]]; then
      continue
    fi
    pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} == 0)); then
    info "base packages already installed, skipping"
    return 0
  fi
  apt_install "${missing[@]}"
}

locale_available() {
  local wanted have
  wanted=$(normalize_locale "$1")
  while IFS= read -r have; do
    [[ "$(normalize_locale "${have}")" == "${wanted}" ]] && return 0
  done < <(locale -a 2>/dev/null)
  return 1
}

configure_locale() {
  case "${LOCALE}" in
    C | POSIX | C.UTF-8 | C.utf8) info "locale ${LOCALE} is built in, nothing to generate" ;;
    *)
      if locale_available "${LOCALE}"; then
        info "locale ${LOCALE} already generated, skipping"
      else
        local charset line content
        charset=${LOCALE#*.}
        charset=${charset%%@*}
        line="${LOCALE} ${charset}"
        mkdir -p "$(dirname "${LOCALE_GEN}")"
        if [[ -f "${LOCALE_GEN}" ]]; then
          # Uncomment "# en_US.UTF-8 UTF-8" (or append it), keep everything else.
          content=$(awk -v want="${line}" '
            { l = $0; sub(/^#[[:space:]]*/, "", l) }
            l == want { print want; found = 1; next }
            { print }
            END { if (!found) print want }' "${LOCALE_GEN}")
        else
          content=${line}
        fi
        write_file "${LOCALE_GEN}" 644 <<<"${content}"
        info "generating locale ${LOCALE}"
        locale-gen "${LOCALE}" >&2 || fatal "locale-gen ${LOCALE} failed"
      fi
      ;;
  esac

  local current=""
  if [[ -f "${DEFAULT_LOCALE_FILE}" ]]; then
    current=$(sed -n 's/^LANG=//p' "${DEFAULT_LOCALE_FILE}" | tr -d '"' | tail -n 1)
  fi
  if [[ "${current}" == "${LOCALE}" ]]; then
    info "default locale already LANG=${LOCALE}, skipping"
  else
    info "setting default locale LANG=${LOCALE} (was '${current}')"
    update-locale "LANG=${LOCALE}" || fatal "update-locale LANG=${LOCALE} failed"
  fi
}

configure_timezone() {
  local target="${ZONEINFO_DIR}/${TIMEZONE}" current_link="" current_name=""
  [[ -f "${PHOENIX_ROOT:-}${target}" ]] || fatal "unknown TIMEZONE '${TIMEZONE}': ${target} does not exist"
  if [[ -L "${LOCALTIME}" ]]; then
    current_link=$(readlink "${LOCALTIME}")
  fi
  if [[ -f "${TIMEZONE_FILE}" ]]; then
    current_name=$(<"${TIMEZONE_FILE}")
  fi
  if [[ "${current_link}" == "${target}" && "${current_name}" == "${TIMEZONE}" ]]; then
    info "time zone already ${TIMEZONE}, skipping"
    return 0
  fi
  info "setting time zone ${TIMEZONE}"
  mkdir -p "$(dirname "${LOCALTIME}")"
  ln -sfn "${target}" "${LOCALTIME}.phoenix"
  mv -Tf "${LOCALTIME}.phoenix" "${LOCALTIME}"
  write_file "${TIMEZONE_FILE}" 644 <<<"${TIMEZONE}"
}

configure_unattended_upgrades() {
  local value=0
  [[ "${UNATTENDED_UPGRADES}" == true ]] && value=1
  mkdir -p "$(dirname "${AUTO_UPGRADES_FILE}")"
  write_file "${AUTO_UPGRADES_FILE}" 644 <<CONF
// Managed by Phoenix (features/base_setup.sh); local edits are overwritten.
APT::Periodic::Update-Package-Lists "${value}";
APT::Periodic::Unattended-Upgrade "${value}";
CONF
  if ((FILE_CHANGED)); then
    info "unattended upgrades set to ${UNATTENDED_UPGRADES}"
  else
    info "unattended upgrades already ${UNATTENDED_UPGRADES}, skipping"
  fi
}

configure_admin_user() {
  if [[ -z "${ADMIN_USER}" ]]; then
    info "ADMIN_USER not set, no admin account to manage"
    return 0
  fi
  if getent passwd "${ADMIN_USER}" >/dev/null; then
    info "user ${ADMIN_USER} already exists, skipping creation"
  else
    info "creating user ${ADMIN_USER}"
    useradd --create-home --user-group --shell /bin/bash "${ADMIN_USER}" || fatal "useradd ${ADMIN_USER} failed"
  fi

  if getent group sudo >/dev/null; then
    local groups
    groups=" $(id -nG "${ADMIN_USER}") "
    if [[ "${groups}" == *" sudo "* ]]; then
      info "user ${ADMIN_USER} already in group sudo, skipping"
    else
      info "adding ${ADMIN_USER} to group sudo"
      usermod -aG sudo "${ADMIN_USER}" || fatal "usermod -aG sudo ${ADMIN_USER} failed"
    fi
  fi

  [[ -n "${ADMIN_SSH_KEY}" ]] || return 0
  local home ssh_dir keys_file
  home=$(getent passwd "${ADMIN_USER}" | cut -d: -f6)
  [[ "${home}" == /* ]] || fatal "cannot determine the home directory of ${ADMIN_USER}"
  ssh_dir="${PHOENIX_ROOT:-}${home}/.ssh"
  keys_file="${ssh_dir}/authorized_keys"
  if [[ ! -d "${ssh_dir}" ]]; then
    mkdir -p "${ssh_dir}"
    chmod 700 "${ssh_dir}"
    chown "${ADMIN_USER}:" "${ssh_dir}"
  fi
  if [[ -f "${keys_file}" ]] && grep -qxF -- "${ADMIN_SSH_KEY}" "${keys_file}"; then
    info "SSH key already authorized for ${ADMIN_USER}, skipping"
    return 0
  fi
  info "authorizing SSH key for ${ADMIN_USER}"
  local content=${ADMIN_SSH_KEY}
  if [[ -s "${keys_file}" ]]; then
    content="$(<"${keys_file}")"$'\n'"${ADMIN_SSH_KEY}"
  fi
  write_file "${keys_file}" 600 <<<"${content}"
  chown "${ADMIN_USER}:" "${keys_file}"
}

main() {
  validate_params
  install_packages
  configure_locale
  configure_timezone
  configure_unattended_upgrades
  configure_admin_user
  info "done"
}

main "$@"
