/**
 * The live status page at GET /: one self-contained HTML document (style and script inline,
 * no build step, no CDN, nothing fetched from elsewhere) that reads the API it is served by.
 * It lists networks, sessions, leases, flows and forwards; the event stream (/v1/events)
 * tells it when to read them again, and it reads flows and sessions once a second for byte
 * rates (a small throughput chart per session, drawn on a canvas). Tables sort by a click on
 * a column. The form adds a forward with a same-origin JSON POST, which the API's rules for
 * TCP listeners allow (its Origin is the API's own).
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tslirp</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; user-select: none; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
#state { color: #666; } .err { color: #b00; } canvas { vertical-align: middle; }
form input, form select { margin-right: .4rem; }
</style>
</head>
<body>
<h1>tslirp <span id="state">connecting…</span></h1>
<h2>Networks</h2><table id="networks"></table>
<h2>Sessions</h2><table id="sessions"></table>
<h2>Leases</h2><table id="leases"></table>
<h2>Flows</h2><table id="flows"></table>
<h2>Forwards</h2><table id="forwards"></table>
<form id="add-forward">
  <select name="protocol"><option>tcp</option><option>udp</option></select>
  <input name="hostPort" placeholder="host port" size="9" required>
  <input name="guestAddr" placeholder="guest address or name (optional)" size="28">
  <input name="guestPort" placeholder="guest port" size="9" required>
  <input name="network" placeholder="network" size="12">
  <button type="submit">Add forward</button> <span id="form-result"></span>
</form>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const sortBy = {};
const history = new Map(); // session id -> [{t, from, to}]
const lastFlows = new Map(); // flow id -> {t, from, to}
let rates = new Map();
function fmt(n) { return n < 10000 ? String(n) : n < 1e7 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB'; }
function rate(n) { return fmt(Math.round(n)) + '/s'; }
function render(id, columns, rows) {
  const t = $(id);
  const key = sortBy[id];
  if (key !== undefined) {
    const col = columns[key.col];
    rows = rows.slice().sort((a, b) => { const x = col.sort(a), y = col.sort(b); return (x < y ? -1 : x > y ? 1 : 0) * key.dir; });
  }
  const head = '<tr>' + columns.map((c, i) => '<th data-col="' + i + '">' + c.name + (key && key.col === i ? (key.dir > 0 ? ' ▲' : ' ▼') : '') + '</th>').join('') + '</tr>';
  t.innerHTML = head + rows.map((r) => '<tr>' + columns.map((c) => '<td' + (c.num ? ' class="num"' : '') + '>' + c.cell(r) + '</td>').join('') + '</tr>').join('');
  t.querySelectorAll('th').forEach((th) => th.onclick = () => {
    const col = Number(th.dataset.col);
    sortBy[id] = { col, dir: sortBy[id] && sortBy[id].col === col ? -sortBy[id].dir : 1 };
    refresh();
  });
  t.querySelectorAll('canvas[data-session]').forEach(draw);
}
const esc = (v) => String(v ?? '-').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const col = (name, get, num) => ({ name, cell: (r) => esc(get(r)), sort: get, num });
async function get(path) { const r = await fetch(path, { headers: { accept: 'application/json' } }); if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); }
function draw(c) {
  const h = history.get(c.dataset.session) || [];
  const ctx = c.getContext('2d'); ctx.clearRect(0, 0, c.width, c.height);
  const pts = [];
  for (let i = 1; i < h.length; i++) { const dt = (h[i].t - h[i - 1].t) / 1000 || 1; pts.push([(h[i].from - h[i - 1].from) / dt, (h[i].to - h[i - 1].to) / dt]); }
  const max = Math.max(1, ...pts.flat());
  [['#2a7', 0], ['#27c', 1]].forEach(([color, k]) => {
    ctx.strokeStyle = color; ctx.beginPath();
    pts.forEach((p, i) => { const x = (i / Math.max(1, pts.length - 1)) * c.width, y = c.height - (p[k] / max) * (c.height - 2) - 1; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  });
}
async function refresh() {
  try {
    const [networks, sessions, leases, flows, forwards] = await Promise.all(['/v1/networks', '/v1/sessions', '/v1/leases', '/v1/flows', '/v1/forwards'].map(get));
    const now = Date.now();
    for (const s of sessions) {
      const h = history.get(s.id) || []; h.push({ t: now, from: s.fromGuestBytes, to: s.toGuestBytes }); if (h.length > 60) h.shift(); history.set(s.id, h);
    }
    const next = new Map();
    rates = new Map();
    for (const f of flows) {
      const prev = lastFlows.get(f.id);
      if (prev) { const dt = (now - prev.t) / 1000 || 1; rates.set(f.id, [(f.bytesFromGuest - prev.from) / dt, (f.bytesToGuest - prev.to) / dt]); }
      next.set(f.id, { t: now, from: f.bytesFromGuest, to: f.bytesToGuest });
    }
    lastFlows.clear(); next.forEach((v, k) => lastFlows.set(k, v));
    render('networks', [col('name', (n) => n.name), col('net', (n) => n.config.net), col('gateway', (n) => n.config.gateway), col('sessions', (n) => n.sessions.length, true), col('leases', (n) => n.leases, true), col('tcp flows', (n) => n.flows.tcp, true), col('udp flows', (n) => n.flows.udp, true)], networks);
    render('sessions', [col('id', (s) => s.id), col('network', (s) => s.network), col('link', (s) => s.link.kind + ' ' + s.link.peer), col('from guest', (s) => s.fromGuestBytes, true), col('to guest', (s) => s.toGuestBytes, true),
      { name: 'throughput', cell: (s) => '<canvas width="160" height="28" data-session="' + esc(s.id) + '"></canvas>', sort: (s) => s.fromGuestBytes + s.toGuestBytes }], sessions);
    render('leases', [col('network', (l) => l.network), col('mac', (l) => l.mac), col('address', (l) => l.address), col('hostname', (l) => l.hostname), col('expires', (l) => l.expiresAt)], leases);
    render('flows', [col('network', (f) => f.network), col('session', (f) => f.session), col('proto', (f) => f.protocol), col('state', (f) => f.state), col('guest', (f) => f.guest), col('remote', (f) => f.remote), col('host', (f) => f.host), col('local', (f) => f.local ?? ''),
      col('from guest', (f) => f.bytesFromGuest, true), col('to guest', (f) => f.bytesToGuest, true),
      { name: 'rate in/out', cell: (f) => { const r = rates.get(f.id); return r ? rate(r[0]) + ' / ' + rate(r[1]) : '-'; }, sort: (f) => { const r = rates.get(f.id); return r ? r[0] + r[1] : 0; }, num: true },
      col('age s', (f) => Math.round(f.ageMs / 1000), true)], flows);
    render('forwards', [col('id', (f) => f.id), col('rule', (f) => f.rule), col('bound', (f) => f.bound.join(', ')), col('network', (f) => f.network), col('source', (f) => f.source)], forwards);
    $('state').textContent = 'live, ' + new Date().toLocaleTimeString();
    $('state').className = '';
  } catch (e) { $('state').textContent = String(e.message || e); $('state').className = 'err'; }
}
let pending;
function soon() { if (!pending) pending = setTimeout(() => { pending = undefined; refresh(); }, 100); }
const events = new EventSource('/v1/events');
['session.up', 'session.down', 'lease.granted', 'lease.released', 'flow.opened', 'flow.closed', 'forward.added', 'forward.removed'].forEach((n) => events.addEventListener(n, soon));
setInterval(refresh, 1000);
refresh();
$('add-forward').onsubmit = async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { protocol: f.get('protocol'), hostPort: Number(f.get('hostPort')), guestPort: Number(f.get('guestPort')) };
  if (f.get('guestAddr')) body.guestAddr = f.get('guestAddr');
  if (f.get('network')) body.network = f.get('network');
  const r = await fetch('/v1/forwards', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  $('form-result').textContent = r.ok ? 'added ' + j.id + ' on ' + j.bound.join(', ') : j.error.message;
  $('form-result').className = r.ok ? '' : 'err';
  refresh();
};
</script>
</body>
</html>
`;
