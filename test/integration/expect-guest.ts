/** The checks every booted test guest (scripts/guest/init.sh) must pass on its console report. */
import { expect } from 'vitest';
import type { GuestReport } from '../helpers/guests.js';

/** DHCP gave the default lease from the gateway, and the gateway and the DNS address answer pings. */
export function expectGuestOnline(report: GuestReport, context: string): void {
  expect(report.dhcpOk, context).toBe(true);
  expect(report.lease, context).toMatchObject({ ip: '10.0.2.15', subnet: '255.255.255.0', router: '10.0.2.2', dns: '10.0.2.3', serverid: '10.0.2.2', lease: '86400' });
  expect(report.pingGatewayOk, context).toBe(true);
  expect(report.pingReplies, context).toBe(3);
  expect(report.pingDnsOk, context).toBe(true);
}
