#!/usr/bin/env bash
#
# nginx_gateway.sh (application of the gateway guest, 101): the entry point of
# the routes. Installs nginx if missing and writes the gateway site
# /etc/nginx/sites-available/phoenix-gateway (enabled through a symlink in
# sites-enabled) for SERVER_NAMES (every route's host):
#   :443  TLS with a certificate from the internal CA, proxied to Traefik's
#         websecure entry point (UPSTREAM_URL), whose certificate nginx verifies
#         against the internal root (CA_ROOT_FILE) for the requested host (SNI)
#   :80   ACME http-01: the gateway's own challenges from ACME_WEBROOT, any
#         other challenge (Traefik's certificates) to CHALLENGE_URL (Traefik's
#         web entry point); everything else is redirected to https
# The certificate (CERT_DIR/gateway.crt, key 600) is issued by ACME from the CA
# at CA_URL, answered on :80 from ACME_WEBROOT, and renewed by
# phoenix-gateway-cert.timer (step ca renew, then nginx reload).
# /usr/local/sbin/phoenix-gateway-check, the guest's health check (run it by
# hand too), asks this gateway's :443 for every route's host and expects an
# answer below 500 through the whole path: nginx, Traefik and the service.
#
# Idempotent and non-destructive: only the phoenix-gateway site, its symlink, the
# certificate, the renewal timer and the check are managed; other nginx configuration is
# never removed. Files are written only when their content differs; after a
# change `nginx -t` must pass (otherwise the previous site is restored and the
# script fails) and nginx is reloaded. The certificate is requested only when
# missing, for other names, or due for renewal. Without a change nothing is
# reloaded.
#
# Needs: the trusted_ca feature (CA_ROOT_FILE) and the step_cli feature (step).
#
# Run it by hand as root: from a checkout (it sources ../lib/common.sh from beside
# itself), or on a guest with lib/common.sh sent ahead of it, as Phoenix does:
#   UPSTREAM_URL=https://10.0.0.12:443 SERVER_NAMES="portainer.internal ca.internal" \
#     CA_URL=https://10.0.0.10:9000 bash features/apps/nginx_gateway.sh
#   { cat features/lib/common.sh; echo; cat features/apps/nginx_gateway.sh; } | pct exec 101 -- env UPSTREAM_URL=... bash -s
#
# Parameters (environment variables):
# @param UPSTREAM_URL required format=https-url Traefik's websecure entry point, e.g. https://10.0.0.12:443
# @param SERVER_NAMES required format=server-names Space-separated host names served (Phoenix derives them: every route's host)
# @param CA_URL required format=https-url URL of the internal CA (Phoenix derives it from the CA the guest trusts)
# @param CA_ROOT_FILE default=/usr/local/share/ca-certificates/phoenix_root_ca.crt format=absolute-path The internal root (installed by trusted_ca)
# @param CHALLENGE_URL optional format=http-url Where other ACME http-01 challenges go (default: http://<UPSTREAM_URL host>:80, Traefik's web entry point)
# @param CERT_DIR default=/etc/nginx/ssl format=absolute-path Directory of the gateway's certificate and key
# @param ACME_WEBROOT default=/var/www/phoenix-acme format=absolute-path Directory served for the gateway's own ACME challenges
# @listens 80 http ACME http-01 challenges; everything else is redirected to https
# @listens 443 https the routes, with a certificate from the internal CA, proxied to Traefik
# @ca http-01 the gateway's certificate, by ACME; the CA validates on port 80 (the route names resolve here)
#
# Tests: PHOENIX_ROOT prefixes every absolute path (a fake root); commands are
# called by name so they can be stubbed through PATH.

set -Eeuo pipefail

readonly SCRIPT_NAME="nginx_gateway.sh"
readonly SITE_NAME="phoenix-gateway"
readonly SITE_TARGET="/etc/nginx/sites-available/${SITE_NAME}"
readonly SITE_FILE="${PHOENIX_ROOT:-}${SITE_TARGET}"
readonly SITE_LINK="${PHOENIX_ROOT:-}/etc/nginx/sites-enabled/${SITE_NAME}"
readonly RENEW_UNIT="phoenix-gateway-cert"
readonly ROUTE_CHECK="/usr/local/sbin/phoenix-gateway-check"

# Shared helpers: Phoenix sends features/lib/common.sh ahead of this script; run by hand, it is sourced from beside it.
if ! declare -F phoenix_common_loaded >/dev/null; then
  # shellcheck source=SCRIPTDIR/../lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]:-.}")/../lib/common.sh"
fi

