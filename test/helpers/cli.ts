/**
 * The command-line parser as option tests use it: `serve(...args)` parses `tslirp serve ARGS`
 * (with `env` as the environment, empty by default) and returns the serve command;
 * `refusal(...args)` returns the error ARGS are refused with and fails the test when they are
 * accepted.
 */
import { parseCommandLine, UsageError, type Command } from '../../src/cli/options.js';
import { ConfigError } from '../../src/util/config-error.js';

export type Serve = Extract<Command, { command: 'serve' }>;

export function serveIn(env: NodeJS.ProcessEnv, ...args: string[]): Serve {
  const c = parseCommandLine(['serve', ...args], env);
  if (c.command !== 'serve') throw new Error(`not serve: ${args.join(' ')}`);
  return c;
}

export const serve = (...args: string[]): Serve => serveIn({}, ...args);

export function refusal(...args: string[]): UsageError | ConfigError {
  try {
    serve(...args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted: ${args.join(' ')}`);
}
