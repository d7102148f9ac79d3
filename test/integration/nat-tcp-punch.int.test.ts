/**
 * TCP hole punching (RFC 5382 §2.1's simultaneous open) between two namespace guests, each
 * behind its own tslirp network with its own public address (`--outbound` 203.0.113.2 and
 * 203.0.113.3 on the test's internet, nat-world.ts), through a TCP rendezvous at 198.51.100.4.
 * Each guest runs a real punching client (nat-client.mjs `tcppunch`: Node's net.connect from
 * the port its rendezvous connection uses, retried until a deadline).
 *
 * What decides the outcome is the host's kernel, since tslirp's host connection is a plain
 * connect from the mapping's port: a peer's SYN reaching that port while our own connect is in
 * SYN-SENT is a simultaneous open (RFC 9293 §3.5), and the kernel completes it; a SYN that
 * arrives first meets no socket and gets an RST. Here both networks live on one kernel, so:
 * - with nothing between the public addresses, each side's first SYN is answered RST at once
 *   (one daemon issues the connects one after the other): the guests see ECONNREFUSED, never a
 *   connection — the failure mode a guest meets without a middlebox;
 * - with a stateful firewall in front of the public addresses (nftables: unsolicited SYNs
 *   dropped, what the NAT or firewall in front of a real host does), the first SYN is lost, the
 *   second meets the first's SYN-SENT socket, and the two guests get one TCP connection exactly
 *   where RFC 4787's model predicts for the mapping modes with the firewall's filtering
 *   (address-and-port-dependent): both endpoint-independent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAT_MAPPINGS, type NatMapping } from '../../src/nat/behaviour.js';
import { command, daemon as daemonReq, missingRequirements, must, type NetnsGuest, root, shouldRun } from '../helpers/guests.js';
import { lastJson, NAT_CLIENT, predictHolePunch, PunchWorld, WORLD } from './nat-world.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox'), command('nft')]);
const enabled = shouldRun('nat-tcp-punch.int.test.ts (TCP hole punching by simultaneous open)', missing);

const RENDEZVOUS_PORT = 3480;
/** How long a client punches: with the firewall, the second SYN completes the open within a second. */
const PUNCH_MS = 4_000;

describe.skipIf(!enabled)('TCP hole punching between two tslirp networks', () => {
  const w = new PunchWorld();
  beforeAll(() => w.start('tcprendezvous', RENDEZVOUS_PORT, NAT_MAPPINGS, (m) => `nat-mapping=${m}`), 120_000);
  afterAll(() => w.stop());

  it('has what it needs (root, ip, socat, busybox, nft, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  let pairs = 0;
  /** Both guests punch towards each other at once; their reports. */
  async function punch(a: NatMapping, b: NatMapping): Promise<[Record<string, unknown>, Record<string, unknown>]> {
    const [nameA, nameB] = [`A${pairs}`, `B${pairs}`];
    pairs++;
    const run = (g: NetnsGuest, me: string, peer: string) =>
      g.exec([process.execPath, NAT_CLIENT, 'tcppunch', WORLD.rendezvous, String(RENDEZVOUS_PORT), me, peer, String(PUNCH_MS)], 30_000);
    const [ra, rb] = await Promise.all([run(w.guest(`a-${a}`), nameA, nameB), run(w.guest(`b-${b}`), nameB, nameA)]);
    return [{ ...lastJson(ra.stdout), stderr: ra.stderr }, { ...lastJson(rb.stdout), stderr: rb.stderr }];
  }

  // Runs before the firewall goes up (vitest runs a file's tests in order).
  it('without a middlebox the host kernel resets the peer\'s SYN: each guest sees ECONNREFUSED, never a connection', async () => {
    const [ra, rb] = await punch('eim', 'eim');
    expect(ra['direct'], JSON.stringify(ra)).toBe(false);
    expect(rb['direct'], JSON.stringify(rb)).toBe(false);
    for (const r of [ra, rb]) {
      const errors = r['errors'] as string[];
      expect(errors.length, JSON.stringify(r)).toBeGreaterThan(0);
      expect(errors.filter((e) => e !== 'no answer in time' && e !== 'deadline').every((e) => e === 'ECONNREFUSED'), JSON.stringify(r)).toBe(true);
      expect(errors, JSON.stringify(r)).toContain('ECONNREFUSED');
    }
  }, 60_000);

  // 3 rounds of 3 pairs at once; a failing pair waits PUNCH_MS plus node's start (~1 s idle):
  // 30 s a round keeps a 3x margin on loaded cores (8 s a round seen idle).
  it('behind a stateful firewall, simultaneous open connects the guests exactly where RFC 4787\'s model predicts', async () => {
    must('ip', ['netns', 'exec', w.ns, 'nft',
      'add table inet punchwall; add chain inet punchwall input { type filter hook input priority 0; policy accept; }; ' +
      `add rule inet punchwall input ip daddr { ${WORLD.publicA}, ${WORLD.publicB} } tcp flags & (syn|ack) == syn ct state new drop`]);
    const cells: { a: NatMapping; b: NatMapping; direct: boolean; predicted: boolean; detail: string }[] = [];
    for (let round = 0; round < NAT_MAPPINGS.length; round++) {
      cells.push(
        ...(await Promise.all(
          NAT_MAPPINGS.map(async (a, i) => {
            const b = NAT_MAPPINGS[(i + round) % NAT_MAPPINGS.length]!;
            const [ra, rb] = await punch(a, b);
            return {
              a, b,
              direct: ra['direct'] === true && rb['direct'] === true,
              predicted: predictHolePunch({ mapping: a, filtering: 'apdf' }, { mapping: b, filtering: 'apdf' }),
              detail: `A ${JSON.stringify(ra)} / B ${JSON.stringify(rb)}`,
            };
          }),
        )),
      );
    }
    const table = NAT_MAPPINGS.map((a) => `${a.padEnd(6)}${NAT_MAPPINGS.map((b) => {
      const c = cells.find((x) => x.a === a && x.b === b)!;
      return `${c.direct ? 'direct' : 'no'}${c.direct === c.predicted ? '' : '(!)'}`.padEnd(10);
    }).join('')}`);
    console.log(`TCP hole punching behind a stateful firewall (rows: A's --nat-mapping, columns: B's):\n      ${NAT_MAPPINGS.map((m) => m.padEnd(10)).join('')}\n${table.join('\n')}`);
    for (const c of cells) expect({ a: c.a, b: c.b, direct: c.direct }, c.detail).toEqual({ a: c.a, b: c.b, direct: c.predicted });
    expect(cells.filter((c) => c.direct).map((c) => `${c.a}/${c.b}`)).toEqual(['eim/eim']);
  }, 3 * 30_000);
});
