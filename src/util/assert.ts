/** Exhaustiveness check for switches over string unions. */
export function assertNever(x: never): never {
  throw new Error(`unreachable: ${String(x)}`);
}
