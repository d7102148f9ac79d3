/**
 * The hole-punching grid, in the spirit of Tailscale's NAT test grid: two guests, each behind
 * its own tslirp network with its own NAT type and its own public address (`--outbound`
 * 203.0.113.2 and 203.0.113.3 on the test's internet, nat-world.ts), a rendezvous server at
 * 198.51.100.4, and a real UDP hole-punching client in each guest (nat-client.mjs `punch`).
 * For every pair of the four classic NAT types the result (direct or not) is compared with
 * RFC 4787's prediction (`predictHolePunch`); the grid is printed and written as an HTML page
 * (its path is printed); a cell that disagrees fails the test.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAT_TYPES, type NatType } from '../../src/nat/behaviour.js';
import { command, daemon as daemonReq, missingRequirements, type NetnsGuest, root, shouldRun } from '../helpers/guests.js';
import { lastJson, NAT_CLIENT, predictHolePunch, PunchWorld, WORLD } from './nat-world.js';

const missing = missingRequirements([root, daemonReq, command('ip'), command('socat'), command('busybox')]);
const enabled = shouldRun('nat-grid.int.test.ts (the hole-punching grid)', missing);

const TYPES = Object.keys(NAT_TYPES) as NatType[];
/** How long a client punches before giving up: a direct path forms within a few 50 ms rounds. */
const PUNCH_MS = 3_000;
const RENDEZVOUS_PORT = 3478;

interface Cell {
  readonly a: NatType;
  readonly b: NatType;
  readonly predicted: boolean;
  readonly direct: boolean;
  readonly detail: string;
}

function html(cells: readonly Cell[]): string {
  const cell = (c: Cell): string => {
    const agree = c.direct === c.predicted;
    const colour = !agree ? '#f4a6a6' : c.direct ? '#a8e6a1' : '#f3e3a0';
    return `<td style="background:${colour}" title="${c.detail.replace(/"/g, '&quot;')}">${c.direct ? 'direct' : 'relay needed'}${agree ? '' : ` (RFC 4787: ${c.predicted ? 'direct' : 'no'})`}</td>`;
  };
  const rows = TYPES.map((a) => `<tr><th>${a}</th>${TYPES.map((b) => cell(cells.find((c) => c.a === a && c.b === b)!)).join('')}</tr>`);
  return [
    '<!doctype html><meta charset="utf-8"><title>tslirp hole-punching grid</title>',
    '<style>body{font-family:sans-serif}td,th{border:1px solid #888;padding:.4em .8em;text-align:center}table{border-collapse:collapse}</style>',
    '<h1>UDP hole punching between two tslirp NATs</h1>',
    `<p>Rows: guest A's network (public ${WORLD.publicA}); columns: guest B's (public ${WORLD.publicB}); rendezvous ${WORLD.rendezvous}. `,
    'Green: direct, as RFC 4787 predicts; yellow: no direct path, as predicted; red: disagreement.</p>',
    `<table><tr><th>A \\ B</th>${TYPES.map((t) => `<th>${t}</th>`).join('')}</tr>${rows.join('')}</table>`,
  ].join('\n');
}

describe.skipIf(!enabled)('the hole-punching grid', () => {
  const w = new PunchWorld();
  beforeAll(() => w.start('rendezvous', RENDEZVOUS_PORT, TYPES, (t) => `nat=${t}`), 120_000);
  afterAll(() => w.stop());

  it('has what it needs (root, ip, socat, busybox, the daemon)', () => {
    expect(missing).toEqual([]);
  });

  // 4 rounds, each pairing every A network with a different B network (a guest punches once
  // per round); a round takes at most PUNCH_MS plus node's start, so 4 x 15 s keeps 3x margin.
  it('every pair of the four NAT types punches through exactly where RFC 4787 predicts', async () => {
    const cells: Cell[] = [];
    for (let round = 0; round < TYPES.length; round++) {
      const results = await Promise.all(
        TYPES.map(async (a, i) => {
          const b = TYPES[(i + round) % TYPES.length]!;
          const [nameA, nameB] = [`A${round}${i}`, `B${round}${i}`];
          const punch = (g: NetnsGuest, me: string, peer: string) =>
            g.exec([process.execPath, NAT_CLIENT, 'punch', WORLD.rendezvous, String(RENDEZVOUS_PORT), me, peer, String(PUNCH_MS)], 30_000);
          const [ra, rb] = await Promise.all([punch(w.guest(`a-${a}`), nameA, nameB), punch(w.guest(`b-${b}`), nameB, nameA)]);
          const [ja, jb] = [lastJson(ra.stdout), lastJson(rb.stdout)];
          return {
            a, b,
            predicted: predictHolePunch(NAT_TYPES[a], NAT_TYPES[b]),
            direct: ja['direct'] === true && jb['direct'] === true,
            detail: `A ${JSON.stringify(ja)} ${ra.stderr} / B ${JSON.stringify(jb)} ${rb.stderr}`,
          };
        }),
      );
      cells.push(...results);
    }
    const width = Math.max(...TYPES.map((t) => t.length)) + 2;
    const mark = (c: Cell): string => `${c.direct ? 'direct' : 'no'}${c.direct === c.predicted ? '' : '(!)'}`;
    const table = [
      `A \\ B`.padEnd(width) + TYPES.map((t) => t.padEnd(width)).join(''),
      ...TYPES.map((a) => a.padEnd(width) + TYPES.map((b) => mark(cells.find((c) => c.a === a && c.b === b)!).padEnd(width)).join('')),
    ].join('\n');
    const page = join(tmpdir(), 'tslirp-nat-grid.html');
    writeFileSync(page, html(cells));
    console.log(`hole-punching grid (direct / no; (!) disagrees with RFC 4787), also ${page}:\n${table}`);
    for (const c of cells) expect({ a: c.a, b: c.b, direct: c.direct }, c.detail).toEqual({ a: c.a, b: c.b, direct: c.predicted });
  }, 4 * 15_000);
});
