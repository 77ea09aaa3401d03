#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/). Run once by hand
when the seeds should change; the seeds are committed. Regressions found by fuzzing are added to
the same folders (and become unit tests)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def triggers():
    full = f"""<?xml version="1.0" encoding="UTF-8"?>
<ns2:Trigger xmlns:ns2="{NS}">
  <FileDescriptor>
    <FileName>oekonomi_2026-11-22.csv</FileName>
    <SizeInBytes>1048576</SizeInBytes>
    <Sender>kmd-oekonomi</Sender>
    <SendersFileId>a1b2c3</SendersFileId>
    <Recipients>flis</Recipients>
    <Recipients>lis-aarhus</Recipients>
    <Sha256>{'ab' * 32}</Sha256>
  </FileDescriptor>
  <FileContentDescriptor>
    <SFTPDynamicRoutingInfo>
      <InfRef>FLISOekonomiAflever_1</InfRef>
      <SenderIt-system>kmd-oekonomi</SenderIt-system>
      <SenderAuthority>urn:oio:cvr-nr:55133018</SenderAuthority>
      <TransactionId>t-1</TransactionId>
      <SenderTimestamp>2026-11-22T02:00:00Z</SenderTimestamp>
      <RecipientIt-system>FLIS</RecipientIt-system>
      <RecipientAuthority>urn:oio:cvr-nr:55133018</RecipientAuthority>
      <RouteParameterList><RouteParameter>p1</RouteParameter></RouteParameterList>
    </SFTPDynamicRoutingInfo>
  </FileContentDescriptor>
</ns2:Trigger>
"""
    write("trigger", "full.xml", full)
    write("trigger", "dynamic.xml", full.replace("<Recipients>flis</Recipients>\n    <Recipients>lis-aarhus</Recipients>",
                                                 "<Recipients>ROUTING_V1_0_0</Recipients>"))
    write("trigger", "default-ns.xml", f'<Trigger xmlns="{NS}"><FileDescriptor><FileName>x</FileName>'
          "<SizeInBytes>1</SizeInBytes><Sender>s</Sender><Recipients>r</Recipients>"
          "</FileDescriptor></Trigger>")
    write("trigger", "doctype.xml", '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    write("trigger", "xxe.xml", '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    write("trigger", "latin1.xml", '<?xml version="1.0" encoding="ISO-8859-1"?><x>\xe6</x>'.encode("latin-1"))


def packet(ptype, payload):
    return struct.pack(">IB", len(payload) + 1, ptype) + payload


def string(s):
    s = s if isinstance(s, bytes) else s.encode()
    return struct.pack(">I", len(s)) + s


def sftp():
    u32 = lambda v: struct.pack(">I", v)
    u64 = lambda v: struct.pack(">Q", v)
    attrs_none = u32(0)
    open_w = packet(3, u32(1) + string("OUT/f.csv") + u32(0x1A) + attrs_none)
    handle = string(struct.pack(">I", 0))
    write_p = packet(6, u32(2) + handle + u64(0) + string(b"hello"))
    close_p = packet(4, u32(3) + handle)
    write("sftp", "upload", open_w + write_p + close_p)
    write("sftp", "stat-realpath", packet(17, u32(1) + string("/OUT/../IN")) +
          packet(16, u32(2) + string(".")) + packet(7, u32(3) + string("IN")))
    write("sftp", "listdir", packet(11, u32(1) + string("/OUT")) + packet(12, u32(2) + handle))
    write("sftp", "rename", packet(18, u32(1) + string("OUT/a") + string("OUT/a.trigger")) +
          packet(200, u32(2) + string("posix-rename@openssh.com") + string("OUT/a") + string("OUT/b")))
    write("sftp", "extensions", packet(200, u32(1) + string("statvfs@openssh.com") + string("/OUT")) +
          packet(200, u32(2) + string("limits@openssh.com")))
    write("sftp", "setstat-in", packet(9, u32(1) + string("IN/x") + u32(4) + u32(0o777)))
    write("sftp", "oversized", struct.pack(">I", 300 * 1024) + b"\x03")
    write("sftp", "mkdir-symlink", packet(14, u32(1) + string("OUT/d") + attrs_none) +
          packet(20, u32(2) + string("/etc/passwd") + string("OUT/l")))
    # A 1-byte file reopened for appending, then 3 x 30,000 bytes at offset 0: the harness's
    # 64 KiB max_file_size must stop it (appends once counted from the offset, not the end).
    handle1 = string(struct.pack(">I", 1))
    write("sftp", "append-past-limit",
          open_w + packet(6, u32(2) + handle + u64(0) + string(b"x")) + close_p +
          packet(3, u32(4) + string("OUT/f.csv") + u32(0x06) + attrs_none) +
          b"".join(packet(6, u32(5 + i) + handle1 + u64(0) + string(b"A" * 30000)) for i in range(3)) +
          packet(4, u32(9) + handle1))


def paths():
    for i, p in enumerate(["OUT/x", "/OUT/./x", "../../etc/passwd", "/IN//f.metadata", "økonomi_æøå.csv",
                           ".hidden", "a\x01b", "/OUT/x/y", "\xc0\xaf", "OUT/" + "a" * 300]):
        write("path", f"seed{i}", p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p)


def configs():
    write("config", "full.toml", """
[server]
listen = ["127.0.0.1:0", "[::1]:2222"]
max_sessions = 10
login_grace = "30s"
[storage]
root = "state"
[delivery]
trigger_grace = "60s"
max_file_size = "10GiB"
metadata_format = "filemetadata"
[[account]]
id = "vendor"
authority = "urn:oio:cvr-nr:55133018"
keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake x"]
[[data_area]]
id = "oekonomi"
name = "Økonomi"
deliver_service = "FLISOekonomiAflever_1"
fetch_service = "FLISOekonomiHent_1"
[[route]]
id = "r"
data_area = "oekonomi"
sender = "vendor"
authorities = ["*"]
recipients = ["vendor"]
""")
    write("config", "broken.toml", "[server\nlisten = 5\n[[account]]\nid = \"\"\n")


def controls():
    uuid = "5f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c71"
    lines = [
        f'{{"command": "retry", "uuid": "{uuid}"}}',
        f'{{"command": "recall", "uuid": "{uuid}", "recipient": "flis"}}',
        f'{{"command": "redeliver", "uuid": "{uuid}", "recipient": "lis-\\u00e6\\u00f8\\u00e5"}}',
        f'{{"command": "purge", "uuid": "{uuid}", "by": 7, "extra": [1, {{"a": null}}]}}',
        '{"command": 5, "uuid": ["x"]}',
        '[1, 2, 3]',
    ]
    for i, line in enumerate(lines):
        write("control", f"seed{i}", line)


if __name__ == "__main__":
    triggers()
    sftp()
    paths()
    configs()
    controls()
