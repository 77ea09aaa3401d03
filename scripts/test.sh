#!/bin/bash
# Installs what fordeler needs, builds it twice and runs the whole test suite:
#   1. gcc, Release: unit tests and end-to-end tests with real clients;
#   2. clang, ASan+UBSan (+LeakSanitizer): the same suites under the sanitizers.
# Usage: scripts/test.sh [--release-only|--sanitize-only]   (as root on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."

want_release=1 want_sanitize=1
case "${1:-}" in
  --release-only) want_sanitize=0 ;;
  --sanitize-only) want_release=0 ;;
  "") ;;
  *) echo "usage: $0 [--release-only|--sanitize-only]" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
jobs=$(nproc)

if ((want_release)); then
  echo "=== gcc Release build ==="
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORDELER_WERROR=ON \
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++
  cmake --build build/release -j "$jobs"
  echo "=== tests (gcc Release) ==="
  ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 600
fi

if ((want_sanitize)); then
  echo "=== clang ASan+UBSan build ==="
  cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORDELER_WERROR=ON \
    -DFORDELER_SANITIZE=ON -DFORDELER_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  cmake --build build/sanitize -j "$jobs"
  echo "=== tests (clang ASan+UBSan) ==="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build/sanitize --output-on-failure -j "$jobs" --timeout 900 -LE heavy
fi
