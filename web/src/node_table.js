// The node table: one row per node of this roamd's membership view, updated
// from every state event. Rows are data-testid="node-row-NAME" with
// data-state; each cell has a class naming its column.
import { h, setText, setAttr, syncChildren } from './dom.js';
import { fmtBytes, fmtFraction, fmtNumber, fmtMs } from './format.js';

const COLUMNS = [
  ['name', 'Node'], ['state', 'State'], ['blocked', 'Blocked'], ['draining', 'Draining'],
  ['cpus', 'CPUs'], ['load', 'Load'], ['cpu', 'CPU use'], ['mem', 'Memory used / total'],
  ['guests', 'Guests'], ['homes', 'Homes'], ['age', 'Load age'],
];

export class NodeTable {
  constructor(root) {
    this.body = h('tbody');
    root.append(h('table', { class: 'nodes', testid: 'node-table' },
      h('thead', {}, h('tr', {}, ...COLUMNS.map(([k, t]) => h('th', { class: k, text: t })))),
      this.body));
  }

  update(state) {
    syncChildren(this.body, state.nodes, (n) => n.name, (n) => {
      const tr = h('tr', { testid: 'node-row-' + n.name });
      for (const [k] of COLUMNS) tr.append(h('td', { class: k }));
      return tr;
    }, (tr, n) => this.fill(tr, n));
  }

  fill(tr, n) {
    const c = {};
    for (const td of tr.children) c[td.className] = td;
    const l = n.load;
    setAttr(tr, 'data-state', n.state);
    setAttr(tr, 'class', 'st-' + n.state + (n.is_self ? ' self' : ''));
    setText(c.name, n.name + (n.is_self ? ' ●' : ''));
    setAttr(c.name, 'title', n.address + (n.is_self ? ' (this page\'s node)' : ''));
    setText(c.state, n.state);
    setAttr(c.state, 'title', `${n.state} for ${fmtMs(n.state_age_ms)}`);
    setText(c.blocked, n.blocked ? 'blocked' : '');
    setText(c.draining, n.draining ? 'draining' : '');
    setText(c.cpus, l ? `${l.cpus}` + (l.cpu_share !== l.cpus ? ` (share ${fmtNumber(l.cpu_share, 2)})` : '') : '–');
    setText(c.load, l ? fmtNumber(l.load) : '–');
    setText(c.cpu, l ? fmtFraction(l.cpu_util) : '–');
    setText(c.mem, l ? `${fmtBytes(l.mem_total - l.mem_free)} / ${fmtBytes(l.mem_total)}` : '–');
    setText(c.guests, l ? l.guest_procs : '–');
    setText(c.homes, l ? l.home_procs : '–');
    setText(c.age, l ? fmtMs(l.age_ms) : '–');
  }
}
