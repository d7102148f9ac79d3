// The real UDP programs of the NAT tests, run by node inside test namespaces (they share the
// filesystem). Each mode prints one JSON line at the end.
//
//   probe HOST PORT            a connected socket sends 3 datagrams to HOST:PORT and reports
//                              {replies, error}: ECONNREFUSED when ICMP port unreachable came back
//   rendezvous ADDR PORT SECS  the hole-punching rendezvous: a client sends "REG NAME PEER"; once
//                              NAME and PEER both registered, each is sent "PEER ADDR PORT" of
//                              the other's endpoint as the rendezvous saw it (its public one)
//   punch ADDR PORT NAME PEER MS
//                              registers at the rendezvous ADDR:PORT from one socket, then sends
//                              "PUNCH NAME" to the peer's public endpoint every 50 ms; a datagram
//                              from the peer (from whatever endpoint) makes that endpoint the
//                              target, and a PUNCH is answered "ACK NAME"; reports {direct: the
//                              peer's datagrams reached us and it acknowledged ours}
//   tcpwho ADDR PORT... SECS   TCP servers that tell each client its endpoint ("ADDR:PORT\n")
//   tcpfrom LOCALPORT ADDR PORT...
//                              connects to each server in turn from LOCALPORT, keeping the earlier
//                              connections open, and reports {seen: what each server saw}
//   udpwho ADDR PORT SECS      a UDP server (IPv4 or IPv6) that answers each datagram with its
//                              sender's endpoint ("ADDR:PORT")
//   udpask ADDR PORT           sends "who" to a udpwho server (up to 5 times, 500 ms apart) and
//                              reports {reply}
//   dnswho ADDR PORT SECS      a DNS server that answers every query for an A record with the
//                              IPv4 address the query came from (NOERROR, one A, TTL 0)
//   tcprendezvous ADDR PORT SECS
//                              the TCP hole-punching rendezvous: a client sends "REG NAME PEER\n"
//                              and keeps the connection open; once NAME and PEER both registered,
//                              each is sent "PEER ADDR PORT\n" of the other's endpoint as seen here
//   tcppunch ADDR PORT NAME PEER MS
//                              TCP hole punching (simultaneous open): registers at the rendezvous
//                              from a port bound with SO_REUSEADDR and keeps that connection, then
//                              connects from the same port to the peer's public endpoint, again
//                              200 ms after each failure, until MS ms have passed; on a connection
//                              both send "HELLO NAME\n"; reports {direct: the peer's HELLO came,
//                              errors: the failed attempts' codes}
/* global process, console, setTimeout, clearTimeout, setInterval, clearInterval, Buffer */
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const done = (o) => {
  console.log(JSON.stringify(o));
  process.exit(0);
};

