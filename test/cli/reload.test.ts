import { describe, expect, it } from 'vitest';
import { configTokens, mergeConfig } from '../../src/cli/config-file.js';
import { parseCommandLine, UsageError } from '../../src/cli/options.js';
import { inForceAtStart, planReload, type ServeCommand } from '../../src/cli/reload.js';

const ENV = { XDG_RUNTIME_DIR: '/run/user/test' };

/** A daemon started with `argv` and the config file `file` (JSON text): its options in force. */
function started(argv: string[], file: string) {
  const args = mergeConfig(argv, configTokens(file, 'f.json'));
  const cmd = parseCommandLine(args, ENV) as ServeCommand;
  return inForceAtStart(args, cmd);
}

const ARGV = ['serve', '--config', 'f.json', '--stream', 'unix:/tmp/x.sock'];

describe('planReload (SIGHUP with --config)', () => {
  it('takes the reloadable options from the file: egress rules in their order across allow and deny, limits, lease bound, log level', () => {
    const now = started(ARGV, JSON.stringify({ 'egress-deny': '127.0.0.1', 'max-sessions': 10 }));
    expect(now.egress).toEqual(['deny 127.0.0.1']);
    // Interleaved allow and deny: first match wins, so the order must survive.
    const text = '{"egress-allow":["10.1.0.0/16"],"egress-deny":["10.0.0.0/8"],"max-sessions":2,"max-sessions-per-source":3,"max-rss":128,"max-session-leases":1,"log-level":"debug"}';
    const plan = planReload(ARGV, now, text, 'f.json', ENV);
    expect(plan.cmd.network.config.egress?.rules.map((r) => `${r.action} ${r.text}`)).toEqual(['allow 10.1.0.0/16', 'deny 10.0.0.0/8']);
    expect(plan.cmd.sessionLimits).toEqual({ maxSessions: 2, maxSessionsPerSource: 3, maxRssBytes: 128 << 20 });
    expect(plan.cmd.network.config.maxLeasesPerPort).toBe(1);
    expect(plan.cmd.logLevel).toBe('debug');
    expect(plan.changed).toEqual(['egress-allow/egress-deny', 'max-sessions', 'max-sessions-per-source', 'max-rss', 'max-session-leases', 'log-level']);
    expect(plan.needRestart).toEqual([]);
    // The order in the file decides: deny first now.
    const swapped = planReload(ARGV, plan.inForce, '{"egress-deny":["10.0.0.0/8"],"egress-allow":["10.1.0.0/16"]}', 'f.json', ENV);
    expect(swapped.inForce.egress).toEqual(['deny 10.0.0.0/8', 'allow 10.1.0.0/16']);
  });

  it('--dns-record is reloadable; a bad one is refused like at start', () => {
    const now = started(ARGV, '{}');
    const plan = planReload(ARGV, now, '{"dns-record":["web.test=10.9.9.9"]}', 'f.json', ENV);
    expect(plan.changed).toEqual(['dns-record']);
    expect(plan.cmd.network.dnsRecords.map((r) => r.name)).toEqual(['web.test']);
    expect(() => planReload(ARGV, now, '{"dns-record":["web.test=300.1.1.1"]}', 'f.json', ENV)).toThrow(/dns-record/);
  });

  it('a key the file no longer has goes back to its default; an unchanged file changes nothing', () => {
    const now = started(ARGV, '{"max-sessions":5,"egress-deny":"10.0.0.0/8"}');
    const plan = planReload(ARGV, now, '{}', 'f.json', ENV);
    expect(plan.cmd.sessionLimits.maxSessions).toBe(256);
    expect(plan.inForce.egress).toEqual([]);
    expect(plan.changed).toEqual(['egress-allow/egress-deny', 'max-sessions']);
    expect(planReload(ARGV, plan.inForce, '{}', 'f.json', ENV).changed).toEqual([]);
  });

  it('names the options only a restart applies and leaves them as they were, the reloadable ones applied', () => {
    const now = started(ARGV, '{"mtu":1500}');
    const plan = planReload(ARGV, now, '{"mtu":9000,"net":"10.1.0.0/24","hostfwd":"tcp::2222-:22","max-sessions":7}', 'f.json', ENV);
    expect(plan.needRestart).toEqual(['mtu', 'net']);
    expect(plan.cmd.network.config.mtu).toBe(1500);
    expect(plan.cmd.network.forwards.map((r) => r.text)).toEqual(['tcp::2222-:22']);
    expect(plan.changed).toEqual(['max-sessions', 'hostfwd']);
    expect(plan.cmd.sessionLimits.maxSessions).toBe(7);
    // Named again at the next reload: they are still not in force.
    expect(planReload(ARGV, plan.inForce, '{"mtu":9000,"net":"10.1.0.0/24","hostfwd":"tcp::2222-:22","max-sessions":7}', 'f.json', ENV).needRestart).toEqual(['mtu', 'net']);
  });

  it('the command line still wins over the file', () => {
    const argv = [...ARGV, '--max-sessions', '4'];
    const now = started(argv, '{}');
    const plan = planReload(argv, now, '{"max-sessions":100}', 'f.json', ENV);
    expect(plan.cmd.sessionLimits.maxSessions).toBe(4);
    expect(plan.changed).toEqual([]);
  });

  it('a bad file throws the parser error naming the key (and so changes nothing)', () => {
    const now = started(ARGV, '{}');
    expect(() => planReload(ARGV, now, '{"egress-deny":"10.0.0.0/33"}', 'f.json', ENV)).toThrow(/egress-deny/);
    expect(() => planReload(ARGV, now, '{"max-sessions":0}', 'f.json', ENV)).toThrow(UsageError);
    expect(() => planReload(ARGV, now, '{"max-sesions":3}', 'f.json', ENV)).toThrow(/'max-sesions' is not an option/);
    expect(() => planReload(ARGV, now, '{not json', 'f.json', ENV)).toThrow(/not JSON/);
  });

  it('a plain --hostfwd rule on a port a network\'s own rule holds is refused, as at start', () => {
    const argv = [...ARGV, '--net-option', 'lab:hostfwd=tcp::8080-:80'];
    expect(() => planReload(argv, started(argv, '{}'), '{"hostfwd":"tcp::8080-:80"}', 'f.json', ENV)).toThrow(/hostfwd/);
  });

  it('per network: a declared network keeps its own lease bound, others take the plain one', () => {
    const argv = [...ARGV, '--net-option', 'lab:max-session-leases=2', '--net-option', 'web:mtu=9000'];
    const now = started(argv, '{}');
    const plan = planReload(argv, now, '{"max-session-leases":8}', 'f.json', ENV);
    expect(plan.cmd.networks.get('lab')?.config.maxLeasesPerPort).toBe(2);
    expect(plan.cmd.networks.get('web')?.config.maxLeasesPerPort).toBe(8);
    expect(plan.cmd.network.config.maxLeasesPerPort).toBe(8);
  });

  it('the flow limits and the new-flow rate are reloadable, plain', () => {
    const now = started(ARGV, '{"max-new-flows-per-second":5}');
    const plan = planReload(ARGV, now, '{"max-new-flows-per-second":50,"max-tcp-flows":100,"max-network-udp-flows":200}', 'f.json', ENV);
    expect(plan.needRestart).toEqual([]);
    expect(plan.changed).toEqual(['max-tcp-flows', 'max-network-udp-flows', 'max-new-flows-per-second']);
    expect(plan.cmd.network.flowLimits).toEqual({ tcp: 16384, udp: 200, perGuest: { tcp: 100, udp: 200 }, newFlowsPerSecond: 50 });
    // Gone from the file: back to the default (no rate limit).
    expect(planReload(ARGV, plan.inForce, '{}', 'f.json', ENV).cmd.network.flowLimits.newFlowsPerSecond).toBeUndefined();
    // A per-guest limit above the network's is refused as at start.
    expect(() => planReload(ARGV, now, '{"max-tcp-flows":100,"max-network-tcp-flows":50}', 'f.json', ENV)).toThrow(/max-tcp-flows/);
  });

  it('--net-option: a declared network\'s reloadable keys change, its other keys and the set of networks need a restart', () => {
    const now = started(ARGV, '{"net-option":["lab:max-new-flows-per-second=10,mtu=9000","web:dns-record=a.test=10.0.0.1"]}');
    const plan = planReload(ARGV, now, '{"net-option":["lab:max-new-flows-per-second=20,mtu=9000,max-session-leases=2","web:dns-record=b.test=10.0.0.2"]}', 'f.json', ENV);
    expect(plan.needRestart).toEqual([]);
    expect(plan.changed).toEqual(['net-option']);
    const lab = plan.cmd.networks.get('lab')!;
    expect(lab.flowLimits.newFlowsPerSecond).toBe(20);
    expect(lab.config.maxLeasesPerPort).toBe(2);
    expect(lab.config.mtu).toBe(9000);
    expect(plan.cmd.networks.get('web')!.dnsRecords.map((r) => r.name)).toEqual(['b.test']);
    expect(planReload(ARGV, plan.inForce, JSON.stringify({ 'net-option': ['lab:max-new-flows-per-second=20,mtu=9000,max-session-leases=2', 'web:dns-record=b.test=10.0.0.2'] }), 'f.json', ENV).changed).toEqual([]);
    // A restart-only key changed: named, left as it was; the reloadable one still applies.
    const mtu = planReload(ARGV, plan.inForce, '{"net-option":["lab:max-new-flows-per-second=30,mtu=1500","web:dns-record=b.test=10.0.0.2"]}', 'f.json', ENV);
    expect(mtu.needRestart).toEqual(['net-option']);
    expect(mtu.cmd.networks.get('lab')!.config.mtu).toBe(9000);
    expect(mtu.cmd.networks.get('lab')!.flowLimits.newFlowsPerSecond).toBe(30);
    expect(mtu.cmd.networks.get('lab')!.config.maxLeasesPerPort).toBe(4); // gone from the file: the default
    // A network declared anew needs a restart and is not created by the reload.
    const added = planReload(ARGV, plan.inForce, '{"net-option":["lab:mtu=9000","web:dns-record=b.test=10.0.0.2","new:max-tcp-flows=5"]}', 'f.json', ENV);
    expect(added.needRestart).toEqual(['net-option']);
    expect([...added.cmd.networks.keys()].sort()).toEqual(['lab', 'web']);
  });
});
