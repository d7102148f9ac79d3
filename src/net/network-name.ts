/**
 * Network names, as users write them in `--network NAME`, a listener's `network=NAME`, a
 * WebSocket URL's `?network=NAME` and `--net-option NAME:…`: lower-case letters, digits, `_`
 * and `-`, starting with a letter or digit, at most 32 characters. Checked here once, so that
 * every entry point refuses the same names with the same reason.
 */

export const NETWORK_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Why `name` is not a network name, or undefined when it is one. */
export function networkNameProblem(name: string): string | undefined {
  if (NETWORK_NAME_PATTERN.test(name)) return undefined;
  const shown = name.length > 40 ? `${JSON.stringify(name.slice(0, 40))}…` : JSON.stringify(name);
  if (name === '') return 'a network name cannot be empty';
  if (name.length > 32) return `network name ${shown} is longer than 32 characters`;
  return `network name ${shown} must match [a-z0-9][a-z0-9_-]{0,31} (lower-case letters, digits, '_' and '-')`;
}
