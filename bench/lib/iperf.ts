/** iperf3 and the project's guest client, run inside a namespace guest: what the TCP benchmarks measure with. */
import { join } from 'node:path';
import type { NetnsGuest } from '../../test/helpers/guests.js';

/** The guest side of the latency and connection-rate figures (run by this node, through tsx, inside the namespace). */
const GUEST_CLIENT = join(import.meta.dirname, '..', 'guest', 'client.ts');

/**
 * One iperf3 run of `seconds` from guest `g` to `server:port` (`reverse`: the server sends);
 * bits per second as the receiver counted them, 0 on failure (reported, labelled `what`).
 * A server left busy by a client that timed out gets one retry after 2 s.
 */
export async function iperf(g: NetnsGuest, server: string, port: number, seconds: number, reverse: boolean, what: string, retry = true): Promise<number> {
  const r = await g.exec(['iperf3', '-c', server, '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])], (seconds + 20) * 1000);
  try {
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    if (j.error !== undefined) {
      if (retry && j.error.includes('busy')) {
        await new Promise((res) => setTimeout(res, 2000));
        return await iperf(g, server, port, seconds, reverse, what, false);
      }
      throw new Error(j.error);
    }
    return j.end?.sum_received?.bits_per_second ?? 0;
  } catch (e) {
    console.error(`iperf3 through ${what} failed: ${String(e)} ${r.stderr.slice(0, 500)}`);
    return 0;
  }
}

/**
 * Runs bench/guest/client.ts in guest `g` against `server:port`: 'rr' (1-byte request/response
 * on one connection) or 'crr' (connect, request, reply, close); microseconds per operation.
 */
export async function guestClient(g: NetnsGuest, what: string, mode: 'rr' | 'crr', server: string, port: number, count: number): Promise<number> {
  const r = await g.exec([process.execPath, '--import', 'tsx', GUEST_CLIENT, mode, server, String(port), String(count)], 90_000);
  try {
    return (JSON.parse(r.stdout) as { usPerOp: number }).usPerOp;
  } catch {
    throw new Error(`guest-client ${mode} through ${what} failed: ${r.stdout} ${r.stderr}`);
  }
}
