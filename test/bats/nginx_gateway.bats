#!/usr/bin/env bats
# features/apps/nginx_gateway.sh

load helpers

SCRIPT=features/apps/nginx_gateway.sh

setup() {
  common_setup
  export UPSTREAM_URL=https://10.0.0.12:443 SERVER_NAMES="ca.internal portainer.internal" CA_URL=https://10.0.0.10:9000
  SITE="${PHOENIX_ROOT}/etc/nginx/sites-available/phoenix-gateway"
  LINK="${PHOENIX_ROOT}/etc/nginx/sites-enabled/phoenix-gateway"
  CRT="${PHOENIX_ROOT}/etc/nginx/ssl/gateway.crt"
  KEY="${PHOENIX_ROOT}/etc/nginx/ssl/gateway.key"
  UNITS="${PHOENIX_ROOT}/etc/systemd/system"
  # What the trusted_ca and step_cli features leave behind.
  mkdir -p "${PHOENIX_ROOT}/usr/local/share/ca-certificates"
  echo "root" >"${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  stub_installed step-cli
  # Existing configuration that must survive every run.
  mkdir -p "${PHOENIX_ROOT}/etc/nginx/sites-available" "${PHOENIX_ROOT}/etc/nginx/sites-enabled" "${PHOENIX_ROOT}/etc/nginx/conf.d"
  echo "server { listen 80 default_server; }" >"${PHOENIX_ROOT}/etc/nginx/sites-available/default"
  ln -s /etc/nginx/sites-available/default "${PHOENIX_ROOT}/etc/nginx/sites-enabled/default"
  echo "# custom" >"${PHOENIX_ROOT}/etc/nginx/conf.d/custom.conf"
}

@test "first run: nginx serves the ACME webroot on :80, gets the certificate, then serves :443 proxied to Traefik" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends nginx$'
  # Order: the :80 site is live (nginx started) before the CA validates the challenge, the TLS server after.
  local log
  log=$(cat "${STUB_LOG}")
  [[ "${log}" == *"systemctl start nginx.service"*"step ca certificate ca.internal"*"systemctl reload nginx.service"* ]] || fail "wrong order:" "${log}"
  assert_called "step ca certificate ca.internal ${CRT}.new ${KEY}.new --provisioner acme --webroot=/var/www/phoenix-acme --ca-url https://10.0.0.10:9000 --root /usr/local/share/ca-certificates/phoenix_root_ca.crt --force --san ca.internal --san portainer.internal$"
  assert_file_mode "${KEY}" 600
  assert_file_contains "${CRT}" "stub certificate for ca.internal (ca.internal portainer.internal)"
  [ -d "${PHOENIX_ROOT}/var/www/phoenix-acme" ]
  [ "$(readlink "${LINK}")" = /etc/nginx/sites-available/phoenix-gateway ]
  assert_file_mode "${SITE}" 644
  # Nothing else was removed.
  [ -f "${PHOENIX_ROOT}/etc/nginx/sites-available/default" ]
  [ -L "${PHOENIX_ROOT}/etc/nginx/sites-enabled/default" ]
  [ -f "${PHOENIX_ROOT}/etc/nginx/conf.d/custom.conf" ]
}

@test "the rendered site: TLS on :443 to Traefik's websecure with the internal root, challenges and redirect on :80" {
  run_script "${SCRIPT}"
  assert_success
  # The whole :443 server, exactly.
  local tls
  tls=$(sed -n '/listen 443 ssl;/,/^}/p' "${SITE}")
  [ "${tls}" = "$(cat <<'EOF'
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name ca.internal portainer.internal;

    ssl_certificate /etc/nginx/ssl/gateway.crt;
    ssl_certificate_key /etc/nginx/ssl/gateway.key;
    ssl_protocols TLSv1.2 TLSv1.3;

    client_max_body_size 0;

    location / {
        proxy_pass https://10.0.0.12:443;
        # Traefik serves the certificate of the requested host: send it as SNI and verify it with the internal root.
        proxy_ssl_server_name on;
        proxy_ssl_name $host;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate /usr/local/share/ca-certificates/phoenix_root_ca.crt;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $phoenix_gateway_connection;
        proxy_read_timeout 300s;
    }
}
EOF
)" ] || fail "the :443 server differs:" "${tls}"
  assert_file_contains "${SITE}" "location ^~ /.well-known/acme-challenge/ {"
  assert_file_contains "${SITE}" "root /var/www/phoenix-acme;"
  assert_file_contains "${SITE}" 'try_files $uri @phoenix_traefik_challenge;'
  assert_file_contains "${SITE}" "proxy_pass http://10.0.0.12:80;"
  assert_file_contains "${SITE}" 'return 301 https://$host$request_uri;'
  [ "$(grep -c 'server_name ca.internal portainer.internal;' "${SITE}")" = 2 ]
}

