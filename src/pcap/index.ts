/** Capture files, re-exported for `import { pcap } from 'tslirp'`. */
export * from './writer.js';
export { readCapture, isEthernetCapture, type Capture, type CapturedPacket, type CaptureInterface } from './reader.js';
export { capturePath, tapLink, tapHandler } from './tap.js';
