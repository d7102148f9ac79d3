/**
 * The browser bundle's entry (scripts/build-browser.mjs → dist/browser/tslirp-v86.js): the
 * v86 add-on and the model it plugs in, for a page that imports one file. Everything here is
 * free of Node built-ins; the relay and the bridge use the page's own WebSocket.
 */
export { attachE1000, openE1000Bridge, RemoteE1000, type AttachE1000Options, type AttachedE1000, type E1000Bridge, type E1000Channel, type V86Emulator } from './index.js';
export { E1000, arrayGuestMemory, type E1000Options, type GuestMemory } from '../nic-e1000/model.js';
