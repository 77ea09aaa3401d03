#!/bin/bash
# Installs everything fordeler needs to build, run its demo and run its tests on Debian 12.
# Run as root. Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  # libraries
  libssh-dev libboost-dev libsqlite3-dev sqlite3 libpugixml-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libsystemd-dev libssl-dev
  libgtest-dev libgmock-dev
  # [http] basic auth: crypt_r from libxcrypt
  libcrypt-dev
  # time zones for schedules (GCC 12's std::chrono has none) and the tz database they read
  libhowardhinnant-date-dev tzdata
  # real clients and servers the tests and benchmarks drive
  openssh-client openssh-server python3 python3-paramiko python3-xmltodict python3-asyncssh
  python3-pytest python3-pytest-timeout
  lftp rclone curl php-cli php-phpseclib3 php-ssh2 ssh-audit procps
  # the status page in a real headless browser; /metrics parsed by Prometheus' own parser
  chromium python3-prometheus-client openssl
  # systemd-analyze verify/security, systemd-sysusers, systemd-tmpfiles (tests/systemd)
  systemd
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
