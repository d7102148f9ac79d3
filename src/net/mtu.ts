/**
 * Link MTU bounds, shared by the link (its largest frame) and the stack's configuration
 * (what `--mtu` accepts). QEMU's `-netdev user` caps the MTU at 65520.
 */
export const DEFAULT_MTU = 1500;
export const MAX_MTU = 65520;
/** IPv4's minimum MTU (RFC 791). */
export const MIN_MTU = 68;
