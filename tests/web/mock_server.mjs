// A stand-in for roamd's dashboard server (docs/DASHBOARD.md), for working
// on the page and its Playwright script without a cluster: serves a built
// dist directory and made-up JSON for 4 nodes whose load wanders.
//   node mock_server.mjs --dist DIR [--port 8099] [--token T] [--nodes 4] [--procs 0]
// --nodes and --procs make a bigger cluster (names n1..nN, extra sleepers).
// POST /mock/kill {"node":"n3"} turns a node dead, as a killed roamd would.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) =>
  (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const DIST = path.resolve(args.dist || 'dist');
const PORT = Number(args.port || 8099);
const TOKEN = args.token || 'mocktoken';
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

const GB = 1e9;
const NODES = Number(args.nodes || 4);
const nodes = Array.from({ length: NODES }, (_, i) => `n${i + 1}`).map((name, i) => ({
  name, address: `10.213.9.${i + 1}:7946`, state: 'alive', is_self: i === 0, since: Date.now(),
  blocked: name === 'n4', draining: false,
  load: { cpus: 2, cpu_share: i === 3 ? 0.5 : 2, speed: 1000, load: 0.1 * i, cpu_util: 0.05, mem_total: 8 * GB,
          mem_free: 7 * GB, mem_pressure: 0, home_procs: 0, guest_procs: 0, accepts_guests: name !== 'n4',
          draining: false, demand: 0, age_ms: 100 },
}));
const procs = [
  { gpid: 'n1:20001', user: 'ana', uid: 1000, home: 'n1', where: 'n2', state: 'R', nmig: 0, lock: false, cantmove: '', cpu_percent: 99, rss_bytes: 9e6, time_seconds: 12, command: 'python3 -c while True: pass', pid: 20001, address: '' },
  { gpid: 'n1:20002', user: 'ana', uid: 1000, home: 'n1', where: 'n1', state: 'S', nmig: 0, lock: false, cantmove: '', cpu_percent: 0, rss_bytes: 1e6, time_seconds: 0, command: 'sleep 300', pid: 20002, address: '' },
  { gpid: 'n2:31', user: 'bo', uid: 1001, home: 'n2', where: 'n2', state: 'S', nmig: 0, lock: false, cantmove: 'shared memory', cpu_percent: 0, rss_bytes: 2e6, time_seconds: 1, command: 'postgres -D /srv', pid: 31, address: '' },
];
for (let i = 0; i < Number(args.procs || 0); i++) {
  const home = `n${(i % NODES) + 1}`;
  procs.push({ gpid: `${home}:${30000 + i}`, user: 'lab', uid: 1002, home, where: `n${((i * 7) % NODES) + 1}`, state: 'S', nmig: i % 3,
    lock: false, cantmove: '', cpu_percent: 0, rss_bytes: 3e6, time_seconds: i, command: `worker --task ${i}`, pid: 30000 + i, address: '' });
}
const history = new Map(nodes.map((n) => [n.name, []]));
const moves = new Map();  // gpid -> progress

function tick() {
  const now = Date.now();
  for (const n of nodes) {
    const l = n.load;
    const running = procs.filter((p) => p.where === n.name && p.state === 'R').length;
    l.load = Math.max(0, l.load * 0.9 + running * 0.1 + (Math.random() - 0.5) * 0.05);
    l.cpu_util = Math.min(1, running / l.cpus + Math.random() * 0.03);
    l.mem_free = Math.max(0, l.mem_free + (Math.random() - 0.5) * 5e7);
    l.guest_procs = procs.filter((p) => p.where === n.name && p.home !== n.name).length;
    l.home_procs = procs.filter((p) => p.home === n.name).length;
    const h = history.get(n.name);
    if (n.state === 'alive') h.push({ t: now, load: l.load, cpu_util: l.cpu_util, mem_used: l.mem_total - l.mem_free, mem_total: l.mem_total });
    if (h.length > 3600) h.shift();
  }
}
for (let i = 600; i > 0; i--) { tick(); for (const h of history.values()) h[h.length - 1].t = Date.now() - i * 1000; }
setInterval(tick, 1000);

function state() {
  const now = Date.now();
  return {
    self: 'n1', cluster: 'mock', time_ms: now,
    nodes: nodes.map((n) => ({ name: n.name, address: n.address, state: n.state, is_self: n.is_self,
      state_age_ms: now - n.since, blocked: n.blocked, draining: n.draining, load: n.state === 'dead' ? null : n.load })),
    processes: procs.filter((p) => nodes.find((n) => n.name === p.home).state === 'alive'),
    unreachable: nodes.filter((n) => n.state === 'dead').map((n) => n.name),
  };
}

function tokenOf(req, url) {
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Bearer ')) return auth.slice(7);
  if (url.searchParams.has('token')) return url.searchParams.get('token');
  const m = /(?:^|;\s*)roam_token=([^;]*)/.exec(req.headers.cookie || '');
  return m ? m[1] : '';
}

function json(res, code, body) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  let s = '';
  for await (const c of req) s += c;
  try { return JSON.parse(s); } catch { return {}; }
}

