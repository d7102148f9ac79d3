/** The guest links (transports), re-exported for `import { links } from 'tslirp'`. */
export * from './link.js';
export { StreamDeframer, frameStream, listenStream, type StreamAddress, type StreamListenOptions } from './qemu-stream.js';
export { listenDgram, DGRAM_IDLE_TIMEOUT_MS, DGRAM_MAX_SESSIONS, DGRAM_SWEEP_INTERVAL_MS, type DgramListenOptions } from './qemu-dgram.js';
export { listenWs, type WsListener, type WsListenOptions, type WsRoute } from './ws-server.js';
export { wsFramesRoute, WS_CLOSE, TEXT_REFUSED_REASON } from './ws-frames.js';
export { wsE1000Route } from './ws-e1000.js';
