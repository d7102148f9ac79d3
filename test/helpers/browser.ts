/**
 * Debian's Chromium driven by the npm playwright-core (a devDependency), for the tests that
 * open a page in a real browser.
 */
import type { BrowserContext } from 'playwright-core';
import { file, type Requirement } from './guests.js';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumRequirement: Requirement = file(CHROMIUM, 'apt-get install chromium');

/**
 * Headless Chromium with a persistent profile in `profileDir` (fresh when the folder is new),
 * background networking, sync and component updates off, no QUIC, and every host name but
 * 127.0.0.1 unresolvable: its only traffic is to the loopback.
 */
export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}
