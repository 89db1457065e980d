#!/usr/bin/env python3
"""Sends hostile datagrams to a roamd: replays of a real sealed datagram,
bit-flipped and truncated copies of it, and random garbage.

Run inside a cluster node (root): it sniffs one real gossip datagram arriving
on eth0 (AF_PACKET), then sends 100 hostile datagrams to TARGET ip:port.
Prints what it sent as `sent replay=N flipped=N truncated=N garbage=N`.
"""
import random
import socket
import struct
import sys
import time

def sniff_one(port, not_from, timeout=10.0):
    """One UDP payload to `port` whose sender is not `not_from` (a datagram
    the target sent itself would be refused as its own, not as a replay)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind(("eth0", 0))
    s.settimeout(timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        frame = s.recv(65535)
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            continue
        dport = struct.unpack("!H", udp[2:4])[0]
        src = socket.inet_ntoa(ip[12:16])
        if dport == port and src != not_from:
            return udp[8:]
    raise SystemExit("no gossip datagram seen on eth0")

def main():
    host, port = sys.argv[1].rsplit(":", 1)
    port = int(port)
    rng = random.Random(42)
    real = sniff_one(port, host)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    counts = dict(replay=0, flipped=0, truncated=0, garbage=0)
    def send(kind, data):
        out.sendto(data, (host, port))
        counts[kind] += 1
        time.sleep(0.002)
    for _ in range(30):
        send("replay", real)
    for _ in range(30):
        b = bytearray(real)
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        send("flipped", bytes(b))
    for _ in range(20):
        send("truncated", real[: rng.randrange(len(real))])
    for _ in range(20):
        send("garbage", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400))))
    print("sent " + " ".join(f"{k}={v}" for k, v in counts.items()))

main()
