// The processes per node, as `roam ps --all` lists them, grouped by the node
// each one runs on (WHERE). Rows are data-testid="proc-row-GPID".
import { h, setText, setAttr, syncChildren } from './dom.js';
import { fmtBytes, fmtSeconds } from './format.js';

const COLUMNS = [
  ['gpid', 'GPID'], ['where', 'WHERE'], ['home', 'HOME'], ['nmig', 'NMIG'], ['cantmove', 'CANTMOVE'],
  ['user', 'USER'], ['pstate', 'S'], ['cpu', '%CPU'], ['rss', 'RSS'], ['time', 'TIME'], ['command', 'COMMAND'],
];

// Groups processes by WHERE, in the order of the state's nodes.
export function byNode(state) {
  const groups = new Map(state.nodes.map((n) => [n.name, []]));
  for (const p of state.processes || []) {
    if (!groups.has(p.where)) groups.set(p.where, []);
    groups.get(p.where).push(p);
  }
  for (const list of groups.values()) list.sort((a, b) => a.gpid.localeCompare(b.gpid, 'en', { numeric: true }));
  return groups;
}

export function cantMoveText(p) {
  return p.cantmove || (p.lock ? 'locked' : '');
}

export class ProcessView {
  constructor(root) {
    this.root = root;
    this.summary = h('p', { class: 'hint', testid: 'proc-summary' });
    this.sections = h('div', { class: 'proc-sections' });
    root.append(this.summary, this.sections);
    this.shown = false;
    this.last = null;
  }

  show(on) { this.shown = on; if (on && this.last) this.draw(this.last); }

  update(state) {
    this.last = state;
    if (this.shown) this.draw(state);
  }

  draw(state) {
    const groups = [...byNode(state)];
    const n = (state.processes || []).length;
    const unreachable = state.unreachable || [];
    setText(this.summary, `${n} process${n === 1 ? '' : 'es'} on ${groups.filter(([, l]) => l.length).length} node(s)` +
      (unreachable.length ? `; not answering: ${unreachable.join(', ')}` : ''));
    syncChildren(this.sections, groups, ([name]) => name, ([name]) => {
      const body = h('tbody');
      return h('section', { class: 'procs', testid: 'procs-' + name },
        h('h3'),
        h('table', { class: 'procs' },
          h('thead', {}, h('tr', {}, ...COLUMNS.map(([k, t]) => h('th', { class: k, text: t })))), body));
    }, (sec, [name, list]) => {
      setText(sec.querySelector('h3'), `${name}: ${list.length} process${list.length === 1 ? '' : 'es'}`);
      setAttr(sec, 'hidden', list.length === 0);
      syncChildren(sec.querySelector('tbody'), list, (p) => p.gpid, (p) => {
        const tr = h('tr', { testid: 'proc-row-' + p.gpid });
        for (const [k] of COLUMNS) tr.append(h('td', { class: k }));
        return tr;
      }, fillRow);
    });
  }
}

function fillRow(tr, p) {
  const c = {};
  for (const td of tr.children) c[td.className] = td;
  setText(c.gpid, p.gpid);
  setText(c.where, p.where);
  setText(c.home, p.home);
  setText(c.nmig, p.nmig);
  setText(c.cantmove, cantMoveText(p));
  setText(c.user, p.user || p.uid);
  setText(c.pstate, p.state);
  setText(c.cpu, p.cpu_percent == null ? '–' : p.cpu_percent.toFixed(1));
  setText(c.rss, fmtBytes(p.rss_bytes));
  setText(c.time, fmtSeconds(p.time_seconds));
  setText(c.command, p.command);
  setAttr(c.command, 'title', p.command);
}
