"""Real clients with their quirks: lftp (asks for SFTP v6, sets size/times on the open upload
handle), rclone (sets times after upload), curl and PHP ssh2 (libssh2 1.10: no rsa-sha2, no etm
MACs, sends attributes with an open for reading), phpseclib3 (needs server-sig-algs for RSA).

A client's test is skipped only when its program or PHP module is missing; all are Debian
packages named in scripts/install-deps.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import AccountSpec, random_file, run, sha256_bytes, sha256_file

KEY_NAMES = ["ed25519", "ecdsa256", "rsa2048"]
HERE = Path(__file__).resolve().parent


def need(program: str) -> str:
    path = shutil.which(program)
    if not path:
        pytest.skip(f"{program} is not installed (Debian package; see scripts/install-deps.sh)")
    return path


def need_php_module(module: str) -> None:
    need("php")
    mods = subprocess.run(["php", "-m"], capture_output=True, text=True, timeout=30).stdout
    if module.lower() not in mods.lower().split():
        pytest.skip(f"PHP module {module} is missing (Debian php-ssh2)")


def need_phpseclib() -> None:
    need("php")
    if not Path("/usr/share/php/phpseclib3/autoload.php").exists():
        pytest.skip("phpseclib3 is missing (Debian php-phpseclib3)")


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    return module_daemons.create(
        [AccountSpec("vendor", [keyset.key(n) for n in KEY_NAMES], use_file=True)])


def check(res, what: str) -> str:
    assert res.returncode == 0, (f"{what} failed with {res.returncode}\nstdout:\n{res.stdout}\n"
                                 f"stderr:\n{res.stderr}")
    return res.stdout


# ------------------------------------------------------------------------------------------
# lftp


def lftp(d, key: Path, commands: list[str]):
    need("lftp")
    connect = (f"ssh -a -x -F /dev/null -i {key} -o StrictHostKeyChecking=no "
               "-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes "
               "-o IdentityAgent=none -o ConnectTimeout=10")
    script = "; ".join([
        "set net:max-retries 1", "set net:timeout 15", "set net:reconnect-interval-base 1",
        "set cmd:fail-exit yes", f"set sftp:connect-program '{connect}'",
        f"open -u vendor, -p {d.port} sftp://{d.host}", *commands])
    return run(["lftp", "-c", script], timeout=90)


def test_lftp_put_ls_get(d, keyset, tmp_path):
    local = tmp_path / "lftp_up.dat"
    digest = random_file(local, 2 * (1 << 20) + 3)
    os.utime(local, (1_650_000_000, 1_650_000_000))
    back = tmp_path / "lftp_back.dat"
    out = check(lftp(d, keyset.key("ed25519"), [
        f"put {local} -o OUT/lftp.dat", "cls -1 OUT/", f"get OUT/lftp.dat -o {back}"]), "lftp")
    assert "lftp.dat" in out, out
    assert sha256_file(d.out_dir("vendor") / "lftp.dat") == digest
    assert sha256_file(back) == digest


def test_lftp_cannot_put_into_IN(d, keyset, tmp_path):
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = lftp(d, keyset.key("ed25519"), [f"put {local} -o IN/lftp_in.dat"])
    assert res.returncode != 0, f"lftp put into IN succeeded:\n{res.stdout}\n{res.stderr}"
    assert not (d.in_dir("vendor") / "lftp_in.dat").exists()


def test_lftp_get_from_IN(d, keyset, tmp_path):
    (d.in_dir("vendor") / "lftp_fetch.csv").write_bytes(b"for lftp")
    back = tmp_path / "fetched"
    check(lftp(d, keyset.key("ecdsa256"), [f"get IN/lftp_fetch.csv -o {back}",
                                            "rm IN/lftp_fetch.csv"]), "lftp")
    assert back.read_bytes() == b"for lftp"
    assert not (d.in_dir("vendor") / "lftp_fetch.csv").exists()


# ------------------------------------------------------------------------------------------
# rclone


def rclone(d, key: Path, tmp_path: Path, *args: str, text: bool = True):
    need("rclone")
    conf = tmp_path / "rclone.conf"
    conf.touch()
    env = dict(os.environ)
    env.update({
        "RCLONE_CONFIG_X_TYPE": "sftp", "RCLONE_CONFIG_X_HOST": d.host,
        "RCLONE_CONFIG_X_PORT": str(d.port), "RCLONE_CONFIG_X_USER": "vendor",
        "RCLONE_CONFIG_X_KEY_FILE": str(key), "RCLONE_CONFIG_X_SHELL_TYPE": "none",
        "RCLONE_CONFIG_X_DISABLE_HASHCHECK": "true",
    })
    return run(["rclone", "--config", str(conf), "--low-level-retries", "1", "--retries", "1",
                "--contimeout", "10s", "--timeout", "30s", *args], timeout=90, env=env, text=text)


def test_rclone_copyto_cat_lsf(d, keyset, tmp_path):
    local = tmp_path / "rclone_up.dat"
    digest = random_file(local, 3 * (1 << 20) + 5)
    os.utime(local, (1_640_000_000, 1_640_000_000))
    check(rclone(d, keyset.key("ed25519"), tmp_path, "copyto", str(local), "X:OUT/rclone.dat"),
          "rclone copyto")
    on_disk = d.out_dir("vendor") / "rclone.dat"
    assert sha256_file(on_disk) == digest
    assert int(on_disk.stat().st_mtime) == 1_640_000_000, "rclone's setstat (times) had no effect"
    res = rclone(d, keyset.key("ed25519"), tmp_path, "cat", "X:OUT/rclone.dat", text=False)
    assert res.returncode == 0, res.stderr
    assert sha256_bytes(res.stdout) == digest, "rclone cat returned different bytes"
    listing = check(rclone(d, keyset.key("ed25519"), tmp_path, "lsf", "X:OUT"), "rclone lsf")
    assert "rclone.dat" in listing.split(), listing
    root = check(rclone(d, keyset.key("ed25519"), tmp_path, "lsf", "X:"), "rclone lsf root")
    assert sorted(root.split()) == ["IN/", "OUT/"], root
    back = tmp_path / "rclone_back.dat"
    check(rclone(d, keyset.key("ed25519"), tmp_path, "copyto", "X:OUT/rclone.dat", str(back)),
          "rclone copyto (download)")
    assert sha256_file(back) == digest
    check(rclone(d, keyset.key("ed25519"), tmp_path, "deletefile", "X:OUT/rclone.dat"), "rclone rm")
    assert not on_disk.exists()


def test_rclone_cat_matches(d, keyset, tmp_path):
    (d.out_dir("vendor") / "rclone_cat.csv").write_bytes(b"a;b\n1;2\n")
    res = rclone(d, keyset.key("ecdsa256"), tmp_path, "cat", "X:OUT/rclone_cat.csv")
    assert res.returncode == 0 and res.stdout == "a;b\n1;2\n", f"{res.stdout!r}\n{res.stderr}"


def test_rclone_cannot_copy_into_IN(d, keyset, tmp_path):
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = rclone(d, keyset.key("ed25519"), tmp_path, "copyto", str(local), "X:IN/rclone_in.dat")
    assert res.returncode != 0, f"rclone copy into IN succeeded:\n{res.stderr}"
    assert not (d.in_dir("vendor") / "rclone_in.dat").exists()


# ------------------------------------------------------------------------------------------
# curl (libssh2 1.10)


def curl(d, keyname: str, keyset, url_path: str, *args: str):
    need("curl")
    key = keyset.key(keyname)
    return run(["curl", "-sS", "-k", "--connect-timeout", "10", "--max-time", "60", "--key",
                str(key), "--pubkey", f"{key}.pub", "-u", "vendor:",
                f"sftp://{d.host}:{d.port}{url_path}", *args], timeout=90)


@pytest.mark.parametrize("keyname", ["ed25519", "ecdsa256"])
def test_curl_upload_and_download(d, keyset, tmp_path, keyname):
    local = tmp_path / "curl_up.dat"
    digest = random_file(local, (1 << 20) + 11)
    name = f"curl_{keyname}.dat"
    check(curl(d, keyname, keyset, f"/OUT/{name}", "-T", str(local)), "curl upload")
    assert sha256_file(d.out_dir("vendor") / name) == digest
    back = tmp_path / "curl_back.dat"
    check(curl(d, keyname, keyset, f"/OUT/{name}", "-o", str(back)), "curl download")
    assert sha256_file(back) == digest


def test_curl_download_from_IN(d, keyset, tmp_path):
    """libssh2 sends attributes with its open for reading; in /IN they must be ignored."""
    placed = d.in_dir("vendor") / "curl_fetch.csv"
    digest = random_file(placed, 70_000)
    before = placed.stat()
    back = tmp_path / "fetched"
    check(curl(d, "ed25519", keyset, "/IN/curl_fetch.csv", "-o", str(back)), "curl download IN")
    assert sha256_file(back) == digest
    after = placed.stat()
    assert (after.st_mode, after.st_size, after.st_mtime_ns) == (
        before.st_mode, before.st_size, before.st_mtime_ns), "reading changed the file in IN"


def test_curl_cannot_upload_into_IN(d, keyset, tmp_path):
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = curl(d, "ed25519", keyset, "/IN/curl_in.dat", "-T", str(local))
    assert res.returncode != 0, f"curl upload into IN succeeded: {res.stderr}"
    assert not (d.in_dir("vendor") / "curl_in.dat").exists()


def test_curl_rsa_key_refused(d, keyset, tmp_path):
    """libssh2 1.10 signs RSA with SHA-1 only; fordeler refuses SHA-1 (the vendor guide says so)."""
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = curl(d, "rsa2048", keyset, "/OUT/curl_rsa.dat", "-T", str(local))
    assert res.returncode != 0, "an ssh-rsa (SHA-1) signature from libssh2 was accepted"
    assert not (d.out_dir("vendor") / "curl_rsa.dat").exists()


# ------------------------------------------------------------------------------------------
# PHP: phpseclib3 and the ssh2 extension


PHPSECLIB = r"""<?php
require_once 'phpseclib3/autoload.php';
use phpseclib3\Net\SFTP;
use phpseclib3\Crypt\PublicKeyLoader;
[$_, $host, $port, $user, $keyfile, $local, $remote, $back, $in_remote, $in_back] = $argv;
$sftp = new SFTP($host, (int)$port, 20);
$key = PublicKeyLoader::load(file_get_contents($keyfile));
if (!$sftp->login($user, $key)) {
    fwrite(STDERR, "login failed: " . implode("; ", $sftp->getErrors()) . "\n"); exit(2);
}
if (!$sftp->put($remote, $local, SFTP::SOURCE_LOCAL_FILE)) {
    fwrite(STDERR, "put failed: " . $sftp->getLastSFTPError() . "\n"); exit(3);
}
if ($sftp->get($remote, $back) === false) {
    fwrite(STDERR, "get failed: " . $sftp->getLastSFTPError() . "\n"); exit(4);
}
if ($sftp->get($in_remote, $in_back) === false) {
    fwrite(STDERR, "get from IN failed: " . $sftp->getLastSFTPError() . "\n"); exit(5);
}
$in_put = $sftp->put('IN/phpseclib_in.dat', 'x');
echo json_encode([
    'out' => $sftp->nlist('OUT'), 'root' => $sftp->nlist('.'), 'pwd' => $sftp->pwd(),
    'size' => $sftp->filesize($remote), 'in_put' => $in_put,
    'version' => $sftp->getNegotiatedVersion(),
]), "\n";
"""

PHPSSH2 = r"""<?php
[$_, $host, $port, $user, $keyfile, $remote, $data_file, $back] = $argv;
$c = ssh2_connect($host, (int)$port);
if (!$c) { fwrite(STDERR, "connect failed\n"); exit(2); }
if (!ssh2_auth_pubkey_file($c, $user, "$keyfile.pub", $keyfile, '')) {
    fwrite(STDERR, "auth failed\n"); exit(3);
}
$sftp = ssh2_sftp($c);
if (!$sftp) { fwrite(STDERR, "sftp failed\n"); exit(4); }
$url = "ssh2.sftp://" . intval($sftp) . $remote;
$f = fopen($url, "w");
if (!$f) { fwrite(STDERR, "fopen w failed\n"); exit(5); }
$data = file_get_contents($data_file);
if (fwrite($f, $data) !== strlen($data)) { fwrite(STDERR, "short write\n"); exit(6); }
fclose($f);
$got = file_get_contents($url);
if ($got === false) { fwrite(STDERR, "read back failed\n"); exit(7); }
file_put_contents($back, $got);
$st = ssh2_sftp_stat($sftp, $remote);
$in = @fopen("ssh2.sftp://" . intval($sftp) . "/IN/php_ssh2_in.dat", "w");
echo json_encode(['size' => $st['size'], 'in_open' => $in !== false,
                  'methods' => ssh2_methods_negotiated($c)]), "\n";
