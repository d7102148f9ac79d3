/**
 * Tokens for WebSocket listeners (`--ws-token-file PATH`): who may open a session, and on
 * which networks.
 *
 * The file holds one token per line, optionally followed by the networks that token may
 * join: `s3cret-token-of-alice network=lab,lab2`. Blank lines and lines starting with `#`
 * are skipped. A token is 16 to 256 printable ASCII characters without spaces (shorter ones
 * are refused: a guessable token is an open proxy with extra steps). A token with no
 * `network=` may join any network, a private one included; one with a list may join only
 * those networks (a request that names none, on a listener that names none, is refused:
 * it would get a private network, which the list does not name).
 *
 * A client presents its token as `?token=` in the URL (v86's `relay_url` can carry it) or as
 * `Authorization: Bearer TOKEN`. Each candidate is compared with every token of the file in
 * constant time (SHA-256 of both, then `timingSafeEqual`, never stopping at the first match),
 * so the time a refusal takes says nothing about how much of a token was right. Tokens never
 * reach a log line or a counter.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { networkNameProblem } from '../net/network-name.js';

/** One token of the file: its digest, and the networks it may join (undefined: any). */
interface TokenEntry {
  readonly digest: Buffer;
  readonly networks: ReadonlySet<string> | undefined;
  /** 1-based line in the file, for logs (never the token). */
  readonly line: number;
}

export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 256;
/** Tokens in one file: each request is compared with all of them. */
export const MAX_TOKENS = 10_000;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** What a request presented, judged. */
export type TokenVerdict =
  | { readonly ok: true; readonly line: number; readonly networks: ReadonlySet<string> | undefined }
  | { readonly ok: false; readonly reason: 'ws.token-missing' | 'ws.token-refused' };

/** The tokens of one file. */
export class WsTokens {
  readonly #entries: readonly TokenEntry[];

  private constructor(entries: readonly TokenEntry[]) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Parses a token file's text; throws an Error naming the line for anything malformed. */
  static parse(text: string): WsTokens {
    const entries: TokenEntry[] = [];
    const seen = new Set<string>();
    const lines = text.split(/\r?\n/);
    for (const [i, raw] of lines.entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const where = `line ${i + 1}`;
      const [token = '', ...rest] = line.split(/[ \t]+/);
      if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH) throw new Error(`${where}: a token must be ${MIN_TOKEN_LENGTH} to ${MAX_TOKEN_LENGTH} characters long (generate one with: openssl rand -hex 24)`);
      if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`${where}: a token is printable ASCII without spaces`);
      let networks: Set<string> | undefined;
      for (const word of rest) {
        const m = /^network=(.+)$/.exec(word);
        if (m === null || networks !== undefined) throw new Error(`${where}: after the token only network=NAME[,NAME...] may follow`);
        networks = new Set();
        for (const name of m[1]!.split(',')) {
          const problem = networkNameProblem(name);
          if (problem !== undefined) throw new Error(`${where}: ${problem}`);
          networks.add(name);
        }
      }
      const d = digest(token);
      const key = d.toString('hex');
      if (seen.has(key)) throw new Error(`${where}: the same token appears twice`);
      seen.add(key);
      entries.push({ digest: d, networks, line: i + 1 });
      if (entries.length > MAX_TOKENS) throw new Error(`more than ${MAX_TOKENS} tokens`);
    }
    if (entries.length === 0) throw new Error('holds no token (one per line; # starts a comment)');
    return new WsTokens(entries);
  }

  /** Judges the token a request presents (`?token=` or `Authorization: Bearer`). */
  check(req: http.IncomingMessage): TokenVerdict {
    const presented = presentedToken(req);
    if (presented === undefined) return { ok: false, reason: 'ws.token-missing' };
    const d = digest(presented);
    let found: TokenEntry | undefined;
    // Every entry is compared, whatever matched: the time taken does not depend on where.
    for (const e of this.#entries) if (timingSafeEqual(d, e.digest) && found === undefined) found = e;
    return found === undefined ? { ok: false, reason: 'ws.token-refused' } : { ok: true, line: found.line, networks: found.networks };
  }
}

/** The token a request carries: `Authorization: Bearer` first, else the URL's `?token=`. */
export function presentedToken(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  try {
    return new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
  } catch {
    return undefined;
  }
}

/** Whether a token's network list lets it join `network` (undefined: a private network). */
export function tokenMayJoin(networks: ReadonlySet<string> | undefined, network: string | undefined): boolean {
  return networks === undefined || (network !== undefined && networks.has(network));
}
