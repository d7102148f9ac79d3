/** --tftp DIR and --guestfwd RULE: plain for every network or one network's through --net-option, checked at start. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serve } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tslirp-tftp-opt-'));
writeFileSync(join(dir, 'file'), 'x');
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('--tftp', () => {
  it('is off by default', () => {
    expect(serve().network.config.tftpRoot).toBeUndefined();
  });
  it('takes a directory, made absolute', () => {
    expect(serve('--tftp', relative(process.cwd(), dir)).network.config.tftpRoot).toBe(dir);
  });
  it('sets one network through --net-option', () => {
    const c = serve('--net-option', `lab:tftp=${dir},bootfile=boot.ipxe`);
    expect(c.networks.get('lab')?.config).toMatchObject({ tftpRoot: dir, bootFile: 'boot.ipxe' });
    expect(c.network.config.tftpRoot).toBeUndefined();
  });
  it('refuses what is not a directory, naming the option', () => {
    expect(() => serve('--tftp', join(dir, 'file'))).toThrow(`--tftp: ${join(dir, 'file')} is not a directory`);
    expect(() => serve('--tftp', join(dir, 'missing'))).toThrow(`--tftp: ${join(dir, 'missing')}: ENOENT`);
    expect(() => serve('--tftp', '')).toThrow('--tftp: needs a directory path');
    expect(() => serve('--net-option', `lab:tftp=${join(dir, 'file')}`)).toThrow(`--net-option lab:tftp: ${join(dir, 'file')} is not a directory`);
  });
});

describe('--guestfwd', () => {
  it('takes QEMU\'s rules, repeatable, plainly or for one network', () => {
    const c = serve('--guestfwd', 'tcp:10.0.2.100:80-127.0.0.1:8080', '--guestfwd', 'tcp:10.0.2.100:81-cmd:cat', '--net-option', 'lab:guestfwd=tcp:10.0.2.101:1-cmd:true');
    expect(c.network.config.guestForwards?.map((f) => f.text)).toEqual(['tcp:10.0.2.100:80-127.0.0.1:8080', 'tcp:10.0.2.100:81-cmd:cat']);
    expect(c.networks.get('lab')?.config.guestForwards?.map((f) => f.text)).toEqual(['tcp:10.0.2.101:1-cmd:true']);
  });
  it('refuses a bad rule naming the option, and a target the egress policy refuses', () => {
    expect(() => serve('--guestfwd', 'tcp:10.0.2.15:80-cmd:cat')).toThrow("--guestfwd: 'tcp:10.0.2.15:80-cmd:cat': 10.0.2.15 is in the DHCP pool");
    expect(() => serve('--net-option', 'lab:guestfwd=udp:10.0.2.100:1-cmd:cat')).toThrow(/--net-option lab:guestfwd: 'udp:10\.0\.2\.100:1-cmd:cat': must look like/);
    expect(() => serve('--egress-deny', '127.0.0.0/8', '--guestfwd', 'tcp:10.0.2.100:80-127.0.0.1:8080')).toThrow(/--guestfwd: .*the egress policy refuses its target/);
  });
});
