/**
 * The 82540EM's integrated PHY (Marvell M88E1011-compatible) as seen through MDIC
 * (8254x SDM §13.5 "PHY Registers"), with QEMU 7.2's reset values and access rules.
 */

/** PHY register numbers (IEEE 802.3 clause 22 plus the M88 vendor registers). */
export const PHY = {
  BMCR: 0,
  BMSR: 1,
  PHYID1: 2,
  PHYID2: 3,
  ANAR: 4,
  ANLPAR: 5,
  ANER: 6,
  CTRL1000: 9,
  STAT1000: 10,
  PSCR: 16,
  PSSR: 17,
  EPSCR: 20,
  RXERR: 21,
} as const;

export const BMCR = { RESET: 0x8000, LOOPBACK: 0x4000, AUTOEN: 0x1000, ANRESTART: 0x0200 } as const;
export const BMSR = { LINK: 0x0004, AN_COMPLETE: 0x0020 } as const;
export const ANLPAR_ACK = 0x4000;

/** The address the PHY answers on (MDIC.PHYADD). */
export const PHY_ADDRESS = 1;

/** Reset values (§13.5; BMSR without AN-complete until autonegotiation has run). */
export function phyResetValues(): Uint16Array {
  const p = new Uint16Array(32);
  p[PHY.BMCR] = 0x1140;
  p[PHY.BMSR] = 0x794d;
  p[PHY.PHYID1] = 0x0141;
  p[PHY.PHYID2] = 0x0c20;
  p[PHY.ANAR] = 0x0de1;
  p[PHY.ANLPAR] = 0x01e0;
  p[PHY.CTRL1000] = 0x0e00;
  p[PHY.STAT1000] = 0x3c00;
  p[PHY.PSCR] = 0x0360;
  p[PHY.PSSR] = 0xac00;
  p[PHY.EPSCR] = 0x0d60;
  return p;
}

const READABLE: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6, 9, 10, 16, 17, 20, 21]);
const WRITABLE: ReadonlySet<number> = new Set([0, 4, 9, 16, 20]);

export const phyReadable = (reg: number): boolean => READABLE.has(reg);
export const phyWritable = (reg: number): boolean => WRITABLE.has(reg);
