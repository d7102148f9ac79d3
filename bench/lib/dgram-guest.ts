/** A namespace guest whose TAP a socat bridges to a UDP peer: the dgram path of bench/tcp.ts and bench/networks.ts. */
import { spawnSync } from 'node:child_process';
import { DGRAM_BRIDGE_BUFFER, must, NetnsGuest, Proc, uniqueName, until } from '../../test/helpers/guests.js';

/**
 * A namespace whose TAP socat bridges to UDP `remotePort`, from local UDP `localPort`, both
 * on 127.0.0.1, one frame per datagram. The socket's kernel buffers are the test guests' and
 * the daemon's dgram listener's (DGRAM_BRIDGE_BUFFER), so every path a benchmark compares
 * has the same: with the default 208 KiB, three 64 KiB frames overflow a bridge.
 */
export async function dgramGuest(remotePort: number, localPort: number): Promise<NetnsGuest> {
  const ns = uniqueName('tslbns');
  const tap = uniqueName('tslbtap');
  must('ip', ['netns', 'add', ns]);
  const socat = new Proc(`socat ${tap}`, 'socat', [
    '-b', '65536',
    `TUN,tun-type=tap,iff-no-pi,tun-name=${tap}`,
    `UDP-DATAGRAM:127.0.0.1:${remotePort},bind=127.0.0.1:${localPort},rcvbuf=${DGRAM_BRIDGE_BUFFER},sndbuf=${DGRAM_BRIDGE_BUFFER}`,
  ]);
  await until(() => socat.exit !== undefined || spawnSync('ip', ['link', 'show', 'dev', tap], { stdio: 'ignore' }).status === 0, 10_000);
  must('ip', ['link', 'set', 'dev', tap, 'netns', ns]);
  must('ip', ['netns', 'exec', ns, 'sh', '-c', `ip link set lo up && ip link set dev ${tap} up`]);
  // Borrow NetnsGuest's dhcp/exec/destroy by shaping an object like it.
  const g = Object.create(NetnsGuest.prototype) as NetnsGuest;
  Object.assign(g, { ns, tap, bridge: socat });
  return g;
}