load_params() {
  require_params UPSTREAM_URL SERVER_NAMES CA_URL
  local p
  for p in UPSTREAM_URL CA_URL; do
    check_format "${p}" https-url
    printf -v "${p}" '%s' "${!p%/}"
  done
  # proxy_pass with a path would rewrite every request's URI: the upstream is a scheme, host and port only.
  [[ "${UPSTREAM_URL}" =~ ^https://([^/]+)$ ]] ||
    fatal "UPSTREAM_URL must be Traefik's websecure entry point, scheme, host and port only; got $(printf '%q' "${UPSTREAM_URL}")"
  local upstream_host=${BASH_REMATCH[1]%:*}
  CHALLENGE_URL=${CHALLENGE_URL:-http://${upstream_host}:80}
  check_format CHALLENGE_URL http-url
  CHALLENGE_URL=${CHALLENGE_URL%/}
  [[ "${CHALLENGE_URL}" =~ ^http://[^/]+$ ]] || fatal "CHALLENGE_URL must be an http:// URL without a path; got $(printf '%q' "${CHALLENGE_URL}")"
  CA_ROOT_FILE=${CA_ROOT_FILE:-/usr/local/share/ca-certificates/phoenix_root_ca.crt}
  CERT_DIR=${CERT_DIR:-/etc/nginx/ssl}
  ACME_WEBROOT=${ACME_WEBROOT:-/var/www/phoenix-acme}
  for p in CA_ROOT_FILE CERT_DIR ACME_WEBROOT; do
    check_format "${p}" absolute-path
  done
  check_format SERVER_NAMES server-names
  read -r -a NAMES <<<"${SERVER_NAMES}"
  ((${#NAMES[@]} > 0)) || fatal "required parameter SERVER_NAMES is empty"
  CRT="${CERT_DIR}/gateway.crt"
  KEY="${CERT_DIR}/gateway.key"
}

check_prerequisites() {
  [[ -s "${PHOENIX_ROOT:-}${CA_ROOT_FILE}" ]] || fatal "${CA_ROOT_FILE} not found: apply the trusted_ca feature first (nginx verifies Traefik against it)"
  command -v step >/dev/null 2>&1 || fatal "'step' not found: apply the step_cli feature first (it requests the gateway's certificate)"
}

ensure_nginx() {
  if command -v nginx >/dev/null 2>&1; then
    info "nginx already installed, skipping"
    return 0
  fi
  apt_install nginx
  command -v nginx >/dev/null 2>&1 || fatal "nginx was installed but is not on PATH"
}

# The site; with TLS=1 also the :443 server (only once the certificate exists: nginx -t fails without it).
render_site() {
  local tls=$1
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

    # ACME http-01: the gateway's own challenges, else Traefik's (its web entry point answers them).
    location ^~ /.well-known/acme-challenge/ {
        root ${ACME_WEBROOT};
        try_files \$uri @phoenix_traefik_challenge;
    }
    location @phoenix_traefik_challenge {
        proxy_pass ${CHALLENGE_URL};
        proxy_set_header Host \$host;
    }

    location / {
SITE
  if ((tls)); then
    echo "        return 301 https://\$host\$request_uri;"
  else
    echo '        return 503;'
  fi
  echo '    }'
  echo '}'
  ((tls)) || return 0
  cat <<SITE

server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name ${NAMES[*]};

    ssl_certificate ${CRT};
    ssl_certificate_key ${KEY};
    ssl_protocols TLSv1.2 TLSv1.3;

    client_max_body_size 0;

    location / {
        proxy_pass ${UPSTREAM_URL};
        # Traefik serves the certificate of the requested host: send it as SNI and verify it with the internal root.
        proxy_ssl_server_name on;
        proxy_ssl_name \$host;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate ${CA_ROOT_FILE};
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

#######################################
# Writes the site (TLS=0|1) and enables it; after a change `nginx -t` must pass,
# else the previous site is restored. Sets SITE_CHANGED.
#######################################
apply_site() {
  local tls=$1 had_site=0 had_link=0 site
  SITE_CHANGED=0
  # Keep the previous site so that a failing `nginx -t` can be rolled back.
  [[ -n "${TMP_DIR}" ]] || TMP_DIR=$(mktemp -d) # removed on exit (the EXIT trap of lib/common.sh)
  if [[ -f "${SITE_FILE}" ]]; then
    cp -p "${SITE_FILE}" "${TMP_DIR}/site"
    had_site=1
  fi

  site=$(render_site "${tls}")
  write_file "${SITE_FILE}" 644 <<<"${site}"
  if ((FILE_CHANGED)); then
    info "wrote ${SITE_TARGET}$( ((tls)) && echo " (:80 and :443)" || echo " (:80 only, until the certificate exists)")"
    SITE_CHANGED=1
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
    SITE_CHANGED=1
  fi

  if ((SITE_CHANGED)) && ! nginx -t; then
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
}

main() {
  load_params
  check_prerequisites
  ensure_nginx

  local dir
  for dir in "$(dirname "${SITE_FILE}")" "$(dirname "${SITE_LINK}")" "${PHOENIX_ROOT:-}${ACME_WEBROOT}" "${PHOENIX_ROOT:-}${CERT_DIR}"; do
    if [[ ! -d "${dir}" ]]; then
      install -d -m 755 "${dir}"
    fi
  done

  # :80 must serve the challenge before the CA validates it; :443 needs the certificate.
  local have_cert=0 reload=0
  [[ -s "${PHOENIX_ROOT:-}${CRT}" && -s "${PHOENIX_ROOT:-}${KEY}" ]] && have_cert=1
  apply_site "${have_cert}"
  reload=${SITE_CHANGED}
  enable_unit nginx.service
  refresh_unit nginx.service "${reload}" reload "reloading nginx (gateway site changed)" \
    "nginx already running with the current gateway site, skipping reload"

  acme_certificate "${PHOENIX_ROOT:-}${CRT}" "${PHOENIX_ROOT:-}${KEY}" "--webroot=${ACME_WEBROOT}" "${NAMES[@]}"
  if ((!have_cert)); then
    apply_site 1
  fi
  if ((CERT_CHANGED || (!have_cert && SITE_CHANGED))); then
    info "reloading nginx (new certificate or TLS server)"
    systemctl reload nginx.service || fatal "systemctl reload nginx.service failed (see journalctl -u nginx)"
  fi

  install_cert_renewal "${RENEW_UNIT}" "${CRT}" "${KEY}" "/usr/bin/systemctl reload nginx.service"
  install_route_check "${ROUTE_CHECK}" gateway "${CA_ROOT_FILE}" "${NAMES[@]}"
}

main "$@"
