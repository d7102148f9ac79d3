#!/usr/bin/python3
"""A small PCP (RFC 6887) and NAT-PMP client for the portmap integration test: Debian has no
PCP client, so requests are built here from the RFC's layouts with struct, independently of
tslirp's code, and sent over an ordinary UDP socket from the guest namespace.

Usage: pcp-client.py SERVER CLIENT_IP REQUEST...
REQUEST is one of
  map:PROTO:INTERNAL:SUGGESTED:LIFETIME:NONCEHEX[:prefer]   a PCP MAP request
  announce                                                   a PCP ANNOUNCE request
  raw:HEX                                                    these bytes as they are
Prints one line per request: the response as hex, or 'timeout'.
"""
import binascii
import socket
import struct
import sys


def mapped(ip):
    return b'\0' * 10 + b'\xff\xff' + socket.inet_aton(ip)


def build(spec, client_ip):
    kind, _, rest = spec.partition(':')
    if kind == 'raw':
        return binascii.unhexlify(rest)
    if kind == 'announce':
        return struct.pack('!BBHI', 2, 0, 0, 0) + mapped(client_ip)
    if kind == 'map':
        parts = rest.split(':')
        proto, internal, suggested, lifetime = (int(x) for x in parts[:4])
        nonce = binascii.unhexlify(parts[4])
        header = struct.pack('!BBHI', 2, 1, 0, lifetime) + mapped(client_ip)
        body = nonce + struct.pack('!B3xHH', proto, internal, suggested) + b'\0' * 16
        options = struct.pack('!BBH', 2, 0, 0) if len(parts) > 5 and parts[5] == 'prefer' else b''
        return header + body + options
    raise SystemExit('unknown request ' + spec)


def main():
    server, client_ip, *requests = sys.argv[1:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for spec in requests:
        data = build(spec, client_ip)
        answer = 'timeout'
        for _ in range(3):  # RFC 6887 §8.1.1: retransmit until answered (bounded here)
            s.sendto(data, (server, 5351))
            try:
                reply, _ = s.recvfrom(2048)
                answer = binascii.hexlify(reply).decode()
                break
            except socket.timeout:
                continue
        print(answer, flush=True)


main()
