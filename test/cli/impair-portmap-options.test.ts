/** The --link-* and --nat-pmp options: plain for every network, or one network's through --net-option. */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/options.js';
import { serve } from '../helpers/cli.js';

describe('--link-* options', () => {
  it('set every network plainly', () => {
    const c = serve('--link-delay', '50:5', '--link-loss', '2', '--link-duplicate', '1', '--link-reorder', '1', '--link-rate', '10M');
    expect(c.network.config.impairment).toEqual({ delayMs: 50, jitterMs: 5, lossPct: 2, duplicatePct: 1, reorderPct: 1, rateBitsPerS: 10e6 });
  });
  it('are off by default', () => {
    expect(serve().network.config.impairment).toBeUndefined();
  });
  it('set one network through --net-option, over the plain value', () => {
    const c = serve('--link-delay', '20', '--net-option', 'lab:link-loss=5,link-delay=100', '--net-option', 'other:mtu=9000');
    expect(c.networks.get('lab')?.config.impairment).toMatchObject({ delayMs: 100, lossPct: 5 });
    expect(c.networks.get('other')?.config.impairment).toMatchObject({ delayMs: 20, lossPct: 0 });
    expect(c.network.config.impairment).toMatchObject({ delayMs: 20 });
  });
  it('refuse bad values naming the option', () => {
    expect(() => serve('--link-loss', '200')).toThrow(/--link-loss: '200' must be a percentage/);
    expect(() => serve('--link-rate', 'fast')).toThrow(UsageError);
    expect(() => serve('--net-option', 'lab:link-delay=5:10')).toThrow(/--net-option lab:link-delay: jitter 10 ms exceeds the delay 5 ms/);
  });
});

describe('--nat-pmp', () => {
  it('is off by default, on for every network plainly or for one through --net-option', () => {
    expect(serve().network.config.natPmp).toBe(false);
    expect(serve('--nat-pmp', 'on').network.config.natPmp).toBe(true);
    const c = serve('--net-option', 'lab:nat-pmp=on', '--net-option', 'other:mtu=9000');
    expect(c.networks.get('lab')?.config.natPmp).toBe(true);
    expect(c.networks.get('other')?.config.natPmp).toBe(false);
  });
  it('refuses anything but on or off', () => {
    expect(() => serve('--nat-pmp', 'maybe')).toThrow(/--nat-pmp: 'maybe' must be on or off/);
    expect(() => serve('--net-option', 'lab:nat-pmp=1')).toThrow(/--net-option lab:nat-pmp: '1' must be on or off/);
  });
});
