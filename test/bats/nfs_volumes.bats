#!/usr/bin/env bats
# features/nfs_volumes.sh

load helpers

SCRIPT=features/nfs_volumes.sh

setup() {
  common_setup
  mkdir -p "${PHOENIX_ROOT}/etc"
  printf '# /etc/fstab\nUUID=1234 / ext4 errors=remount-ro 0 1\n' >"${PHOENIX_ROOT}/etc/fstab"
  export NFS_VOLUMES=$'10.0.0.13:/quickOS/vm-persistent-data/1001 /persistent-storage\n\n# shared media\n10.0.0.13:/export/media /mnt/media rw,hard,_netdev'
  FSTAB="${PHOENIX_ROOT}/etc/fstab"
}

mounted() { [ -e "${PHOENIX_ROOT}/var/lib/stub-mounts/${PHOENIX_ROOT//\//%}${1//\//%}" ]; }

@test "first run installs nfs-common, adds the fstab lines and mounts" {
  run_script "${SCRIPT}"
  assert_success
  assert_called 'apt-get .* install --no-install-recommends nfs-common$'
  [ -d "${PHOENIX_ROOT}/persistent-storage" ]
  [ -d "${PHOENIX_ROOT}/mnt/media" ]
  [ "$(cat "${FSTAB}")" = "$(printf '%s\n' '# /etc/fstab' 'UUID=1234 / ext4 errors=remount-ro 0 1' \
    '10.0.0.13:/quickOS/vm-persistent-data/1001 /persistent-storage nfs defaults,_netdev,nofail 0 0' \
    '10.0.0.13:/export/media /mnt/media nfs rw,hard,_netdev 0 0')" ]
  assert_file_mode "${FSTAB}" 644
  assert_called 'systemctl daemon-reload$'
  assert_called "mount ${PHOENIX_ROOT}/persistent-storage$"
  assert_called "mount ${PHOENIX_ROOT}/mnt/media$"
  mounted /persistent-storage
  mounted /mnt/media
}

@test "second run changes nothing and says it skipped" {
  run_script "${SCRIPT}"
  assert_success
  assert_second_run_changes_nothing "${SCRIPT}"
  assert_output_contains "nfs-common already installed, skipping"
  assert_output_contains "fstab entry for /persistent-storage already present, skipping"
  assert_output_contains "/mnt/media already mounted, skipping"
}

@test "a different fstab entry for the mountpoint is replaced, and the script says so" {
  printf '10.0.0.99:/old /mnt/media nfs ro 0 0\n' >>"${FSTAB}"
  run_script "${SCRIPT}"
  assert_success
  assert_output_contains "replacing fstab entry for /mnt/media: '10.0.0.99:/old /mnt/media nfs ro 0 0' -> '10.0.0.13:/export/media /mnt/media nfs rw,hard,_netdev 0 0'"
  [ "$(grep -c ' /mnt/media ' "${FSTAB}")" -eq 1 ]
  assert_file_contains "${FSTAB}" "10.0.0.13:/export/media /mnt/media nfs rw,hard,_netdev 0 0"
  assert_file_contains "${FSTAB}" "UUID=1234 / ext4 errors=remount-ro 0 1"
}

@test "a failing mount fails with a clear message" {
  export STUB_FAIL=mount
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nfs_volumes.sh: ERROR: mounting 10.0.0.13:/quickOS/vm-persistent-data/1001 on /persistent-storage failed (exit 32); check that the server is reachable and exports it to this guest"
}

@test "a mount that does not come up fails with a clear message" {
  export STUB_FAIL=mount:noop
  run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "NFS volume 10.0.0.13:/quickOS/vm-persistent-data/1001 did not come up on /persistent-storage"
}

@test "missing or malformed NFS_VOLUMES fails before changing anything" {
  NFS_VOLUMES="" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "nfs_volumes.sh: ERROR: required parameter NFS_VOLUMES is not set"

  NFS_VOLUMES="10.0.0.13:/export relative/dir" run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "NFS_VOLUMES line 1: mountpoint 'relative/dir' must be an absolute path"

  NFS_VOLUMES=$'10.0.0.13:/a /mnt/a\n10.0.0.13:/b /mnt/a' run_script "${SCRIPT}"
  assert_failure
  assert_output_contains "NFS_VOLUMES line 2: mountpoint /mnt/a is listed twice"
  [ ! -s "${STUB_LOG}" ]
}