async function migrate(req, res) {
  const { gpid, to } = await readBody(req);
  const p = procs.find((q) => q.gpid === gpid);
  if (!p) return json(res, 404, { error: `no process ${gpid}` });
  const dest = to === 'home' ? p.home : to;
  const node = nodes.find((n) => n.name === dest);
  if (!node) return json(res, 400, { error: `no node ${to}` });
  if (p.cantmove) return json(res, 409, { error: `${gpid} cannot move: ${p.cantmove}` });
  if (node.state !== 'alive' || node.blocked) return json(res, 409, { error: `${dest} accepts no guests` });
  const start = Date.now();
  const from = p.where;
  const pr = { moving: true, phase: 'pre-copy', rounds: 0, bytes_sent: 0, elapsed_ms: 0, rate_bps: 0, from, to: dest };
  moves.set(gpid, pr);
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 250));
    pr.rounds = Math.min(i + 1, 4); pr.bytes_sent += 2.5e6; pr.elapsed_ms = Date.now() - start;
    pr.rate_bps = pr.bytes_sent / (pr.elapsed_ms / 1000); pr.phase = i < 4 ? 'pre-copy' : 'frozen';
  }
  moves.delete(gpid);
  p.where = dest; p.nmig++;
  json(res, 200, { ok: true, figures: { total_ms: Date.now() - start, frozen_ms: 23, rounds: 4, bytes_sent: pr.bytes_sent, from, to: dest } });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const token = tokenOf(req, url);
  if (token !== TOKEN) {
    res.writeHead(401, { 'Content-Type': 'text/plain; charset=utf-8' });
    return res.end('roam: this needs the dashboard token: open the address `roam web` prints\n');
  }
  const p = url.pathname;
  if (p === '/api/state') return json(res, 200, state());
  if (p === '/api/history') return json(res, 200, { interval_ms: 1000, nodes: Object.fromEntries(history) });
  if (p === '/api/progress') return json(res, 200, moves.get(url.searchParams.get('gpid')) || { moving: false });
  if (p === '/api/migrate' && req.method === 'POST') return migrate(req, res);
  if (p === '/mock/kill' && req.method === 'POST') {
    const { node } = await readBody(req);
    const n = nodes.find((x) => x.name === node);
    if (n) { n.state = 'dead'; n.since = Date.now(); }
    return json(res, n ? 200 : 404, {});
  }
  if (p === '/api/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    const send = () => res.write(`event: state\ndata: ${JSON.stringify(state())}\n\n`);
    send();
    const t = setInterval(send, 1000);
    req.on('close', () => clearInterval(t));
    return;
  }
  const file = path.join(DIST, p === '/' ? 'index.html' : path.normalize(p).replace(/^(\.\.[/\\])+/, ''));
  if (!file.startsWith(path.resolve(DIST)) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    return json(res, 404, { error: 'not found' });
  }
  const headers = { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' };
  if (url.searchParams.has('token')) headers['Set-Cookie'] = `roam_token=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`;
  res.writeHead(200, headers);
  fs.createReadStream(file).pipe(res);
});
server.listen(PORT, '127.0.0.1', () => console.log(`mock dashboard on http://127.0.0.1:${PORT}/?token=${TOKEN}`));
