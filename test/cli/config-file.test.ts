import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configPath, configSchema, configTokens, effectiveConfig, mergeConfig } from '../../src/cli/config-file.js';
import { OPTION_NAMES, parseCommandLine, UsageError } from '../../src/cli/options.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const serve = (argv: string[]) => {
  const c = parseCommandLine(argv, {});
  if (c.command !== 'serve') throw new Error('not serve');
  return c;
};

describe('--config FILE', () => {
  it('the published schema is the one the option table gives, with every option a file may set', () => {
    const published = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'config.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
    expect(published).toEqual(configSchema());
    expect(Object.keys(published.properties).sort()).toEqual(OPTION_NAMES.filter((n) => !['config', 'print-config', 'help', 'version'].includes(n)).sort());
  });

  it('says what the command line says; the command line wins, lists included', () => {
    const file = configTokens(JSON.stringify({ mtu: 9000, hostfwd: ['tcp::2222-:22', 'udp::5353-:53'], restrict: true, 'disable-host-loopback': false, network: 'lab', 'dns-upstream': '127.0.0.1:5300' }), 'f.json');
    expect(file).toEqual(['--mtu=9000', '--hostfwd=tcp::2222-:22', '--hostfwd=udp::5353-:53', '--restrict', '--network=lab', '--dns-upstream=127.0.0.1:5300']);
    const merged = mergeConfig(['serve', '--config', 'f.json', '--mtu', '1400', '--hostfwd', 'tcp::8080-:80'], file);
    const c = serve(merged);
    expect(c.network.config.mtu).toBe(1400);
    expect(c.network.forwards.map((r) => r.text)).toEqual(['tcp::8080-:80']);
    expect(c.network.config.restrict).toBe(true);
    expect(c.defaultNetwork).toBe('lab');
    expect(c.dns.upstreams).toHaveLength(1);
    expect(configPath(merged)).toBe('f.json');
  });

  it('--print-config output read back gives the same options', () => {
    const args = mergeConfig(['serve', '--mtu', '1400'], configTokens('{"hostfwd":"tcp::2222-:22","restrict":true}', 'f'));
    const printed = effectiveConfig(args);
    expect(printed).toEqual({ hostfwd: ['tcp::2222-:22'], restrict: true, mtu: '1400' });
    expect(effectiveConfig(mergeConfig(['serve'], configTokens(JSON.stringify(printed), 'g')))).toEqual(printed);
  });

  it('refuses what is not an option or has the wrong type, naming the file and key', () => {
    const bad: [string, RegExp][] = [
      ['[1]', /must be a JSON object/],
      ['{"mtu": [1, 2]}', /mtu takes one value/],
      ['{"restrict": "yes"}', /restrict must be true or false/],
      ['{"colour": 1}', /'colour' is not an option/],
      ['{"config": "other.json"}', /'config' is not an option/],
      ['{"hostfwd": [{}]}', /hostfwd must be a string or a number, or a list of them/],
      ['{"mtu": ', /not JSON/],
    ];
    for (const [text, why] of bad) {
      expect(() => configTokens(text, 'f.json')).toThrow(UsageError);
      expect(() => configTokens(text, 'f.json')).toThrow(why);
    }
    // A bad value is refused by the command-line parser, as if typed.
    expect(() => serve(mergeConfig(['serve'], configTokens('{"mtu": 20}', 'f')))).toThrow(/--mtu/);
  });
});