if (mode === 'probe') {
  const [host, port] = args;
  const s = dgram.createSocket('udp4');
  let replies = 0;
  s.on('message', () => replies++);
  s.on('error', (e) => done({ replies, error: e.code }));
  s.connect(Number(port), host, () => {
    let i = 0;
    const t = setInterval(() => {
      if (i++ < 3) s.send(Buffer.from('probe'));
      else {
        clearInterval(t);
        done({ replies, error: null });
      }
    }, 300);
  });
} else if (mode === 'rendezvous') {
  const [addr, port, secs] = args;
  const s = dgram.createSocket('udp4');
  const seen = new Map(); // name → {address, port, peer}
  s.on('message', (msg, from) => {
    const [verb, name, peer] = msg.toString().split(' ');
    if (verb !== 'REG' || name === undefined || peer === undefined) return;
    seen.set(name, { address: from.address, port: from.port, peer });
    const other = seen.get(peer);
    if (other === undefined || other.peer !== name) return;
    s.send(`PEER ${other.address} ${other.port}`, from.port, from.address);
    s.send(`PEER ${from.address} ${from.port}`, other.port, other.address);
  });
  s.bind(Number(port), addr, () => console.log('READY'));
  setTimeout(() => done({ registered: [...seen.keys()] }), Number(secs) * 1000);
} else if (mode === 'punch') {
  const [addr, port, name, peer, ms] = args;
  const s = dgram.createSocket('udp4');
  let target; // the peer's endpoint we send to
  let peerPublic;
  let heard = 0; // datagrams from the peer
  let acked = false; // the peer said it heard us
  s.on('message', (msg, from) => {
    const text = msg.toString();
    if (from.address === addr && from.port === Number(port)) {
      const [verb, a, p] = text.split(' ');
      if (verb === 'PEER' && target === undefined) target = peerPublic = { address: a, port: Number(p) };
      return;
    }
    if (!text.startsWith(`PUNCH ${peer}`) && !text.startsWith(`ACK ${peer}`)) return;
    heard++;
    if (text.startsWith('ACK')) acked = true;
    target = { address: from.address, port: from.port };
    if (text.startsWith('PUNCH')) s.send(`ACK ${name}`, from.port, from.address);
  });
  s.bind(0, () => {
    const end = Date.now() + Number(ms);
    const t = setInterval(() => {
      if (target === undefined) s.send(`REG ${name} ${peer}`, Number(port), addr);
      else s.send(`PUNCH ${name}`, target.port, target.address);
      if ((heard > 0 && acked) || Date.now() > end) {
        clearInterval(t);
        // A last few ACKs, so the peer hears back even if it started later.
        setTimeout(() => done({ direct: heard > 0 && acked, heard, peerPublic, via: target }), 300);
      }
    }, 50);
  });
} else if (mode === 'tcpwho') {
  const addr = args[0];
  const secs = Number(args.at(-1));
  for (const port of args.slice(1, -1))
    net.createServer((c) => { c.on('error', () => undefined); c.write(`${c.remoteAddress}:${c.remotePort}\n`); }).listen(Number(port), addr);
  console.log('READY');
  setTimeout(() => done({}), secs * 1000);
} else if (mode === 'tcpfrom') {
  const [localPort, addr, ...ports] = args;
  const seen = [];
  const sockets = [];
  for (const port of ports) {
    seen.push(
      await new Promise((resolve) => {
        const c = net.connect({ host: addr, port: Number(port), localPort: Number(localPort) });
        sockets.push(c);
        c.setEncoding('utf8');
        let text = '';
        c.on('data', (d) => { text += d; if (text.includes('\n')) resolve(text.trim()); });
        c.on('error', (e) => resolve(`error ${e.code}`));
      }),
    );
  }
  for (const c of sockets) c.destroy();
  done({ seen });
} else if (mode === 'udpwho') {
  const [addr, port, secs] = args;
  const s = dgram.createSocket(net.isIPv6(addr) ? 'udp6' : 'udp4');
  s.on('message', (_msg, from) => s.send(`${from.address}:${from.port}`, from.port, from.address));
  s.bind(Number(port), addr, () => console.log('READY'));
  setTimeout(() => done({}), Number(secs) * 1000);
} else if (mode === 'udpask') {
  const [addr, port] = args;
  const s = dgram.createSocket(net.isIPv6(addr) ? 'udp6' : 'udp4');
  let tries = 0;
  s.on('message', (msg) => done({ reply: msg.toString() }));
  s.on('error', (e) => done({ reply: null, error: e.code }));
  const ask = () => {
    if (tries++ >= 5) return done({ reply: null });
    s.send('who', Number(port), addr);
    setTimeout(ask, 500);
  };
  ask();
} else if (mode === 'dnswho') {
  const [addr, port, secs] = args;
  const s = dgram.createSocket('udp4');
  s.on('message', (q, from) => {
    // Header (12 bytes), then the question: labels up to a zero octet, QTYPE, QCLASS (RFC 1035 §4.1).
    let end = 12;
    while (end < q.length && q[end] !== 0) end += q[end] + 1;
    end += 5;
    if (q.length < end || q.readUInt16BE(4) !== 1) return;
    const header = Buffer.from([q[0], q[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    // The answer: a pointer to the question's name, A, IN, TTL 0, 4 octets of the sender's address.
    const answer = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, ...from.address.split('.').map(Number)]);
    s.send(Buffer.concat([header, q.subarray(12, end), answer]), from.port, from.address);
  });
  s.bind(Number(port), addr, () => console.log('READY'));
  setTimeout(() => done({}), Number(secs) * 1000);
} else if (mode === 'tcprendezvous') {
  const [addr, port, secs] = args;
  const seen = new Map(); // name → {socket, peer}
  net.createServer((c) => {
    c.on('error', () => undefined);
    c.setEncoding('utf8');
    let text = '';
    c.on('data', (d) => {
      text += d;
      const line = text.split('\n')[0];
      if (!text.includes('\n')) return;
      const [verb, name, peer] = line.split(' ');
      if (verb !== 'REG' || name === undefined || peer === undefined) return c.destroy();
      seen.set(name, { socket: c, peer });
      const other = seen.get(peer);
      if (other === undefined || other.peer !== name) return;
      c.write(`PEER ${other.socket.remoteAddress} ${other.socket.remotePort}\n`);
      other.socket.write(`PEER ${c.remoteAddress} ${c.remotePort}\n`);
    });
  }).listen(Number(port), addr, () => console.log('READY'));
  setTimeout(() => done({ registered: [...seen.keys()] }), Number(secs) * 1000);
} else if (mode === 'tcppunch') {
  const [addr, port, name, peer, ms] = args;
  const end = Date.now() + Number(ms);
  const errors = [];
  // Binding (address 0.0.0.0, any port) sets SO_REUSEADDR, so the punch can share the port.
  const r = net.connect({ host: addr, port: Number(port), localAddress: '0.0.0.0', localPort: 0 });
  r.on('error', (e) => done({ direct: false, errors: [`rendezvous ${e.code}`] }));
  r.setEncoding('utf8');
  let text = '';
  r.on('connect', () => r.write(`REG ${name} ${peer}\n`));
  r.on('data', (d) => {
    text += d;
    const m = /^PEER (\S+) (\d+)\n/.exec(text);
    if (m === null) return;
    r.removeAllListeners('data');
    let won = false;
    const attempt = () => {
      if (Date.now() > end) return done({ direct: false, errors });
      const c = net.connect({ host: m[1], port: Number(m[2]), localAddress: '0.0.0.0', localPort: r.localPort });
      const timer = setTimeout(() => c.destroy(new Error('deadline')), Math.max(0, end - Date.now()));
      let got = '';
      c.setEncoding('utf8');
      c.on('connect', () => c.write(`HELLO ${name}\n`));
      c.on('data', (x) => {
        got += x;
        if (got.startsWith(`HELLO ${peer}\n`) && !won) {
          won = true;
          clearTimeout(timer);
          // The peer may still be reading our HELLO: close once it has closed, or after 500 ms.
          c.end();
          setTimeout(() => done({ direct: true, errors, local: `${c.localAddress}:${c.localPort}`, remote: `${c.remoteAddress}:${c.remotePort}` }), 500);
        }
      });
      c.on('error', (e) => {
        clearTimeout(timer);
        if (won) return;
        errors.push(e.code ?? e.message);
        setTimeout(attempt, 200);
      });
    };
    attempt();
  });
  setTimeout(() => done({ direct: false, errors: [...errors, 'no answer in time'] }), Number(ms) + 5_000);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
