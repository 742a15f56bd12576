"""The records the write-path tests produce with the Python clients, generated from their
index so that the Rust tests (broker/tests/write_path/records.rs) can regenerate them
without the producer printing them, and a compact digest of what a consumer read.

Record i of a run tagged `tag`, with timestamp `base_ts + i`:

    key      None when i % 53 == 7, else "<tag>-key-<(i * 7) % 1009>" (1009 keys, spread over
             the partitions by the client's partitioner)
    value    None when i % 97 == 5 and the key is not None (kafka-python refuses a record
             without key and value); b"" when i % 100 == 42; else "<tag>-<i>:" followed by
             `size` bytes of PATTERN from `off`, where h = (i * 2654435761) mod 2**32,
             size = 20000 when i % 1000 == 999 else h % 400, off = (h >> 8) % (65536 - size)
    headers  i % 3 == 0: none; 1: [("i", "<i>")]; 2: [("i", "<i>"), ("tag", "<tag>"),
             ("empty", b"")]; then ("null", None) appended when i % 7 == 3

PATTERN is 65536 bytes: the top byte of each step of the 64-bit LCG
x = x * 6364136223846793005 + 1442695040888963407 (mod 2**64) from x = 0x853c49e6748fea9b.

A digest line (what the consumers print per record):

    {"p": partition, "o": offset, "t": timestamp, "k": "<hex>" | null,
     "vl": value length | -1 for null, "vc": zlib.crc32(value) | 0 for null,
     "h": [["<key>", "<hex>" | null], ...]}
"""

import json
import zlib

MASK64 = (1 << 64) - 1


def _pattern():
    x = 0x853C49E6748FEA9B
    out = bytearray(65536)
    for j in range(65536):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK64
        out[j] = x >> 56
    return bytes(out)


PATTERN = _pattern()


def key(i, tag):
    if i % 53 == 7:
        return None
    return f"{tag}-key-{(i * 7) % 1009}".encode()


def value(i, tag):
    if i % 97 == 5 and i % 53 != 7:
        return None
    if i % 100 == 42:
        return b""
    h = (i * 2654435761) & 0xFFFFFFFF
    size = 20000 if i % 1000 == 999 else h % 400
    off = (h >> 8) % (65536 - size)
    return f"{tag}-{i}:".encode() + PATTERN[off:off + size]


def headers(i, tag, with_null=True):
    kind = i % 3
    out = []
    if kind >= 1:
        out.append(("i", str(i).encode()))
    if kind == 2:
        out.append(("tag", tag.encode()))
        out.append(("empty", b""))
    if with_null and i % 7 == 3:
        out.append(("null", None))
    return out


def digest_line(partition, offset, timestamp, k, v, hdrs):
    return json.dumps({
        "p": partition,
        "o": offset,
        "t": timestamp,
        "k": None if k is None else bytes(k).hex(),
        "vl": -1 if v is None else len(v),
        "vc": 0 if v is None else zlib.crc32(v),
        "h": [[hk if isinstance(hk, str) else bytes(hk).decode("utf-8", "replace"),
               None if hv is None else bytes(hv).hex()] for hk, hv in (hdrs or [])],
    }, separators=(",", ":"))
