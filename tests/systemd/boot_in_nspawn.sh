#!/bin/bash
# Runs fordelerd.service under a real systemd (252, booted with systemd-nspawn) on a throw-away
# overlay of this machine's root, installed exactly as in production:
#   DESTDIR=<overlay> cmake --install BUILD --prefix /usr, systemd-sysusers, systemd-tmpfiles,
#   host keys generated as docs/operations.md says; the default fordeler.toml, with only its
#   port changed (PORT, default 22299) and one vendor, one recipient and a route in conf.d/.
# Then checks, from outside: the service is active with the sandbox applied (no capabilities,
# seccomp, NoNewPrivs, its own user, LimitNOFILE), an upload with OpenSSH sftp is delivered with
# its metadata and the receipt, `systemctl reload` reloads, the CLI works as root inside, and
# `systemctl stop` ends it with status 0.
#
# Usage: tests/systemd/boot_in_nspawn.sh BUILD_DIR   (root; apt-get install systemd-container)
# Not part of ctest: it mounts an overlay and boots a container. Works without systemd as the
# host's PID 1 (--register=no --keep-unit).
set -euo pipefail
build=$(realpath "${1:?usage: $0 BUILD_DIR}")
port=${PORT:-22299}
command -v systemd-nspawn >/dev/null || { echo "needs systemd-nspawn (systemd-container)"; exit 2; }

work=$(mktemp -d /tmp/fordeler-nspawn.XXXXXX)
root=$work/root
nspawn_pid=
cleanup() {
  [[ -n $nspawn_pid ]] && kill "$nspawn_pid" 2>/dev/null && sleep 2
  umount "$root" 2>/dev/null || true
  umount "$work/rw" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rw" "$root" "$work/keys" "$work/files"
mount -t tmpfs tmpfs "$work/rw"
mkdir -p "$work/rw/upper" "$work/rw/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/rw/upper,workdir=$work/rw/work" "$root"

echo "--- install as in production"
DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null
systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/fordeler.conf"
systemd-tmpfiles --root="$root" --create "$root/usr/lib/tmpfiles.d/fordeler.conf"
etc=$root/etc/fordeler
ssh-keygen -q -t ed25519 -N '' -C fordeler -f "$etc/keys/ssh_host_ed25519_key"
ssh-keygen -q -t rsa -b 3072 -N '' -C fordeler -f "$etc/keys/ssh_host_rsa_key"
chroot "$root" sh -c 'chgrp fordeler /etc/fordeler/keys/ssh_host_*_key &&
                      chmod 0640 /etc/fordeler/keys/ssh_host_*_key'
sed -i "s/:2222\"/:$port\"/g" "$etc/fordeler.toml"
for a in vendor flis; do ssh-keygen -q -t ed25519 -N '' -C "$a" -f "$work/keys/$a"; done
cat >"$etc/conf.d/test.toml" <<EOF
[[account]]
id = "kmd-oekonomi"
authority = "urn:oio:cvr-nr:55133018"
it_system = "kmd-oekonomi"
keys = ["$(cat "$work/keys/vendor.pub")"]

[[account]]
id = "flis"
it_system = "FLIS"
keys = ["$(cat "$work/keys/flis.pub")"]

[[route]]
id = "oekonomi-kmd-flis"
data_area = "oekonomi"
sender = "kmd-oekonomi"
authorities = ["*"]
recipients = ["flis"]
EOF
chroot "$root" fordeler check-config
chroot "$root" systemctl enable fordelerd.service
cat >"$root/etc/systemd/system/fordeler-test.target" <<EOF
[Unit]
Description=fordeler test boot: basic system and fordelerd only
Requires=basic.target
After=basic.target
Wants=fordelerd.service
EOF

echo "--- boot"
setsid systemd-nspawn -D "$root" -b --register=no --keep-unit --console=pipe \
  --machine="fordeler-test-$$" --link-journal=no systemd.unit=fordeler-test.target \
  </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
in_container() {
  local init
  init=$(pgrep -P "$nspawn_pid" -x systemd | head -1)
  nsenter -t "$init" -a "$@"
}
for _ in $(seq 60); do
  state=$(in_container systemctl is-active fordelerd 2>/dev/null || true)
  [[ $state == active || $state == failed ]] && break
  sleep 1
done
in_container systemctl status fordelerd --no-pager || { cat "$work/console.log"; exit 1; }
main=$(in_container systemctl show -P MainPID fordelerd)
in_container grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' "/proc/$main/status"
in_container grep -q '^CapEff:.0000000000000000' "/proc/$main/status"
in_container grep -q '^NoNewPrivs:.1' "/proc/$main/status"
in_container grep -q '^Seccomp:.2' "/proc/$main/status"
in_container grep 'Max open files' "/proc/$main/limits"

echo "--- a transfer"
cd "$work/files"
name=oekonomi_2026-11-22.csv
printf 'konto;beloeb\n1010;2500.00\n' >"$name"
cat >"$name.trigger" <<XML
<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">
  <FileDescriptor><FileName>$name</FileName><SizeInBytes>$(stat -c %s "$name")</SizeInBytes>
    <Sender>kmd-oekonomi</Sender><Recipients>flis</Recipients></FileDescriptor>
</ns2:Trigger>
XML
sftp_as() {
  sftp -q -b - -P "$port" -i "$work/keys/$1" -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes "$2@127.0.0.1"
}
printf 'put %s OUT/%s\nput %s.trigger OUT/%s.trigger\n' "$name" "$name" "$name" "$name" |
  sftp_as vendor kmd-oekonomi
sleep 2
printf 'get IN/%s got\nget IN/%s.metadata got.metadata\nrm IN/%s\n' "$name" "$name" "$name" |
  sftp_as flis flis
printf 'get IN/%s.sftpreceipt receipt.xml\n' "$name" | sftp_as vendor kmd-oekonomi
cmp "$name" got
grep -q '<InfRef>FLISOekonomiHent_1</InfRef>' got.metadata
grep -q '<Message>SUCCESS</Message>' receipt.xml

echo "--- reload, CLI, stop"
in_container systemctl reload fordelerd
in_container journalctl -u fordelerd --no-pager | grep -q 'event=reloaded'
in_container fordeler status
in_container systemctl stop fordelerd
[[ $(in_container systemctl show -P ExecMainStatus fordelerd) == 0 ]]
in_container journalctl -u fordelerd --no-pager -o cat | tail -n 25
echo "OK: fordelerd.service ran under systemd $(systemctl --version | head -1 | cut -d' ' -f2)"
