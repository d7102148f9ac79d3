/**
 * `tslirp ctl`: a client of the control API (src/api) on undici. It finds the daemon's
 * default API socket by itself (api.sock in the runtime directory `tslirp serve` uses),
 * prints tables for people and the API's JSON with --json (scripts ask for it, so what they
 * get does not depend on where stdout goes), streams a capture to stdout and events as they
 * happen. A daemon that is not running is one line on stderr and exit 1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request, type Dispatcher } from 'undici';
import { parseApiSpec, type ApiListenSpec } from '../api/server.js';
import { runtimeDir } from '../daemon/listen-spec.js';

export const CTL_HELP = `Usage: tslirp ctl [--api unix:PATH|tcp:HOST:PORT] [--api-token-file PATH] [--json] COMMAND

Talks to a running tslirp daemon through its control API (default: the unix socket
api.sock beside the default stream socket).

Commands:
  sessions                     guest sessions: id, network, link, traffic each way
  networks                     networks: addresses, sessions, flows, leases
  leases                       DHCP leases: network, MAC, address, host name, expiry
  flows [--network N] [--session ID] [--protocol tcp|udp]
                               NAT flows: guest, remote and host endpoints, bytes, state
  forwards                     port forwards (command-line and runtime ones)
  forward add RULE [--network NAME | --session ID]
                               open a forward now, RULE as --hostfwd takes it
                               (tcp:127.0.0.1:8080-:80)
  forward rm ID                close a runtime forward
  disconnect ID                end a session
  capture ID [--network]       a live pcapng of session ID (or of network ID) to stdout,
                               until interrupted: tslirp ctl capture ID | tshark -r -
  watch                        events as they happen (sessions, leases, flows, mappings, forwards)

Options:
  --json                       print the API's JSON (watch: one event per line)
  --api unix:PATH|tcp:HOST:PORT  where the API is (default: DIR/api.sock, DIR as for serve)
  --api-token-file PATH        send PATH's first line as a Bearer token
  -h, --help                   show this help

Exit status: 0 on success; 1 when the daemon cannot be reached or refuses the request
(its error message is printed); 2 for bad usage.
`;

class CtlError extends Error {
  readonly exit: number;
  constructor(message: string, exit: number) {
    super(message);
    this.exit = exit;
  }
}

interface Client {
  readonly describe: string;
  readonly dispatcher: Dispatcher;
  readonly origin: string;
  readonly headers: Record<string, string>;
}

function client(spec: ApiListenSpec, token: string | undefined): Client {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (spec.kind === 'unix') return { describe: `unix:${spec.path}`, dispatcher: new Agent({ connect: { socketPath: spec.path } }), origin: 'http://localhost', headers };
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return { describe: `tcp:${host}:${spec.port}`, dispatcher: new Agent(), origin: `http://${host}:${spec.port}`, headers };
}

/** One request; the parsed JSON, or a CtlError with the API's message. */
async function call(c: Client, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  let res;
  try {
    res = await request(`${c.origin}${path}`, {
      method,
      dispatcher: c.dispatcher,
      headers: { ...c.headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw unreachable(c, e);
  }
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CtlError(`the API at ${c.describe} answered ${res.statusCode} with something that is not JSON`, 1);
  }
  if (res.statusCode >= 400) {
    const err = (json as { error?: { code?: string; message?: string } }).error;
    throw new CtlError(`${err?.message ?? 'request refused'} (${res.statusCode} ${err?.code ?? ''})`, 1);
  }
  return json;
}

function unreachable(c: Client, e: unknown): CtlError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as { cause?: NodeJS.ErrnoException }).cause?.code ?? (e as Error).message;
  return new CtlError(`cannot reach the daemon's API at ${c.describe} (${code}): is 'tslirp serve' running? (--api names another socket)`, 1);
}