"""


@pytest.mark.parametrize("keyname", ["rsa2048", "ed25519"])
def test_phpseclib3(d, keyset, tmp_path, keyname):
    need_phpseclib()
    script = tmp_path / "seclib.php"
    script.write_text(PHPSECLIB)
    local = tmp_path / "up.dat"
    digest = random_file(local, 600_000)
    back = tmp_path / "back.dat"
    placed = d.in_dir("vendor") / f"seclib_fetch_{keyname}.csv"
    placed.write_bytes(b"delivered for phpseclib")
    in_back = tmp_path / "in_back.dat"
    name = f"phpseclib_{keyname}.dat"
    out = check(run(["php", str(script), d.host, str(d.port), "vendor", str(keyset.key(keyname)),
                     str(local), f"OUT/{name}", str(back), f"IN/{placed.name}", str(in_back)],
                    timeout=120), "phpseclib3")
    info = json.loads(out.strip().splitlines()[-1])
    assert sha256_file(d.out_dir("vendor") / name) == digest
    assert sha256_file(back) == digest
    assert in_back.read_bytes() == b"delivered for phpseclib"
    assert info["size"] == 600_000
    assert name in info["out"], info
    assert sorted(n for n in info["root"] if n not in (".", "..")) == ["IN", "OUT"], info
    assert info["pwd"] == "/", info
    assert info["in_put"] is False, "phpseclib could write into IN"
    assert info["version"] == 3, info
    assert not (d.in_dir("vendor") / "phpseclib_in.dat").exists()


@pytest.mark.parametrize("keyname", ["ed25519", "ecdsa256"])
def test_php_ssh2(d, keyset, tmp_path, keyname):
    need_php_module("ssh2")
    script = tmp_path / "ssh2.php"
    script.write_text(PHPSSH2)
    local = tmp_path / "up.dat"
    digest = random_file(local, 300_000)
    back = tmp_path / "back.dat"
    name = f"php_ssh2_{keyname}.dat"
    out = check(run(["php", str(script), d.host, str(d.port), "vendor", str(keyset.key(keyname)),
                     f"/OUT/{name}", str(local), str(back)], timeout=120), "php ssh2")
    info = json.loads(out.strip().splitlines()[-1])
    assert sha256_file(d.out_dir("vendor") / name) == digest
    assert sha256_file(back) == digest
    assert info["size"] == 300_000
    assert info["in_open"] is False, "php ssh2 could open a file in IN for writing"
    assert not (d.in_dir("vendor") / "php_ssh2_in.dat").exists()
