// The dashboard's side of docs/DASHBOARD.md: JSON requests and the event
// stream. The token travels in the roam_token cookie the server set when the
// page was opened with ?token=, so nothing here reads or sends it.

export class Unauthorized extends Error {
  constructor() { super('unauthorized'); }
}

async function getJson(path) {
  const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

export const getState = () => getJson('/api/state');
export const getHistory = () => getJson('/api/history');
export const getProgress = (gpid) => getJson('/api/progress?gpid=' + encodeURIComponent(gpid));

// Resolves with the reply's figures when the move has ended; rejects with the
// server's one-line error otherwise.
export async function postMigrate(gpid, to) {
  const r = await fetch('/api/migrate', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ gpid, to }),
  });
  if (r.status === 401) throw new Unauthorized();
  let body = {};
  try { body = await r.json(); } catch { /* an empty or non-JSON reply */ }
  if (!r.ok || !body.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body.figures || {};
}

// Calls onState(state) for each `event: state`, onTrouble() when the stream
// breaks (EventSource reconnects by itself). Returns the EventSource.
export function openEvents(onState, onTrouble, onOpen) {
  const es = new EventSource('/api/events');
  es.addEventListener('state', (e) => {
    let s;
    try { s = JSON.parse(e.data); } catch { return; }
    onState(s);
  });
  es.onerror = onTrouble;
  es.onopen = onOpen;
  return es;
}
