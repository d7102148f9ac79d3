/** Capture files, re-exported for `import { pcap } from 'tslirp'`. */
export * from './writer.js';
export { shbLength, writeShb, idbLength, writeIdb, epbLength, writeEpb, type Shb, type Idb, type Epb } from './pcapng.js';
export { PcapngFileWriter, type PcapngInterfaceInfo } from './pcapng-writer.js';
export { readCapture, isEthernetCapture, type Capture, type CapturedPacket, type CaptureInterface } from './reader.js';
export { capturePath, captureTarget, tapLink, tapHandler } from './tap.js';
