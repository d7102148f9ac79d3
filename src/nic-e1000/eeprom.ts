/**
 * The 82540EM's 64-word Microwire EEPROM (8254x SDM §5.2, §5.6 "EEPROM Address Map"),
 * with the contents QEMU 7.2 presents and the bit-banged read protocol the Linux driver
 * uses (`e1000_shift_out_ee_bits` / `e1000_shift_in_ee_bits`). Words sum to 0xBABA.
 */
import { EECD } from './regs.js';

export const EEPROM_WORDS = 64;
/** The 16-bit sum of all 64 words (§5.6.22 "Checksum Word Calculation"). */
export const EEPROM_SUM = 0xbaba;
const CHECKSUM_WORD = 63;
const READ_OPCODE = 0b110;

/**
 * The image QEMU ships for an 82540EM (facts observed on QEMU 7.2: every word read back
 * through EERD in test/integration/e1000-qtest.int.test.ts). Words 0..2 (MAC) and 63
 * (checksum) are filled in by `buildEeprom`.
 */
const TEMPLATE: readonly number[] = [
  0x0000, 0x0000, 0x0000, 0x0000, 0xffff, 0x0000, 0x0000, 0x0000,
  0x3000, 0x1000, 0x6403, 0x100e, 0x8086, 0x100e, 0x8086, 0x3040,
  0x0008, 0x2000, 0x7e14, 0x0048, 0x1000, 0x00d8, 0x0000, 0x2700,
  0x6cc9, 0x3150, 0x0722, 0x040b, 0x0984, 0x0000, 0xc000, 0x0706,
  0x1008, 0x0000, 0x0f04, 0x7fff, 0x4d01, 0xffff, 0xffff, 0xffff,
  0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
  0x0100, 0x4000, 0x121c, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
  0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x0000,
];

/** EEPROM contents for `mac`: MAC in words 0..2 (low byte first), checksum in word 63. */
export function buildEeprom(mac: Uint8Array, deviceId = 0x100e): Uint16Array {
  const w = Uint16Array.from(TEMPLATE);
  for (let i = 0; i < 3; i++) w[i] = (mac[2 * i]! | (mac[2 * i + 1]! << 8)) & 0xffff;
  w[11] = deviceId;
  w[13] = deviceId;
  let sum = 0;
  for (let i = 0; i < CHECKSUM_WORD; i++) sum += w[i]!;
  w[CHECKSUM_WORD] = (EEPROM_SUM - sum) & 0xffff;
  return w;
}

/** The Microwire shift state (plain data, so it snapshots as JSON). */
export interface MicrowireState {
  /** Bits shifted in since CS rose (opcode then address). */
  valIn: number;
  bitsIn: number;
  /** Index of the bit DO presents: word·16 + bit, MSB first. */
  bitOut: number;
  reading: boolean;
  /** The stored SK|CS|DI|FWE|REQ bits of the last EECD write. */
  eecd: number;
}

export const initialMicrowire = (): MicrowireState => ({ valIn: 0, bitsIn: 0, bitOut: 0, reading: false, eecd: 0 });

/** EECD read: PRES and GNT always, the stored control bits, DO from the shift register. */
export function readEecd(s: MicrowireState, words: Uint16Array): number {
  let v = EECD.PRES | EECD.GNT | s.eecd;
  if (!s.reading) return v | EECD.DO;
  const word = words[(s.bitOut >> 4) & 0x3f]!;
  if (((word >> ((s.bitOut & 0xf) ^ 0xf)) & 1) !== 0) v |= EECD.DO;
  return v;
}

/**
 * EECD write: CS low does nothing; a CS rising edge resets the shift state; an SK rising
 * edge shifts DI in (after 3 opcode + 6 address bits a READ positions the output);
 * an SK falling edge advances the output bit.
 */
export function writeEecd(s: MicrowireState, value: number): void {
  const old = s.eecd;
  s.eecd = value & (EECD.SK | EECD.CS | EECD.DI | EECD.FWE | EECD.REQ);
  if ((value & EECD.CS) === 0) return;
  if (((value ^ old) & EECD.CS) !== 0) {
    s.valIn = 0;
    s.bitsIn = 0;
    s.bitOut = 0;
    s.reading = false;
  }
  if (((value ^ old) & EECD.SK) === 0) return;
  if ((value & EECD.SK) === 0) {
    s.bitOut = (s.bitOut + 1) & 0xffff;
    return;
  }
  s.valIn = ((s.valIn << 1) | ((value & EECD.DI) !== 0 ? 1 : 0)) >>> 0;
  s.bitsIn = (s.bitsIn + 1) & 0xffff;
  if (s.bitsIn === 9 && !s.reading) {
    s.bitOut = (((s.valIn & 0x3f) << 4) - 1) & 0xffff;
    s.reading = ((s.valIn >> 6) & 7) === READ_OPCODE;
  }
}
