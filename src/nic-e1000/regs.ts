/**
 * 82540EM register offsets and bit fields, with the datasheet mnemonics
 * (Intel 8254x Family of Gigabit Ethernet Controllers SDM, §13.4 "Register Descriptions",
 * table 13-2). Offsets are byte offsets into BAR0; the register file is indexed by
 * `offset >>> 2`.
 */

/** Byte offsets of the MAC registers (8254x SDM §13.4, table 13-2). */
export const R = {
  CTRL: 0x0000,
  STATUS: 0x0008,
  EECD: 0x0010,
  EERD: 0x0014,
  CTRL_EXT: 0x0018,
  FLA: 0x001c,
  MDIC: 0x0020,
  FCAL: 0x0028,
  FCAH: 0x002c,
  FCT: 0x0030,
  VET: 0x0038,
  ICR: 0x00c0,
  ITR: 0x00c4,
  ICS: 0x00c8,
  IMS: 0x00d0,
  IMC: 0x00d8,
  RCTL: 0x0100,
  FCTTV: 0x0170,
  TXCW: 0x0178,
  RXCW: 0x0180,
  TCTL: 0x0400,
  TIPG: 0x0410,
  AIT: 0x0458,
  LEDCTL: 0x0e00,
  PBA: 0x1000,
  FCRTL: 0x2160,
  FCRTH: 0x2168,
  RDFH: 0x2410,
  RDFT: 0x2418,
  RDFHS: 0x2420,
  RDFTS: 0x2428,
  RDFPC: 0x2430,
  RDBAL: 0x2800,
  RDBAH: 0x2804,
  RDLEN: 0x2808,
  RDH: 0x2810,
  RDT: 0x2818,
  RDTR: 0x2820,
  RXDCTL: 0x2828,
  RADV: 0x282c,
  RSRPD: 0x2c00,
  TXDMAC: 0x3000,
  TDFH: 0x3410,
  TDFT: 0x3418,
  TDFHS: 0x3420,
  TDFTS: 0x3428,
  TDFPC: 0x3430,
  TDBAL: 0x3800,
  TDBAH: 0x3804,
  TDLEN: 0x3808,
  TDH: 0x3810,
  TDT: 0x3818,
  TIDV: 0x3820,
  TXDCTL: 0x3828,
  TADV: 0x382c,
  TSPMT: 0x3830,
  // Statistics (§13.7)
  CRCERRS: 0x4000,
  ALGNERRC: 0x4004,
  SYMERRS: 0x4008,
  RXERRC: 0x400c,
  MPC: 0x4010,
  SCC: 0x4014,
  ECOL: 0x4018,
  MCC: 0x401c,
  LATECOL: 0x4020,
  COLC: 0x4028,
  DC: 0x4030,
  TNCRS: 0x4034,
  SEC: 0x4038,
  CEXTERR: 0x403c,
  RLEC: 0x4040,
  XONRXC: 0x4048,
  XONTXC: 0x404c,
  XOFFRXC: 0x4050,
  XOFFTXC: 0x4054,
  FCRUC: 0x4058,
  PRC64: 0x405c,
  PRC127: 0x4060,
  PRC255: 0x4064,
  PRC511: 0x4068,
  PRC1023: 0x406c,
  PRC1522: 0x4070,
  GPRC: 0x4074,
  BPRC: 0x4078,
  MPRC: 0x407c,
  GPTC: 0x4080,
  GORCL: 0x4088,
  GORCH: 0x408c,
  GOTCL: 0x4090,
  GOTCH: 0x4094,
  RNBC: 0x40a0,
  RUC: 0x40a4,
  RFC: 0x40a8,
  ROC: 0x40ac,
  RJC: 0x40b0,
  MGTPRC: 0x40b4,
  MGTPDC: 0x40b8,
  MGTPTC: 0x40bc,
  TORL: 0x40c0,
  TORH: 0x40c4,
  TOTL: 0x40c8,
  TOTH: 0x40cc,
  TPR: 0x40d0,
  TPT: 0x40d4,
  PTC64: 0x40d8,
  PTC127: 0x40dc,
  PTC255: 0x40e0,
  PTC511: 0x40e4,
  PTC1023: 0x40e8,
  PTC1522: 0x40ec,
  MPTC: 0x40f0,
  BPTC: 0x40f4,
  TSCTC: 0x40f8,
  TSCTFC: 0x40fc,
  RXCSUM: 0x5000,
  MTA: 0x5200,
  RAL0: 0x5400,
  RAH0: 0x5404,
  VFTA: 0x5600,
  WUC: 0x5800,
  WUFC: 0x5808,
  WUS: 0x5810,
  MANC: 0x5820,
  IPAV: 0x5838,
  IP4AT: 0x5840,
  IP6AT: 0x5880,
  WUPL: 0x5900,
  WUPM: 0x5a00,
  SWSM: 0x5b50,
  FFLT: 0x5f00,
  FFMT: 0x9000,
  FFVT: 0x9800,
  PBM: 0x10000,
} as const;