@test "the renewal timer renews with step ca renew when due, then reloads nginx" {
  run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${UNITS}/phoenix-gateway-cert.service" "ExecCondition=/usr/bin/step certificate needs-renewal /etc/nginx/ssl/gateway.crt"
  assert_file_contains "${UNITS}/phoenix-gateway-cert.service" "ExecStart=/usr/bin/step ca renew --force --ca-url https://10.0.0.10:9000 --root /usr/local/share/ca-certificates/phoenix_root_ca.crt /etc/nginx/ssl/gateway.crt /etc/nginx/ssl/gateway.key"
  assert_file_contains "${UNITS}/phoenix-gateway-cert.service" "ExecStartPost=/usr/bin/systemctl reload nginx.service"
  assert_file_contains "${UNITS}/phoenix-gateway-cert.timer" "OnCalendar=hourly"
  is_enabled phoenix-gateway-cert.timer
  is_active phoenix-gateway-cert.timer
}

@test "second run changes nothing: no certificate request, no nginx -t, no reload" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  refute_called 'nginx -t'
  assert_output_contains "nginx already installed, skipping"
  assert_output_contains "gateway site unchanged, skipping"
  assert_output_contains "gateway site already enabled, skipping"
  assert_output_contains "nginx already running with the current gateway site, skipping reload"
  assert_output_contains "for ca.internal portainer.internal is current, skipping"
  assert_output_contains "phoenix-gateway-cert.timer unchanged, skipping"
}

@test "a new route (another server name) rewrites the site, re-issues the certificate and reloads" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  SERVER_NAMES="ca.internal portainer.internal grafana.internal" run_script "${SCRIPT}"
  assert_success
  assert_file_contains "${SITE}" "server_name ca.internal portainer.internal grafana.internal;"
  assert_called 'step ca certificate ca.internal .* --san grafana.internal$'
  assert_called 'nginx -t$'
  assert_called 'systemctl reload nginx.service$'
  refute_called 'systemctl (start|restart)'
}

@test "a certificate due for renewal is re-issued and nginx reloaded, the site untouched" {
  run_script "${SCRIPT}"
  assert_success
  : >"${STUB_LOG}"
  STUB_EXPIRING=1 run_script "${SCRIPT}"
  assert_success
  assert_output_contains "needs renewal: issuing a new one"
  assert_called 'step ca certificate ca.internal '
  assert_called 'systemctl reload nginx.service$'
  refute_called 'nginx -t'
}

@test "a failed certificate request fails the run and leaves :80 serving challenges, no TLS server" {
  STUB_FAIL=step:certificate run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "step ca certificate for ca.internal portainer.internal failed (is https://10.0.0.10:9000 reachable, and does it reach this guest on port 80?)"
  assert_file_contains "${SITE}" "location ^~ /.well-known/acme-challenge/ {"
  [ "$(grep -c 'listen 443' "${SITE}")" = 0 ]
  [ ! -e "${CRT}" ]
}

@test "a failing nginx -t restores the previous site and does not reload" {
  run_script "${SCRIPT}"
  assert_success
  local before
  before=$(cat "${SITE}")
  : >"${STUB_LOG}"
  STUB_FAIL=nginx:-t UPSTREAM_URL=https://10.0.0.99:443 run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nginx_gateway.sh: ERROR: nginx -t failed with the new gateway site; the previous site was restored and nginx was not reloaded"
  [ "$(cat "${SITE}")" = "${before}" ]
  refute_called 'systemctl reload'
}

@test "a failing nginx -t on the first run removes only the new site" {
  stub_installed nginx
  STUB_FAIL=nginx:-t run_script "${SCRIPT}"
  assert_failure
  [ ! -e "${SITE}" ]
  [ ! -L "${LINK}" ]
  [ -f "${PHOENIX_ROOT}/etc/nginx/sites-available/default" ]
}

