/** TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4). Never compare with a bare `<`. */

export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
export const seqSub = (a: number, b: number): number => (a - b) | 0;
export const seqLt = (a: number, b: number): boolean => seqSub(a, b) < 0;
export const seqLe = (a: number, b: number): boolean => seqSub(a, b) <= 0;
export const seqGt = (a: number, b: number): boolean => seqSub(a, b) > 0;
export const seqGe = (a: number, b: number): boolean => seqSub(a, b) >= 0;
/** start <= x < start + size */
export const inWindow = (x: number, start: number, size: number): boolean => ((x - start) >>> 0) < size;
