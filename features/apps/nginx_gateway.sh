#!/usr/bin/env bash
#
# nginx_gateway.sh (application of the gateway guest, 101): installs nginx if
# missing and writes the gateway site /etc/nginx/sites-available/phoenix-gateway
# (enabled through a symlink in sites-enabled) that proxies every request for
# SERVER_NAMES on port 80 to UPSTREAM_URL (Traefik), with the usual forwarding
# and WebSocket upgrade headers.
#
# Idempotent and non-destructive: only the phoenix-gateway site and its symlink
# are managed; other nginx configuration is never removed. The site is written
# only when its content differs; after a change `nginx -t` must pass (otherwise
# the previous site is restored and the script fails) and nginx is reloaded.
# Without a change nothing is reloaded.
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   UPSTREAM_URL=http://10.0.0.12:80 SERVER_NAMES="portainer.internal nginx.internal" bash features/apps/nginx_gateway.sh
#   { cat features/lib/common.sh; echo; cat features/apps/nginx_gateway.sh; } | pct exec 101 -- env UPSTREAM_URL=... SERVER_NAMES=... bash -s
#
# Parameters (environment variables):
# @param UPSTREAM_URL required format=http-url URL requests are proxied to, e.g. http://10.0.0.12:80
# @param SERVER_NAMES required format=server-names Space-separated server names (Host headers) served by the gateway
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="nginx_gateway.sh"
readonly SITE_NAME="phoenix-gateway"
readonly SITE_TARGET="/etc/nginx/sites-available/${SITE_NAME}"
readonly SITE_FILE="${PHOENIX_ROOT:-}${SITE_TARGET}"
readonly SITE_LINK="${PHOENIX_ROOT:-}/etc/nginx/sites-enabled/${SITE_NAME}"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

load_params() {
  require_params UPSTREAM_URL SERVER_NAMES
  check_format UPSTREAM_URL http-url
  UPSTREAM_URL=${UPSTREAM_URL%/}
  check_format SERVER_NAMES server-names
  read -r -a NAMES <<<"${SERVER_NAMES}"
}

ensure_nginx() {
  if command -v nginx >/dev/null 2>&1; then
    info "nginx already installed, skipping"
    return 0
  fi
  apt_install nginx
  command -v nginx >/dev/null 2>&1 || fatal "nginx was installed but is not on PATH"
}

render_site() {
  cat <<SITE
# Managed by Phoenix (features/apps/nginx_gateway.sh); local edits are overwritten.
map \$http_upgrade \$phoenix_gateway_connection {
    default upgrade;
    ''      close;
}

server {
    listen 80;
    listen [::]:80;
    server_name ${NAMES[*]};

    client_max_body_size 0;

    location / {
        proxy_pass ${UPSTREAM_URL};
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$phoenix_gateway_connection;
        proxy_read_timeout 300s;
    }
}
SITE
}

main() {
  load_params
  ensure_nginx

  local dir
  for dir in "$(dirname "${SITE_FILE}")" "$(dirname "${SITE_LINK}")"; do
    if [[ ! -d "${dir}" ]]; then
      install -d -m 755 "${dir}"
    fi
  done

  # Keep the previous site so that a failing `nginx -t` can be rolled back.
  TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
  local had_site=0 had_link=0 changed=0
  if [[ -f "${SITE_FILE}" ]]; then
    cp -p "${SITE_FILE}" "${TMP_DIR}/site"
    had_site=1
  fi

  local site
  site=$(render_site)
  write_file "${SITE_FILE}" 644 <<<"${site}"
  if ((FILE_CHANGED)); then
    info "wrote ${SITE_TARGET}"
    changed=1
  else
    info "gateway site unchanged, skipping"
  fi

  if [[ -L "${SITE_LINK}" && "$(readlink "${SITE_LINK}")" == "${SITE_TARGET}" ]]; then
    info "gateway site already enabled, skipping"
    had_link=1
  else
    if [[ -e "${SITE_LINK}" || -L "${SITE_LINK}" ]]; then
      warn "replacing ${SITE_LINK} with a symlink to ${SITE_TARGET}"
      had_link=1
    fi
    ln -sfn "${SITE_TARGET}" "${SITE_LINK}.phoenix"
    mv -Tf "${SITE_LINK}.phoenix" "${SITE_LINK}"
    info "enabled the gateway site"
    changed=1
  fi

  if ((changed)); then
    if ! nginx -t; then
      if ((had_site)); then
        mv -f "${TMP_DIR}/site" "${SITE_FILE}"
      else
        rm -f "${SITE_FILE}"
      fi
      if ((!had_link)); then
        rm -f "${SITE_LINK}"
      fi
      fatal "nginx -t failed with the new gateway site; the previous site was restored and nginx was not reloaded"
    fi
  fi

  enable_unit nginx.service
  refresh_unit nginx.service "${changed}" reload "reloading nginx" \
    "nginx already running with the current gateway site, skipping reload"
}

main "$@"