/** Number of 32-bit registers in the 128 KiB BAR0 window. */
export const REG_COUNT = 0x8000;
/** BAR0 size in bytes (128 KiB). */
export const MMIO_SIZE = 0x20000;
/** BAR1 size in bytes. */
export const IO_SIZE = 0x40;

/** CTRL bits (§13.4.1). */
export const CTRL = {
  FD: 1 << 0,
  ASDE: 1 << 5,
  SLU: 1 << 6,
  SPD_1000: 2 << 8,
  FRCSPD: 1 << 11,
  FRCDPX: 1 << 12,
  SWDPIN0: 1 << 18,
  SWDPIN2: 1 << 20,
  RST: 1 << 26,
  RFCE: 1 << 27,
  TFCE: 1 << 28,
  VME: 1 << 30,
  PHY_RST: 1 << 31,
} as const;

/** STATUS bits (§13.4.2). */
export const STATUS = {
  FD: 1 << 0,
  LU: 1 << 1,
  SPEED_1000: 2 << 6,
  ASDV: 3 << 8,
  MTXCKOK: 1 << 10,
  GIO_MASTER_EN: 1 << 19,
} as const;

/** Interrupt cause bits shared by ICR/ICS/IMS/IMC (§13.4.17). */
export const ICR = {
  TXDW: 0x01,
  TXQE: 0x02,
  LSC: 0x04,
  RXSEQ: 0x08,
  RXDMT0: 0x10,
  RXO: 0x40,
  RXT0: 0x80,
  MDAC: 0x200,
  RXCFG: 0x400,
  TXD_LOW: 0x8000,
  SRPD: 0x10000,
} as const;

/** RCTL bits (§13.4.22). */
export const RCTL = {
  EN: 1 << 1,
  SBP: 1 << 2,
  UPE: 1 << 3,
  MPE: 1 << 4,
  LPE: 1 << 5,
  RDMTS_SHIFT: 8,
  MO_SHIFT: 12,
  BAM: 1 << 15,
  BSIZE_SHIFT: 16,
  VFE: 1 << 18,
  BSEX: 1 << 25,
  SECRC: 1 << 26,
} as const;

/** TCTL bits (§13.4.33). */
export const TCTL = { EN: 1 << 1, PSP: 1 << 3 } as const;

/** RAH: address valid (§13.4.60). */
export const RAH_AV = 0x80000000;

/** EECD bits (§13.4.4). */
export const EECD = {
  SK: 0x01,
  CS: 0x02,
  DI: 0x04,
  DO: 0x08,
  FWE: 0x30,
  REQ: 0x40,
  GNT: 0x80,
  PRES: 0x100,
} as const;

/** EERD fields (§13.4.5, 82540EM layout: START bit 0, DONE bit 4, ADDR 8..15, DATA 16..31). */
export const EERD = { START: 0x1, DONE: 0x10, ADDR_SHIFT: 8, DATA_SHIFT: 16 } as const;

/** MDIC fields (§13.4.7). */
export const MDIC = {
  DATA_MASK: 0xffff,
  REG_SHIFT: 16,
  REG_MASK: 0x1f << 16,
  PHY_SHIFT: 21,
  PHY_MASK: 0x1f << 21,
  OP_WRITE: 1 << 26,
  OP_READ: 2 << 26,
  READY: 1 << 28,
  INT_EN: 1 << 29,
  ERROR: 1 << 30,
} as const;

/** Transmit descriptor bits (§3.3.3, §3.3.6, §3.3.7): CMD as bits 24..31 of the lower dword. */
export const TXD = {
  CMD_EOP: 0x01000000,
  CMD_IFCS: 0x02000000,
  CMD_TSE: 0x04000000,
  CMD_RS: 0x08000000,
  CMD_RPS: 0x10000000,
  CMD_DEXT: 0x20000000,
  CMD_VLE: 0x40000000,
  CMD_IDE: 0x80000000,
  DTYP_D: 0x00100000,
  // Context TUCMD, as bits 24..31 of the context descriptor's cmd_and_length dword.
  CMD_TCP: 0x01000000,
  CMD_IP: 0x02000000,
  STAT_DD: 0x01,
  STAT_EC: 0x02,
  STAT_LC: 0x04,
  STAT_TU: 0x08,
  POPTS_IXSM: 0x01,
  POPTS_TXSM: 0x02,
} as const;

/** Receive descriptor status bits (§3.2.3.1). */
export const RXD = {
  STAT_DD: 0x01,
  STAT_EOP: 0x02,
  STAT_IXSM: 0x04,
  STAT_VP: 0x08,
  STAT_TCPCS: 0x20,
  STAT_IPCS: 0x40,
} as const;

/** Descriptor size for both rings (§3.2.3, §3.3.3). */
export const DESC_SIZE = 16;
