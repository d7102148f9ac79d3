#!/usr/bin/env node
// Test tooling: bridges a TAP to a tslirp WebSocket listener, one Ethernet frame per binary
// message, as a browser emulator's relay client does. Node cannot open a TAP (no TUNSETIFF),
// so socat opens it and passes frames over loopback UDP to this process, which relays them.
//
// Usage: node ws-tap-bridge.mjs TAP URL [HEADER=VALUE...]
// Prints "ws-bridge: open" once the WebSocket is up; on a refused upgrade prints
// "ws-bridge: HTTP STATUS" and exits 3. SIGTERM stops socat and exits 0.
/* global process, console */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { WebSocket } from 'ws';

const [tap, url, ...headerArgs] = process.argv.slice(2);
if (tap === undefined || url === undefined) {
  console.error('usage: ws-tap-bridge.mjs TAP URL [HEADER=VALUE...]');
  process.exit(64);
}
const headers = Object.fromEntries(headerArgs.map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]));
const udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
let socatPort;
let socat;
let framesIn = 0;
let framesOut = 0;
const stop = (code) => {
  socat?.kill('SIGTERM');
  console.log(`ws-bridge: stopping (${code}): ${framesIn} frames from the guest, ${framesOut} to it`);
  process.exit(code);
};
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));

const ws = new WebSocket(url, { headers, perMessageDeflate: false });
ws.binaryType = 'nodebuffer';
ws.on('unexpected-response', (_req, res) => {
  console.log(`ws-bridge: HTTP ${res.statusCode}`);
  stop(3);
});
ws.on('error', (e) => {
  console.log(`ws-bridge: error ${e.message}`);
  stop(4);
});
ws.on('close', () => stop(0));
ws.on('open', () => {
  // socat sends the TAP's frames to our port, from a port it binds; we answer to that port.
  socat = spawn('socat', ['-b', '65536', `TUN,tun-type=tap,iff-no-pi,tun-name=${tap}`, `UDP-DATAGRAM:127.0.0.1:${udp.address().port},bind=127.0.0.1:0`], { stdio: 'inherit' });
  socat.on('exit', () => stop(5));
  console.log('ws-bridge: open');
});
// socat's port is known from its first datagram (the guest's first frame); frames the daemon
// sends before that (an IPv6 router advertisement, an answer racing socat's start) wait here,
// a bounded few, instead of being lost.
const early = [];
const EARLY_MAX = 256;
let earlyDropped = 0;
ws.on('message', (data) => {
  framesOut++;
  if (socatPort !== undefined) udp.send(data, socatPort, '127.0.0.1');
  else if (early.length < EARLY_MAX) early.push(data);
  else earlyDropped++;
});
udp.on('message', (frame, rinfo) => {
  if (socatPort === undefined) {
    socatPort = rinfo.port;
    for (const data of early.splice(0)) udp.send(data, socatPort, '127.0.0.1');
    if (earlyDropped > 0) console.log(`ws-bridge: ${earlyDropped} frames from the daemon dropped before socat's first datagram`);
  }
  framesIn++;
  if (ws.readyState === WebSocket.OPEN) ws.send(frame);
});
