/** IPv6 autoconfiguration of a benchmark's namespace guest, beside the IPv4 address it already has. */
import type { NetnsGuest } from '../../test/helpers/guests.js';

/**
 * Lets the kernel of `g`'s namespace autoconfigure `dev` from the router advertisement of the
 * SLIRP on the other side (SLAAC) and waits for a global address in fd00::/64 that is no longer
 * tentative. IPv6 off and on again on `dev` makes the kernel solicit a router anew (udhcpc's
 * script flushed every address of the TAP, and a TAP created before IPv6 was wanted may not
 * have solicited at all); the IPv4 address is untouched. Only `exec` of `g` is used (the
 * slirp4netns target's guest-like object has nothing more). False after `timeoutMs`.
 */
export async function slaac(g: Pick<NetnsGuest, 'exec'>, dev: string, timeoutMs = 20_000): Promise<boolean> {
  const tries = Math.ceil(timeoutMs / 200);
  const r = await g.exec(
    [
      'sh', '-c',
      [
        'sysctl -qw net.ipv6.conf."$1".accept_ra=1 net.ipv6.conf."$1".autoconf=1 net.ipv6.conf."$1".disable_ipv6=1',
        'sysctl -qw net.ipv6.conf."$1".disable_ipv6=0',
        'i=0; while [ $i -lt "$2" ]; do ip -6 addr show dev "$1" scope global | grep "inet6 fd00:" | grep -qv tentative && exit 0; sleep 0.2; i=$((i+1)); done; exit 1',
      ].join(' && '),
      'sh', dev, String(tries),
    ],
    timeoutMs + 10_000,
  );
  return r.code === 0;
}
