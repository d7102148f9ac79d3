/**
 * Starts the control API (src/api) for `tslirp serve`: reads the token file, binds `--api`
 * listeners. The default socket (no --api given) is a convenience: when another daemon
 * already serves it, this one says so and runs without an API instead of refusing to start;
 * a listener asked for by name must bind, or the daemon does not start.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ApiServer } from '../api/server.js';
import type { Daemon } from '../daemon/daemon.js';
import { StartError } from '../daemon/start-error.js';
import type { Command } from './options.js';

export async function startApi(cmd: Extract<Command, { command: 'serve' }>, daemon: Daemon, log: Logger, userAppl: string): Promise<ApiServer | undefined> {
  const { listen, isDefault, tokenFile } = cmd.api;
  if (listen.length === 0) return undefined;
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = (await readFile(tokenFile, 'utf8')).split('\n')[0]!.trim();
    } catch (e) {
      throw new StartError(`read --api-token-file ${tokenFile}`, e);
    }
    if (token.length < 16) throw new StartError(`use --api-token-file ${tokenFile}`, new Error('its first line must hold a token of at least 16 characters'));
  }
  try {
    return await ApiServer.start({ listen, control: daemon, log, token, userAppl });
  } catch (e) {
    if (!isDefault) throw new StartError('start the control API', e);
    log.warn({ err: (e as Error).message }, 'control API not started (the default socket is taken; give --api to choose one)');
    return undefined;
  }
}
