/**
 * `tslirp/e1000`: the 82540EM device model alone, for emulators. It depends on nothing but a
 * few byte helpers of src/util — no daemon, no sockets, no Node built-ins — so it runs in a
 * browser as well as in Node. See README.md in this folder (Theory of Operation, the library
 * API, the QEMU-compatibility switch). The WebSocket device session (`attachE1000Device`)
 * lives in the package root, beside the daemon that serves it.
 */
export {
  E1000,
  type E1000Checkpoint,
  type E1000Deps,
  type E1000Options,
  type ExitCounters as E1000ExitCounters,
  type MitigationState as E1000MitigationState,
} from './device.js';
export { arrayGuestMemory, DMA_ADDRESS_LIMIT as E1000_DMA_ADDRESS_LIMIT, type GuestMemory } from './memory.js';
export type { RxResult as E1000RxResult } from './rx.js';
export { SNAPSHOT_VERSION as E1000_SNAPSHOT_VERSION, validateSnapshot as validateE1000Snapshot, type E1000Snapshot } from './snapshot.js';
export { QEMU_IDENTITY as E1000_QEMU_IDENTITY, type PciIdentity as E1000PciIdentity } from './pci-config.js';
export { R as E1000_REGISTERS, MMIO_SIZE as E1000_MMIO_SIZE, IO_SIZE as E1000_IO_SIZE } from './regs.js';
export { buildEeprom as buildE1000Eeprom } from './eeprom.js';
export type { Clock } from '../util/clock.js';
