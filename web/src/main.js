// The dashboard's entry point: loads the state and history, follows the
// event stream, and hands every state to the four views (tabs chosen by the
// URL's #fragment). A 401 anywhere shows one line saying how to get in.
import './style.css';
import { getState, getHistory, openEvents, Unauthorized } from './api.js';
import { NodeTable } from './node_table.js';
import { HistoryView } from './history.js';
import { ProcessView } from './processes.js';
import { Migmon } from './migmon.js';
import { setText, setAttr } from './dom.js';
import { fmtClock } from './format.js';

const $ = (id) => document.getElementById(id);
const STALE_MS = 3500;

const views = {
  nodes: new NodeTable($('view-nodes')),
  history: new HistoryView($('view-history')),
  processes: new ProcessView($('view-processes')),
  migmon: new Migmon($('view-migmon'), unauthorized),
};
let events = null;
let lastEventAt = 0;

function unauthorized() {
  if (events) { events.close(); events = null; }
  const p = $('auth');
  p.textContent = 'This page needs the token: open the address `roam web` prints (run it as root on a node).';
  p.hidden = false;
  document.querySelector('main').hidden = true;
  setStatus('refused', 'no token');
}

function setStatus(kind, text) {
  const s = $('status');
  setAttr(s, 'class', kind);
  setText(s, text);
}

function showView() {
  const name = location.hash.slice(1) in views ? location.hash.slice(1) : 'nodes';
  for (const [v, view] of Object.entries(views)) {
    $('view-' + v).hidden = v !== name;
    view.show?.(v === name);
  }
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.view === name);
}

const byName = new Intl.Collator('en', { numeric: true });

function onState(state) {
  lastEventAt = Date.now();
  state.nodes.sort((a, b) => byName.compare(a.name, b.name));  // n2 before n10, whatever the server's order
  setText($('cluster'), state.cluster ? `cluster ${state.cluster}, seen from ${state.self}` : '');
  const s = $('status');
  setAttr(s, 'data-time', state.time_ms);
  setStatus('live', `updated ${fmtClock(state.time_ms)}`);
  const t0 = performance.now();
  for (const view of Object.values(views)) view.update(state);
  // How long the views took, for benchmarks (bench/ reads it with a browser).
  setAttr(s, 'data-update-ms', (performance.now() - t0).toFixed(1));
}

// The token came in the URL only to get the cookie: keep it out of the
// address bar, bookmarks and screenshots.
function dropTokenFromUrl() {
  const u = new URL(location.href);
  if (!u.searchParams.has('token')) return;
  u.searchParams.delete('token');
  history.replaceState(null, '', u.pathname + u.search + u.hash);
}

// EventSource cannot see a status: when the stream breaks, ask once whether
// it is the token or the node. EventSource retries by itself after a broken
// connection but gives up after a reply that is not a stream (a roamd
// restarting, a proxy's error page): then a new one is opened.
async function onTrouble() {
  setStatus('stale', 'reconnecting…');
  try {
    await getState();
  } catch (e) {
    if (e instanceof Unauthorized) return unauthorized();
  }
  if (events && events.readyState === EventSource.CLOSED) {
    events = null;
    setTimeout(() => { if (!events) events = openEvents(onState, onTrouble); }, 2000);
  }
}

async function start() {
  window.addEventListener('hashchange', showView);
  showView();
  try {
    onState(await getState());
  } catch (e) {
    if (e instanceof Unauthorized) return unauthorized();
    setStatus('stale', `cannot reach roamd: ${e.message}`);
  }
  dropTokenFromUrl();
  getHistory().then((h) => views.history.load(h)).catch((e) => {
    if (e instanceof Unauthorized) unauthorized();
  });
  events = openEvents(onState, onTrouble);
  setInterval(() => {
    if (events && lastEventAt && Date.now() - lastEventAt > STALE_MS) setStatus('stale', `no update since ${fmtClock(lastEventAt)}`);
  }, 1000);
}

start();
