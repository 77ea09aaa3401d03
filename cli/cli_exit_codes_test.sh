#!/bin/bash
# Runs the real `fordeler` binary ($1) and checks exit statuses and streams (contract §10):
# 0 fine, 2 usage or configuration error; usage and errors on stderr.
set -u
fordeler=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0

# expect STATUS STREAM PATTERN -- ARGS...: runs fordeler ARGS, checks its exit status and that
# STREAM (out or err) matches the extended regex PATTERN.
expect() {
  local want=$1 stream=$2 pattern=$3
  shift 4
  "$fordeler" "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [[ $got != "$want" ]]; then
    echo "FAIL: fordeler $* exited $got, want $want"; cat "$dir/out" "$dir/err"; failures=$((failures + 1))
  elif ! grep -Eq -- "$pattern" "$dir/$stream"; then
    echo "FAIL: fordeler $*: std$stream does not match /$pattern/"; cat "$dir/$stream"
    failures=$((failures + 1))
  fi
}

cat >"$dir/bad.toml" <<'TOML'
[server]
listen = ["0.0.0.0:2222"]
max_sesions = 4
TOML
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519" </dev/null >/dev/null
cat >"$dir/good.toml" <<'TOML'
[server]
host_keys = ["host_ed25519"]

[[account]]
id = "flis"
TOML
cat >"$dir/bad-expect.toml" <<'TOML'
[[route]]
id = "r"
data_area = "x"
sender = "a"
authorities = ["*"]
recipients = ["b"]
expect = ["daily 06:00", "daily 25:00"]
TOML

expect 2 err "^$dir/bad-expect.toml:7: route \"r\" expect: \"daily 25:00\": the time must be HH:MM" \
  -- --config "$dir/bad-expect.toml" check-config
expect 2 err "^$dir/bad.toml:3: \[server\] unknown key \"max_sesions\" \(did you mean \"max_sessions\"\?\)$" \
  -- --config "$dir/bad.toml" check-config
expect 2 err "bad.toml:3" -- check-config --config "$dir/bad.toml"
expect 2 out '"ok": false' -- --config "$dir/bad.toml" check-config --json
expect 2 err "cannot read $dir/none.toml: No such file or directory" -- --config "$dir/none.toml" check-config
expect 0 out "configuration OK" -- --config "$dir/good.toml" check-config
expect 0 out '"ok": true' -- --config "$dir/good.toml" check-config --json
expect 2 err "check-config" --                        # no command: usage
expect 2 err "frobnicate" -- frobnicate               # unknown command
expect 2 err "--bogus" -- check-config --bogus        # unknown option
expect 2 err "Usage" -- --config                      # option without its value
expect 2 err "--json goes after the command: fordeler status --json" -- --config "$dir/good.toml" --json status
expect 0 out "check-config" -- --help
expect 0 out "json" -- check-config --help
expect 0 out "fordeler [0-9]" -- --version

if ((failures > 0)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