@test "without trusted_ca or step_cli it says which feature to apply" {
  rm "${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "/usr/local/share/ca-certificates/phoenix_root_ca.crt not found: apply the trusted_ca feature first"
  echo "root" >"${PHOENIX_ROOT}/usr/local/share/ca-certificates/phoenix_root_ca.crt"
  rm "${STUB_BIN}/step"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "'step' not found: apply the step_cli feature first"
}

@test "missing or unsafe parameters fail with a clear message" {
  UPSTREAM_URL="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nginx_gateway.sh: ERROR: required parameter UPSTREAM_URL is not set"

  SERVER_NAMES="ok.internal evil;}" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains 'SERVER_NAMES must be space-separated server names; got ok.internal\ evil\;\}'

  UPSTREAM_URL="http://10.0.0.12:80" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "UPSTREAM_URL must be an https:// URL such as https://10.0.0.10:9000; got http://10.0.0.12:80"

  UPSTREAM_URL="https://10.0.0.12:443/sub" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "UPSTREAM_URL must be Traefik's websecure entry point, scheme, host and port only; got https://10.0.0.12:443/sub"

  CERT_DIR="/etc/nginx/../ssl" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "CERT_DIR must be an absolute path without . or .. segments"
  [ ! -s "${STUB_LOG}" ]
}

# run_check: runs the check the script installed, under the stub PATH (curl answers as STUB_FAIL says).
run_check() {
  run env PATH="${TEST_PATH}" bash "${PHOENIX_ROOT}/usr/local/sbin/phoenix-gateway-check"
}

@test "the health check asks the gateway's :443 for every route's host and wants an answer below 500" {
  run_script "${SCRIPT}"
  assert_success
  assert_file_mode "${PHOENIX_ROOT}/usr/local/sbin/phoenix-gateway-check" 755
  : >"${STUB_LOG}"
  run_check
  assert_success
  assert_output_contains "route ca.internal: ok (HTTP 200, the certificate verified against the internal root)"
  assert_output_contains "route portainer.internal: ok (HTTP 200"
  # As a client would, on this guest's :443, verifying the gateway's certificate against the internal root.
  assert_called "curl -sS -o /dev/null -w %\{http_code\} --connect-timeout 5 --max-time 30 --resolve ca.internal:443:127.0.0.1 --cacert /usr/local/share/ca-certificates/phoenix_root_ca.crt https://ca.internal/$"
  assert_called "curl .* --resolve portainer.internal:443:127.0.0.1 .* https://portainer.internal/$"

  STUB_FAIL=curl-404:ca.internal run_check
  assert_success

  STUB_FAIL=curl-502:portainer.internal run_check
  assert_failure
  assert_output_contains "route ca.internal: ok"
  assert_output_contains "route portainer.internal: FAILED: HTTP 502 through the gateway: nginx could not reach Traefik or verify its certificate for portainer.internal"
  assert_output_contains "'upstream SSL certificate verify error' means Traefik serves no certificate from the internal CA for portainer.internal yet"

  STUB_FAIL=curl-tls:ca.internal run_check
  assert_failure
  assert_output_contains "route ca.internal: FAILED: the gateway's certificate for ca.internal does not verify against /usr/local/share/ca-certificates/phoenix_root_ca.crt (curl: (60) SSL certificate problem"

  STUB_FAIL=curl run_check
  assert_failure
  assert_output_contains "route ca.internal: FAILED: no answer on port 443 (curl: (22)"
  assert_output_contains "is nginx.service running (systemctl status nginx)?"
}

@test "the check follows the routes: a new server name is checked too, and a second run leaves it" {
  run_script "${SCRIPT}"
  assert_success
  SERVER_NAMES="ca.internal portainer.internal grafana.internal" run_script "${SCRIPT}"
  assert_success
  assert_output_contains "wrote /usr/local/sbin/phoenix-gateway-check (the health check: 3 route(s) through port 443)"
  assert_file_contains "${PHOENIX_ROOT}/usr/local/sbin/phoenix-gateway-check" "readonly HOSTS=(ca.internal portainer.internal grafana.internal)"
  SERVER_NAMES="ca.internal portainer.internal grafana.internal" run_script "${SCRIPT}"
  assert_output_contains "/usr/local/sbin/phoenix-gateway-check unchanged, skipping"
}

@test "the installed check is ShellCheck-clean" {
  command -v shellcheck >/dev/null || skip "shellcheck is not installed (apt-get install shellcheck)"
  run_script "${SCRIPT}"
  assert_success
  run shellcheck "${PHOENIX_ROOT}/usr/local/sbin/phoenix-gateway-check"
  assert_success
}
