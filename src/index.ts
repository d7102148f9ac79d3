/**
 * tslirp as a library: the sans-IO stack, its configuration, the guest links, the capture
 * reader/writer, the e1000 device model and the daemon that wires them together.
 */
export { Stack, type StackDeps } from './stack/stack.js';
export { resolveStackConfig, ConfigError, type StackConfig, type NetworkOptions, type StaticRoute } from './stack/config.js';
export { Counters, isDrop, type Drop } from './util/drops.js';
export { systemClock, systemRandom, ManualClock, seededRandom, type Clock, type Random } from './util/clock.js';

export * as links from './link/index.js';
export * from './nic-e1000/index.js';
export * as pcap from './pcap/index.js';
export { Daemon, type DaemonOptions } from './daemon/daemon.js';
export { Session, type SessionStack, type StackFactory } from './daemon/session.js';
export { Scheduler } from './daemon/scheduler.js';
export { parseStreamSpec, parseDgramSpec, parseWsSpec, defaultListeners, runtimeDir, type ListenerSpec } from './daemon/listen-spec.js';
