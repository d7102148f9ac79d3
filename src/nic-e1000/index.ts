/**
 * Public entry of the Intel 82540EM (e1000) device model. See README.md in this folder for
 * the theory of operation and docs/e1000-protocol.md for the WebSocket device protocol.
 * Names are prefixed (E1000…) so `export *` from the package root stays unambiguous.
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
export {
  attachE1000Device,
  CLOSE_PROTOCOL_ERROR as E1000_WS_CLOSE_PROTOCOL_ERROR,
  E1000WsSession,
  type E1000SessionOptions,
  type FramePort as E1000FramePort,
} from './ws-device.js';
export {
  decodeDaemonMessage as decodeE1000DaemonMessage,
  decodeEmulatorMessage as decodeE1000EmulatorMessage,
  encodeEmulatorRecords as encodeE1000EmulatorRecords,
  MAX_DMA_LEN as E1000_WS_MAX_DMA_LEN,
  OP as E1000_WS_OP,
  PROTOCOL_VERSION as E1000_WS_PROTOCOL_VERSION,
  RecordWriter as E1000WsRecordWriter,
  type DaemonRecord as E1000WsDaemonRecord,
  type EmulatorRecord as E1000WsEmulatorRecord,
  type Space as E1000WsSpace,
} from './ws-protocol.js';
