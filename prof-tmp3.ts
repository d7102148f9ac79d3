import { readFileSync } from 'node:fs';
import { replayRecording } from './src/replay/index.js';
const bytes = new Uint8Array(readFileSync('pcaps/tcp-download.pcapng'));
for (let i = 0; i < 1000; i++) replayRecording(bytes);
