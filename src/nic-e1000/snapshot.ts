/**
 * Save and restore of the device as a plain JSON-able object, versioned. Timers are stored
 * as time remaining, so a snapshot restores onto any clock. Restoring validates every field
 * and returns a `Drop` for a malformed snapshot instead of throwing.
 */
import type { Drop } from '../util/drops.js';
import type { E1000 } from './device.js';
import type { MicrowireState } from './eeprom.js';
import { REG_COUNT } from './regs.js';
import { initialTxState, type TxContext } from './tx.js';

export const SNAPSHOT_VERSION = 1;

/** Version 1 of the saved state. Byte arrays are base64; `regs` lists non-zero registers. */
export interface E1000Snapshot {
  readonly version: typeof SNAPSHOT_VERSION;
  /** [index, value] for every non-zero MAC register (index = offset >>> 2). */
  readonly regs: readonly (readonly [number, number])[];
  readonly phy: readonly number[];
  readonly eeprom: readonly number[];
  readonly microwire: Readonly<MicrowireState>;
  /** PCI configuration space, 256 bytes. */
  readonly pci: string;
  readonly ioAddr: number;
  readonly backendLinkUp: boolean;
  readonly tx: {
    readonly data: string;
    readonly header: string;
    readonly sumNeeded: number;
    readonly cptse: boolean;
    readonly vlanNeeded: boolean;
    readonly vlanTag: number;
    readonly props: Readonly<TxContext>;
    readonly tsoProps: Readonly<TxContext>;
    readonly tsoFrames: number;
  };
  readonly mitigation: { readonly remainingMs: number | null; readonly irqLevel: boolean; readonly ide: boolean };
  readonly autonegRemainingMs: number | null;
  /** qemuCompat's receive blackout after an RCTL write; absent in snapshots of earlier builds. */
  readonly rctlBlockedRemainingMs?: number | null;
}

