#!/usr/bin/env bats
# features/docker.sh

load helpers

SCRIPT=features/docker.sh
PACKAGES="docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin"

setup() {
  common_setup
  mkdir -p "${PHOENIX_ROOT}/etc"
  printf 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' >"${PHOENIX_ROOT}/etc/os-release"
  printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n' >"${PHOENIX_ROOT}/etc/passwd"
  printf 'root:x:0:\nalice:x:1000:\ndocker:x:998:\n' >"${PHOENIX_ROOT}/etc/group"
}

@test "first run adds Docker's repository, installs the engine and starts it" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'curl -fsSL .* https://download.docker.com/linux/debian/gpg$'
  assert_file_mode "${PHOENIX_ROOT}/etc/apt/keyrings/docker.asc" 644
  [ "$(cat "${PHOENIX_ROOT}/etc/apt/sources.list.d/docker.list")" = "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable" ]
  assert_called "apt-get .* install --no-install-recommends ${PACKAGES}$"
  assert_called 'systemctl enable docker.service$'
  assert_called 'systemctl start docker.service$'
  [ ! -e "${PHOENIX_ROOT}/etc/docker/daemon.json" ]
  assert_output_contains "no TCP listener configured for dockerd"
}

@test "second run changes nothing and says it skipped" {
  DOCKER_USER=alice run_script "${SCRIPT}"
  assert_success
  assert_called 'usermod -aG docker alice$'
  export DOCKER_USER=alice
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "Docker apt key already present, skipping"
  assert_output_contains "Docker apt repository already configured, skipping"
  assert_output_contains "Docker packages already installed, skipping"
  assert_output_contains "docker.service already running, skipping"
  assert_output_contains "alice already in group docker, skipping"
}

@test "Ubuntu uses UBUNTU_CODENAME and the ubuntu repository" {
  printf 'ID=ubuntu\nVERSION_CODENAME=noble\nUBUNTU_CODENAME=noble\n' >"${PHOENIX_ROOT}/etc/os-release"
  STUB_ARCH=arm64 run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${PHOENIX_ROOT}/etc/apt/sources.list.d/docker.list")" = "deb [arch=arm64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable" ]
}

@test "a daemon.json with a tcp:// host is refused before anything is installed" {
  mkdir -p "${PHOENIX_ROOT}/etc/docker"
  echo '{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tls": true}' >"${PHOENIX_ROOT}/etc/docker/daemon.json"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "docker.sh: ERROR: ${PHOENIX_ROOT}/etc/docker/daemon.json configures a tcp:// host; Phoenix never exposes the Docker API on TCP"
  [ ! -s "${STUB_LOG}" ]
  [ "$(cat "${PHOENIX_ROOT}/etc/docker/daemon.json")" = '{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tls": true}' ]
}

@test "a docker.service drop-in with -H tcp:// is refused" {
  mkdir -p "${PHOENIX_ROOT}/etc/systemd/system/docker.service.d"
  printf '[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// -H tcp://0.0.0.0:2375\n' >"${PHOENIX_ROOT}/etc/systemd/system/docker.service.d/override.conf"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "override.conf starts dockerd with a tcp:// host"
}

@test "a unix-socket-only daemon.json is accepted and left alone" {
  mkdir -p "${PHOENIX_ROOT}/etc/docker"
  echo '{"hosts": ["unix:///var/run/docker.sock"], "dns": ["10.0.0.1"]}' >"${PHOENIX_ROOT}/etc/docker/daemon.json"
  run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${PHOENIX_ROOT}/etc/docker/daemon.json")" = '{"hosts": ["unix:///var/run/docker.sock"], "dns": ["10.0.0.1"]}' ]
}

@test "conflicting distribution packages stop the installation" {
  stub_installed docker.io
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "conflicting distribution packages installed: docker.io; remove them (apt-get remove docker.io) and re-run"
  refute_called "apt-get .* install --no-install-recommends docker-ce"
}

@test "failures are reported clearly: apt-get, unknown DOCKER_USER" {
  STUB_FAIL=apt-get:install run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "docker.sh: ERROR: apt-get install failed for: ca-certificates curl"

  DOCKER_USER=bob run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "DOCKER_USER 'bob' does not exist"
}
