/**
 * Public entry of the Intel 82540EM (e1000) device model. See README.md in this folder for
 * the theory of operation and docs/e1000-protocol.md for the WebSocket device protocol.
 * Names are prefixed (E1000…) so `export *` from the package root stays unambiguous. The model
 * alone (no WebSocket session) is `tslirp/e1000`, model.ts.
 */
export * from './model.js';
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