/** Base64 with the web's btoa/atob (Node and browsers alike: the model runs in both). */
function b64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x2000) s += String.fromCharCode(...b.subarray(i, i + 0x2000));
  return btoa(s);
}
/** Decodes base64; a string that is not base64 decodes to undefined. */
function decode64(s: string): Uint8Array | undefined {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    return undefined;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
const unb64 = (s: string): Uint8Array => decode64(s) ?? new Uint8Array(0);

const remaining = (atNs: number | undefined, nowNs: number): number | null => (atNs === undefined ? null : Math.max(0, atNs - nowNs) / 1e6);
const deadline = (remainingMs: number | null | undefined, nowNs: number): number | undefined =>
  remainingMs === null || remainingMs === undefined ? undefined : nowNs + Math.round(remainingMs * 1e6);

/** The device's state at `nowNs` (its time in integer nanoseconds); timers as milliseconds remaining. */
export function saveE1000(d: E1000, nowNs: number): E1000Snapshot {
  const regs: [number, number][] = [];
  for (let i = 0; i < REG_COUNT; i++) if (d.regs[i] !== 0) regs.push([i, d.regs[i]!]);
  const tx = d.tx;
  return {
    version: SNAPSHOT_VERSION,
    regs,
    phy: Array.from(d.phy),
    eeprom: Array.from(d.eeprom),
    microwire: { ...d.microwire },
    pci: b64(d.pci.bytes),
    ioAddr: d.ioAddr,
    backendLinkUp: d.backendLinkUp,
    tx: {
      data: b64(tx.data.subarray(0, tx.size)),
      header: b64(tx.header),
      sumNeeded: tx.sumNeeded,
      cptse: tx.cptse,
      vlanNeeded: tx.vlanNeeded,
      vlanTag: tx.vlanTag,
      props: { ...tx.props },
      tsoProps: { ...tx.tsoProps },
      tsoFrames: tx.tsoFrames,
    },
    mitigation: {
      remainingMs: remaining(d.mitigation.timerAtNs, nowNs),
      irqLevel: d.mitigation.irqLevel,
      ide: d.mitigation.ide,
    },
    autonegRemainingMs: remaining(d.autonegAtNs, nowNs),
    rctlBlockedRemainingMs: remaining(d.rctlBlockedUntilNs, nowNs),
  };
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isU16 = (v: unknown): v is number => isU32(v) && v <= 0xffff;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isTime = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function isContext(v: unknown): v is TxContext {
  if (!isRecord(v)) return false;
  for (const k of ['ipcss', 'ipcso', 'ipcse', 'tucss', 'tucso', 'tucse', 'paylen', 'hdrLen', 'mss']) if (!isU32(v[k])) return false;
  return isBool(v['ip']) && isBool(v['tcp']);
}

/** Checks a parsed JSON value against version 1; a Drop names the first problem. */
export function validateSnapshot(v: unknown): E1000Snapshot | Drop {
  if (!isRecord(v)) return 'e1000.snapshot-not-object';
  if (v['version'] !== SNAPSHOT_VERSION) return 'e1000.snapshot-version';
  const regs = v['regs'];
  if (!Array.isArray(regs) || !regs.every((p) => Array.isArray(p) && p.length === 2 && isU32(p[0]) && p[0] < REG_COUNT && isU32(p[1]))) return 'e1000.snapshot-regs';
  const phy = v['phy'];
  if (!Array.isArray(phy) || phy.length !== 32 || !phy.every(isU16)) return 'e1000.snapshot-phy';
  const eeprom = v['eeprom'];
  if (!Array.isArray(eeprom) || eeprom.length !== 64 || !eeprom.every(isU16)) return 'e1000.snapshot-eeprom';
  const mw = v['microwire'];
  if (!isRecord(mw) || !isU32(mw['valIn']) || !isU16(mw['bitsIn']) || !isU16(mw['bitOut']) || !isBool(mw['reading']) || !isU32(mw['eecd'])) return 'e1000.snapshot-microwire';
  if (typeof v['pci'] !== 'string' || decode64(v['pci'])?.length !== 256) return 'e1000.snapshot-pci';
  if (!isU32(v['ioAddr']) || !isBool(v['backendLinkUp'])) return 'e1000.snapshot-io';
  const tx = v['tx'];
  if (!isRecord(tx) || typeof tx['data'] !== 'string' || typeof tx['header'] !== 'string' || !isU32(tx['sumNeeded']) ||
    !isBool(tx['cptse']) || !isBool(tx['vlanNeeded']) || !isU32(tx['vlanTag']) || !isContext(tx['props']) ||
    !isContext(tx['tsoProps']) || !isU16(tx['tsoFrames'])) return 'e1000.snapshot-tx';
  const data = decode64(tx['data']);
  if (data === undefined || data.length > 0x10000 || decode64(tx['header'])?.length !== 256) return 'e1000.snapshot-tx';
  const m = v['mitigation'];
  if (!isRecord(m) || !isTime(m['remainingMs']) || !isBool(m['irqLevel']) || !isBool(m['ide'])) return 'e1000.snapshot-mitigation';
  if (!isTime(v['autonegRemainingMs'])) return 'e1000.snapshot-autoneg';
  if (v['rctlBlockedRemainingMs'] !== undefined && !isTime(v['rctlBlockedRemainingMs'])) return 'e1000.snapshot-rctl-blackout';
  return v as unknown as E1000Snapshot;
}

/** Loads a validated snapshot into `d` (whose MAC and EEPROM were built by its constructor). */
export function loadE1000(d: E1000, s: E1000Snapshot, nowNs: number): void {
  d.regs.fill(0);
  for (const [i, v] of s.regs) d.regs[i] = v;
  d.phy = Uint16Array.from(s.phy);
  d.eeprom.set(s.eeprom);
  d.microwire = { ...s.microwire };
  d.pci.bytes.set(unb64(s.pci));
  d.ioAddr = s.ioAddr;
  d.backendLinkUp = s.backendLinkUp;
  const tx = initialTxState();
  const data = unb64(s.tx.data);
  tx.data.set(data);
  tx.size = data.length;
  tx.header.set(unb64(s.tx.header));
  tx.sumNeeded = s.tx.sumNeeded;
  tx.cptse = s.tx.cptse;
  tx.vlanNeeded = s.tx.vlanNeeded;
  tx.vlanTag = s.tx.vlanTag;
  tx.props = { ...s.tx.props };
  tx.tsoProps = { ...s.tx.tsoProps };
  tx.tsoFrames = s.tx.tsoFrames;
  d.tx = tx;
  d.mitigation = {
    timerAtNs: deadline(s.mitigation.remainingMs, nowNs),
    irqLevel: s.mitigation.irqLevel,
    ide: s.mitigation.ide,
  };
  d.autonegAtNs = deadline(s.autonegRemainingMs, nowNs);
  d.rctlBlockedUntilNs = deadline(s.rctlBlockedRemainingMs, nowNs);
}