/** Rows as a table: a header line, then aligned columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const bytes = (n: unknown): string => {
  const v = Number(n);
  if (v < 10_000) return `${v}`;
  if (v < 10_000_000) return `${(v / 1024).toFixed(1)}K`;
  return `${(v / 1048576).toFixed(1)}M`;
};
type Row = Record<string, unknown>;
const s = (v: unknown): string => {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return `${v}`;
  return JSON.stringify(v);
};

const TABLES: Readonly<Record<string, { headers: string[]; row: (r: Row) => string[] }>> = {
  sessions: {
    headers: ['ID', 'NETWORK', 'LINK', 'PEER', 'STARTED', 'FROM GUEST', 'TO GUEST', 'DROPS'],
    row: (r) => {
      const link = r['link'] as Row;
      const drops = Object.values(r['drops'] as Record<string, number>).reduce((a, b) => a + b, 0);
      return [s(r['id']), s(r['network']), s(link['kind']), s(link['peer']), s(r['startedAt']), `${s(r['fromGuestFrames'])}f ${bytes(r['fromGuestBytes'])}`, `${s(r['toGuestFrames'])}f ${bytes(r['toGuestBytes'])}`, String(drops)];
    },
  },
  networks: {
    headers: ['NAME', 'NET', 'GATEWAY', 'SESSIONS', 'LEASES', 'TCP', 'UDP', 'MTU'],
    row: (r) => {
      const c = r['config'] as Row;
      const f = r['flows'] as Row;
      return [s(r['name']), s(c['net']), s(c['gateway']), String((r['sessions'] as unknown[]).length), s(r['leases']), s(f['tcp']), s(f['udp']), s(c['mtu'])];
    },
  },
  leases: { headers: ['NETWORK', 'MAC', 'ADDRESS', 'HOSTNAME', 'EXPIRES'], row: (r) => [s(r['network']), s(r['mac']), s(r['address']), s(r['hostname']), s(r['expiresAt'])] },
  flows: {
    headers: ['NETWORK', 'SESSION', 'PROTO', 'STATE', 'GUEST', 'REMOTE', 'HOST', 'LOCAL', 'FROM GUEST', 'TO GUEST', 'AGE', 'IDLE'],
    row: (r) => [s(r['network']), s(r['session']), s(r['protocol']), s(r['state']), s(r['guest']), s(r['remote']), s(r['host']), s(r['local']), bytes(r['bytesFromGuest']), bytes(r['bytesToGuest']), `${Math.round(Number(r['ageMs']) / 1000)}s`, `${Math.round(Number(r['idleMs']) / 1000)}s`],
  },
  forwards: {
    headers: ['ID', 'RULE', 'BOUND', 'NETWORK', 'REFUSED'],
    row: (r) => [s(r['id']), s(r['rule']), (r['bound'] as string[]).join(','), s(r['network']), String(Object.values(r['refusals'] as Record<string, number>).reduce((a, b) => a + b, 0))],
  },
};

/** `tslirp ctl …`: returns the exit status. */
export async function runCtl(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        api: { type: 'string' }, 'api-token-file': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        network: { type: 'string' }, session: { type: 'string' }, protocol: { type: 'string' },
      },
    });
  } catch (e) {
    err.write(`tslirp ctl: ${(e as Error).message.split('\n')[0] ?? ''}\nTry 'tslirp ctl --help'.\n`);
    return 2;
  }
  const v = parsed.values;
  const [command, ...rest] = parsed.positionals;
  if (v.help === true || command === undefined) {
    (v.help === true ? out : err).write(CTL_HELP);
    return v.help === true ? 0 : 2;
  }
  const usage = (m: string): number => {
    err.write(`tslirp ctl: ${m}\nTry 'tslirp ctl --help'.\n`);
    return 2;
  };
  let spec: ApiListenSpec;
  try {
    spec = v.api === undefined ? { kind: 'unix', path: join(runtimeDir(env), 'api.sock') } : parseApiSpec(v.api);
  } catch (e) {
    return usage(`--api: ${(e as Error).message}`);
  }
  let token: string | undefined;
  if (v['api-token-file'] !== undefined) {
    try {
      token = readFileSync(v['api-token-file'], 'utf8').split('\n')[0]!.trim();
    } catch (e) {
      err.write(`tslirp ctl: cannot read --api-token-file ${v['api-token-file']}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const c = client(spec, token);
  const print = (json: unknown, kind: string | undefined): void => {
    if (v.json === true || kind === undefined) {
      out.write(JSON.stringify(json, null, 2) + '\n');
      return;
    }
    const t = TABLES[kind]!;
    const rows = Array.isArray(json) ? (json as Row[]) : [json as Row];
    out.write(table(t.headers, rows.map(t.row)));
  };
  try {
    switch (command) {
      case 'sessions':
      case 'networks':
      case 'leases':
      case 'forwards':
        if (rest.length > 0) return usage(`'${command}' takes no argument`);
        print(await call(c, 'GET', `/v1/${command}`), command);
        return 0;
      case 'flows': {
        const q = new URLSearchParams();
        if (v.network !== undefined) q.set('network', v.network);
        if (v.session !== undefined) q.set('session', v.session);
        if (v.protocol !== undefined) q.set('protocol', v.protocol);
        print(await call(c, 'GET', `/v1/flows${q.size > 0 ? `?${q.toString()}` : ''}`), 'flows');
        return 0;
      }
      case 'forward': {
        const [verb, arg] = rest;
        if (verb === 'add' && arg !== undefined && rest.length === 2) {
          print(await call(c, 'POST', '/v1/forwards', { rule: arg, ...(v.network !== undefined && { network: v.network }), ...(v.session !== undefined && { session: v.session }) }), 'forwards');
          return 0;
        }
        if ((verb === 'rm' || verb === 'remove') && arg !== undefined && rest.length === 2) {
          print(await call(c, 'DELETE', `/v1/forwards/${encodeURIComponent(arg)}`), 'forwards');
          return 0;
        }
        return usage("use 'forward add RULE [--network NAME|--session ID]' or 'forward rm ID'");
      }
      case 'disconnect':
        if (rest.length !== 1) return usage('disconnect takes one session id');
        print(await call(c, 'DELETE', `/v1/sessions/${encodeURIComponent(rest[0]!)}`), 'sessions');
        return 0;
      case 'capture': {
        if (rest.length !== 1) return usage('capture takes one session id (or a network name with --network)');
        const what = v.network !== undefined ? `networks/${encodeURIComponent(v.network)}` : `sessions/${encodeURIComponent(rest[0]!)}`;
        if (v.network !== undefined && rest[0] !== v.network) return usage('capture --network NAME takes the network name as its argument: capture NAME --network NAME');
        return await stream(c, `/v1/${what}/capture`, out, err, undefined);
      }
      case 'watch':
        return await stream(c, '/v1/events', out, err, v.json === true ? 'json' : 'text');
      default:
        return usage(`unknown command '${command}'`);
    }
  } catch (e) {
    if (e instanceof CtlError) {
      err.write(`tslirp ctl: ${e.message}\n`);
      return e.exit;
    }
    throw e;
  } finally {
    void c.dispatcher.destroy();
  }
}

/** A streaming GET to `out`: raw bytes (capture), or events as lines (watch). Ends when the daemon does or on SIGINT. */
async function stream(c: Client, path: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream, events: 'json' | 'text' | undefined): Promise<number> {
  const abort = new AbortController();
  const stop = (): void => { abort.abort(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    let res;
    try {
      res = await request(`${c.origin}${path}`, { dispatcher: c.dispatcher, headers: c.headers, signal: abort.signal, bodyTimeout: 0 });
    } catch (e) {
      throw unreachable(c, e);
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch { /* not JSON: print as it is */ }
      throw new CtlError(`${message} (${res.statusCode})`, 1);
    }
    let pending = '';
    try {
      for await (const chunk of res.body) {
        if (events === undefined) {
          if (!out.write(chunk as Buffer)) await new Promise((r) => out.once('drain', r));
          continue;
        }
        pending += (chunk as Buffer).toString('utf8');
        let end;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name === undefined || data === undefined) continue;
          out.write(events === 'json' ? `${JSON.stringify({ event: name, data: JSON.parse(data) as unknown })}\n` : `${new Date().toISOString()} ${name} ${summary(name, JSON.parse(data) as Row)}\n`);
        }
      }
    } catch (e) {
      if (!abort.signal.aborted) err.write(`tslirp ctl: the stream ended: ${(e as Error).message}\n`);
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** One event in words. */
function summary(name: string, d: Row): string {
  if (name.startsWith('session.')) return `${s(d['id'])} network=${s(d['network'])} link=${s((d['link'] as Row | undefined)?.['kind'])} ${s((d['link'] as Row | undefined)?.['peer'])}${d['reason'] === undefined ? '' : ` reason=${s(d['reason'])}`}`;
  if (name.startsWith('lease.')) return `${s(d['network'])} ${s(d['mac'])} ${s(d['address'])} ${s(d['hostname'])}`;
  if (name.startsWith('flow.')) return `${s(d['network'])} ${s(d['protocol'])} ${s(d['guest'])} -> ${s(d['remote'])} (host ${s(d['host'])}) ${s(d['state'])} ${bytes(d['bytesFromGuest'])}/${bytes(d['bytesToGuest'])}`;
  if (name.startsWith('mapping.')) return `${s(d['network'])} udp ${s(d['guest'])} -> public ${s(d['public'])} (${s(d['socket'])}, allows ${s(d['allows'])}) peers=${Array.isArray(d['peers']) ? d['peers'].length : 0}${d['reason'] === undefined ? '' : ` reason=${s(d['reason'])}`}`;
  if (name.startsWith('forward.')) return `${s(d['id'])} ${s(d['rule'])} network=${s(d['network'])} bound=${s(d['bound'])}`;
  return JSON.stringify(d);
}
