#!/usr/bin/env node
// The baseline relay of bench/v86-wisp.ts: wisp-js's server (@mercuryworkshop/wisp-js, the
// server v86's wisp adapter, `relay_url: 'wisp://…'`, is meant for) on 127.0.0.1, in its own
// process so its CPU time can be read from /proc. It prints `WISP-PORT N` once listening.
// It lets the guest reach one place only: TCP to 192.0.2.1 (TEST-NET-1, an address no host
// here owns), which it connects to 127.0.0.1 instead. Every other destination, and every UDP
// stream, is refused, so the benchmark's traffic stays on the loopback.
// Usage: node bench/lib/wisp-server.mjs [--log]
/* global process, console */
import http from 'node:http';
import { server as wisp, logging } from '@mercuryworkshop/wisp-js/server';

const STAND_IN = '192.0.2.1';
logging.set_level(process.argv.includes('--log') ? logging.DEBUG : logging.ERROR);
wisp.options.hostname_whitelist = [/^192\.0\.2\.1$/];
wisp.options.allow_private_ips = true; // 192.0.2.0/24 is "reserved" to wisp-js's filter
wisp.options.allow_loopback_ips = false;
wisp.options.allow_udp_streams = false;

// wisp-js does not export its Node TCP socket class; a connection made without options holds it.
const NodeTCPSocket = new wisp.ServerConnection({}, '/').TCPSocket;
class LoopbackOnly extends NodeTCPSocket {
  constructor(hostname, port) {
    super(hostname === STAND_IN ? '127.0.0.1' : '0.0.0.0', port);
    this.allowed = hostname === STAND_IN;
  }
  async connect() {
    if (!this.allowed) throw new Error('only 192.0.2.1 is reachable through this server');
    return super.connect();
  }
}

const web = http.createServer((_req, res) => { res.writeHead(404); res.end(); });
web.on('upgrade', (req, socket, head) => { wisp.routeRequest(req, socket, head, { TCPSocket: LoopbackOnly }); });
web.listen(0, '127.0.0.1', () => { console.log(`WISP-PORT ${web.address().port}`); });
process.on('SIGTERM', () => process.exit(0));
