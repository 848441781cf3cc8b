#!/usr/bin/env bats
# features/base_setup.sh

load helpers

SCRIPT=features/base_setup.sh

setup() {
  common_setup
  mkdir -p "${PHOENIX_ROOT}/usr/share/zoneinfo/Etc" "${PHOENIX_ROOT}/usr/share/zoneinfo/Europe" "${PHOENIX_ROOT}/etc"
  touch "${PHOENIX_ROOT}/usr/share/zoneinfo/Etc/UTC" "${PHOENIX_ROOT}/usr/share/zoneinfo/Europe/Berlin"
  printf 'root:x:0:0:root:/root:/bin/bash\n' >"${PHOENIX_ROOT}/etc/passwd"
  printf 'root:x:0:\nsudo:x:27:\n' >"${PHOENIX_ROOT}/etc/group"
}

@test "first run installs the base packages, generates the locale and sets time zone and unattended upgrades" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get -q -o DPkg::Lock::Timeout=300 update$'
  assert_called 'apt-get -y -q -o DPkg::Lock::Timeout=300 install --no-install-recommends ca-certificates curl gnupg jq locales rsync vim htop tzdata unattended-upgrades$'
  assert_called 'locale-gen en_US.UTF-8$'
  assert_called 'update-locale LANG=en_US.UTF-8$'
  assert_file_contains "${PHOENIX_ROOT}/etc/locale.gen" "en_US.UTF-8 UTF-8"
  [ "$(readlink "${PHOENIX_ROOT}/etc/localtime")" = /usr/share/zoneinfo/Etc/UTC ]
  [ "$(cat "${PHOENIX_ROOT}/etc/timezone")" = Etc/UTC ]
  assert_file_mode "${PHOENIX_ROOT}/etc/apt/apt.conf.d/20auto-upgrades" 644
  assert_file_contains "${PHOENIX_ROOT}/etc/apt/apt.conf.d/20auto-upgrades" 'APT::Periodic::Unattended-Upgrade "1";'
  refute_called useradd
}

@test "second run changes nothing and says it skipped" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "base packages already installed, skipping"
  assert_output_contains "locale en_US.UTF-8 already generated, skipping"
  assert_output_contains "default locale already LANG=en_US.UTF-8, skipping"
  assert_output_contains "time zone already Etc/UTC, skipping"
  assert_output_contains "unattended upgrades already true, skipping"
}

@test "only missing packages are installed" {
  stub_installed ca-certificates curl gnupg jq locales rsync vim tzdata unattended-upgrades
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends htop$'
}

@test "a commented locale in locale.gen is uncommented and the other lines are kept" {
  printf '# de_DE.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8\n' >"${PHOENIX_ROOT}/etc/locale.gen"
  run_script "${SCRIPT}"
  assert_success
  [ "$(cat "${PHOENIX_ROOT}/etc/locale.gen")" = "$(printf '# de_DE.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8')" ]
}

@test "custom time zone, locale and UNATTENDED_UPGRADES=false" {
  export TIMEZONE=Europe/Berlin LOCALE=de_DE.UTF-8 UNATTENDED_UPGRADES=false BASE_PACKAGES="curl"
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends curl tzdata locales$'
  assert_called 'locale-gen de_DE.UTF-8$'
  [ "$(readlink "${PHOENIX_ROOT}/etc/localtime")" = /usr/share/zoneinfo/Europe/Berlin ]
  assert_file_contains "${PHOENIX_ROOT}/etc/apt/apt.conf.d/20auto-upgrades" 'APT::Periodic::Unattended-Upgrade "0";'
  assert_second_run_changes_nothing "${SCRIPT}"
}

@test "admin user is created with sudo and the SSH key, once" {
  export ADMIN_USER=ops ADMIN_SSH_KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStub ops@laptop"
  run_script "${SCRIPT}"
  assert_success
  assert_called 'useradd --create-home --user-group --shell /bin/bash ops$'
  assert_called 'usermod -aG sudo ops$'
  local keys="${PHOENIX_ROOT}/home/ops/.ssh/authorized_keys"
  assert_file_mode "${PHOENIX_ROOT}/home/ops/.ssh" 700
  assert_file_mode "${keys}" 600
  [ "$(cat "${keys}")" = "${ADMIN_SSH_KEY}" ]
  assert_called "chown ops: ${keys}$"

  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "user ops already exists, skipping creation"
  assert_output_contains "user ops already in group sudo, skipping"
  assert_output_contains "SSH key already authorized for ops, skipping"
}

@test "fails with a clear message when apt-get install fails" {
  export STUB_FAIL="apt-get:install"
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "base_setup.sh: ERROR: apt-get install failed for: ca-certificates curl"
}

@test "fails on an unknown time zone and on invalid parameters" {
  TIMEZONE=Mars/Olympus run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "unknown TIMEZONE 'Mars/Olympus'"

  UNATTENDED_UPGRADES=yes run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "UNATTENDED_UPGRADES must be true or false; got yes"

  ADMIN_SSH_KEY="ssh-ed25519 AAAA x" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "ADMIN_SSH_KEY is set but ADMIN_USER is not"
}

@test "an unexpected failure is reported with line and command by the ERR trap" {
  mkdir -p "${PHOENIX_ROOT}/etc/apt"
  touch "${PHOENIX_ROOT}/etc/apt/apt.conf.d" # a file where a directory is expected
  stub_installed ca-certificates curl gnupg jq locales rsync vim htop tzdata unattended-upgrades
  run_script "${SCRIPT}"
  assert_failure
  [[ "${output}" =~ base_setup.sh:\ line\ [0-9]+:\ \'mkdir\ -p\ .*\'\ failed\ \(exit\ 1\) ]] || fail "${output}"
}
