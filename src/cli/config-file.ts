/**
 * `--config FILE`: options from a JSON object whose keys are the long option names without
 * `--` (`{"mtu": 9000, "hostfwd": ["tcp::2222-:22"]}`), so the file says everything the
 * command line says and is checked by the same parser: the file becomes command-line tokens
 * placed before the real ones. An option given on the command line replaces the file's value
 * (a repeatable one too: its list is the command line's alone). `--print-config` prints the
 * effective options in the same form, which `--config` reads back.
 *
 * The JSON Schema of the file (docs/config.schema.json) is derived from the option table
 * (`configSchema`), and a test holds the published file to it.
 */
import { parseArgs } from 'node:util';
import { OPTION_TYPES, UsageError } from './options.js';

/** Options that make no sense in a file. */
const NOT_IN_FILE: ReadonlySet<string> = new Set(['config', 'print-config', 'help', 'version']);

export type ConfigValue = string | number | boolean | readonly (string | number)[];
export type ConfigObject = Readonly<Record<string, ConfigValue>>;

/** The option names given on the command line (as parseArgs sees them; unknown ones included). */
function givenOptions(argv: readonly string[]): Set<string> {
  const { tokens } = parseArgs({ args: [...argv], options: OPTION_TYPES, allowPositionals: true, strict: false, tokens: true });
  return new Set(tokens.filter((t) => t.kind === 'option').map((t) => t.name));
}

/** The value of `--config` on the command line, when given. */
export function configPath(argv: readonly string[]): string | undefined {
  const { values } = parseArgs({ args: [...argv], options: OPTION_TYPES, allowPositionals: true, strict: false });
  const v = values['config'];
  return typeof v === 'string' ? v : undefined;
}

/** A config file's text → command-line tokens; UsageError naming the file and key. */
export function configTokens(text: string, file: string): string[] {
  const fail = (why: string): never => {
    throw new UsageError(`--config ${file}: ${why}`, 'config');
  };
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return fail(`not JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail('must be a JSON object of option names and values');
  const out: string[] = [];
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    const spec = Object.hasOwn(OPTION_TYPES, key) ? OPTION_TYPES[key] : undefined;
    if (spec === undefined || NOT_IN_FILE.has(key)) fail(`'${key}' is not an option a config file may set (keys are long option names without '--', e.g. "mtu")`);
    if (spec!.type === 'boolean') {
      if (typeof value !== 'boolean') fail(`${key} must be true or false`);
      if (value === true) out.push(`--${key}`);
      continue;
    }
    const one = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : fail(`${key} must be a string or a number${spec!.multiple === true ? ', or a list of them' : ''}`));
    const values = Array.isArray(value) ? (spec!.multiple === true ? value.map(one) : fail(`${key} takes one value, not a list`)) : [one(value)];
    for (const v of values) out.push(`--${key}=${v}`);
  }
  return out;
}

/** The command line with the config file's options before it; the file's options the command line also gives are left out. */
export function mergeConfig(argv: readonly string[], fileTokens: readonly string[]): string[] {
  const given = givenOptions(argv);
  const fromFile = fileTokens.filter((t) => !given.has(/^--([^=]+)/.exec(t)![1]!));
  const first = argv.indexOf('serve');
  // Options go after the command word, as the parser wants them.
  if (first < 0) return [...argv, ...fromFile];
  return [...argv.slice(0, first + 1), ...fromFile, ...argv.slice(first + 1)];
}

/** The effective options of a command line, as a config object (what --print-config prints). */
export function effectiveConfig(argv: readonly string[]): Record<string, ConfigValue> {
  const { values } = parseArgs({ args: [...argv], options: OPTION_TYPES, allowPositionals: true, strict: false });
  const out: Record<string, ConfigValue> = {};
  for (const [key, value] of Object.entries(values)) {
    if (NOT_IN_FILE.has(key) || value === undefined) continue;
    out[key] = Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : (value);
  }
  return out;
}

/** The JSON Schema (2020-12) of a config file, from the option table. */
export function configSchema(): Record<string, unknown> {
  const scalar = { type: ['string', 'number'] };
  const properties: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTION_TYPES)) {
    if (NOT_IN_FILE.has(key)) continue;
    properties[key] = spec.type === 'boolean'
      ? { type: 'boolean', description: `--${key}` }
      : spec.multiple === true
        ? { description: `--${key} (repeatable)`, oneOf: [scalar, { type: 'array', items: scalar }] }
        : { ...scalar, description: `--${key}` };
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/tslirp/tslirp/blob/main/docs/config.schema.json',
    title: 'tslirp serve --config FILE',
    description: 'Options of tslirp serve, keyed by their long names without --; `tslirp serve --help` says what each means. An option given on the command line replaces the value here.',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
