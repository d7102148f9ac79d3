/**
 * The guest side of bench/tcp.ts's latency and connection-rate figures. It runs inside the
 * benchmark guest (a network namespace: same filesystem, so the same node and tsx), and lives
 * in a subdirectory so that `npm run bench` does not take it for a benchmark.
 *
 *   node --import tsx client.ts rr HOST PORT COUNT    1-byte ping-pong on one TCP connection
 *   node --import tsx client.ts crr HOST PORT COUNT   sequential connections: connect, one
 *                                                     request, its reply, close
 *
 * Prints one JSON line: { count, seconds, usPerOp }. Bounded: exits with status 1 after 60 s.
 */
import net from 'node:net';

const [mode, host = '', portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
setTimeout(() => {
  console.error(`guest-client: ${mode} did not finish in 60 s`);
  process.exit(1);
}, 60_000).unref();

const start = process.hrtime.bigint();
const done = (): void => {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ count, seconds, usPerOp: (seconds * 1e6) / count }));
};

if (mode === 'rr') {
  const s = net.connect({ host, port, noDelay: true });
  const one = Buffer.from([0x2a]);
  let left = count;
  s.on('connect', () => s.write(one));
  s.on('data', (d: Buffer) => {
    left -= d.length;
    if (left <= 0) {
      done();
      s.destroy();
    } else s.write(one);
  });
} else if (mode === 'crr') {
  let left = count;
  const next = (): void => {
    if (left-- === 0) return done();
    const s = net.connect({ host, port, noDelay: true });
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', () => undefined);
    s.on('end', () => {
      s.destroy();
      next();
    });
  };
  next();
} else {
  console.error('usage: client.ts rr|crr HOST PORT COUNT');
  process.exit(2);
}
