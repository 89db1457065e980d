// Migmon: every node a box, every process a chip inside the box of the node
// it runs on. Dragging a chip onto another node's box moves the process
// (POST /api/migrate); while it moves, its progress is polled and shown, and
// then the result or the server's error line. Boxes are
// data-testid="node-box-NAME", chips data-testid="proc-GPID", the line
// data-testid="migrate-status" (data-result: moving, ok or error).
import { h, setText, setAttr, syncChildren } from './dom.js';
import { fmtBytes, fmtMs, fmtNumber, fmtFraction } from './format.js';
import { byNode, cantMoveText } from './processes.js';
import { getProgress, postMigrate, Unauthorized } from './api.js';

const GPID_TYPE = 'application/x-roam-gpid';
const LOG_LINES = 8;

export class Migmon {
  constructor(root, onUnauthorized) {
    this.onUnauthorized = onUnauthorized;
    this.procs = new Map();    // gpid -> process, from the last state drawn
    this.moving = new Map();   // gpid -> target node, while its move is under way
    this.dragging = null;      // gpid being dragged: drawing waits for its end
    this.pending = null;       // a state that arrived during a drag
    this.shown = false;
    this.status = h('p', { class: 'migrate-status', testid: 'migrate-status', text: 'Drag a process onto another node to move it there.' });
    this.log = h('ol', { class: 'migrate-log', testid: 'migrate-log' });
    this.boxes = h('div', { class: 'boxes', testid: 'node-boxes' });
    root.append(this.status, this.boxes, this.log);
  }

  show(on) { this.shown = on; if (on && this.pending) this.update(this.pending); }

  update(state) {
    this.pending = state;
    if (!this.shown || this.dragging) return;
    this.pending = null;
    this.procs = new Map((state.processes || []).map((p) => [p.gpid, p]));
    const groups = byNode(state);
    const nodes = new Map(state.nodes.map((n) => [n.name, n]));
    syncChildren(this.boxes, [...groups], ([name]) => name,
      ([name]) => this.makeBox(name),
      (box, [name, list]) => this.fillBox(box, nodes.get(name), name, list));
  }

  makeBox(name) {
    const box = h('div', { class: 'box', testid: 'node-box-' + name },
      h('div', { class: 'box-head' }, h('b', { text: name }), h('span', { class: 'box-state' }), h('span', { class: 'box-load' })),
      h('div', { class: 'chips' }));
    box.addEventListener('dragover', (e) => {
      const p = this.procs.get(this.dragging);
      if (!p || p.where === name || box.dataset.state !== 'alive') return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'move';
      box.classList.add('drop-ok');
    });
    box.addEventListener('dragleave', (e) => {
      if (!box.contains(e.relatedTarget)) box.classList.remove('drop-ok');
    });
    box.addEventListener('drop', (e) => {
      e.preventDefault();
      box.classList.remove('drop-ok');
      const gpid = e.dataTransfer.getData(GPID_TYPE) || this.dragging;
      const p = this.procs.get(gpid);
      if (p && p.where !== name) this.move(p, name);
    });
    return box;
  }

  fillBox(box, node, name, list) {
    const state = node ? node.state : 'unknown';
    const l = node && node.load;
    setAttr(box, 'data-state', state);
    setAttr(box, 'class', `box st-${state}` + (node && node.blocked ? ' blocked' : ''));
    setText(box.querySelector('.box-state'), state + (node && node.blocked ? ', blocked' : '') + (node && node.draining ? ', draining' : ''));
    setText(box.querySelector('.box-load'), l ? `load ${fmtNumber(l.load)} · CPU ${fmtFraction(l.cpu_util)} · ${fmtBytes(l.mem_total - l.mem_free)}` : '');
    syncChildren(box.querySelector('.chips'), list, (p) => p.gpid, (p) => this.makeChip(p), (chip, p) => this.fillChip(chip, p));
  }

  makeChip(p) {
    const chip = h('div', { class: 'proc', testid: 'proc-' + p.gpid, draggable: 'true' },
      h('span', { class: 'pid' }), h('span', { class: 'cmd' }), h('span', { class: 'nmig' }));
    chip.addEventListener('dragstart', (e) => {
      const gpid = chip.dataset.gpid;
      if (chip.getAttribute('draggable') !== 'true') { e.preventDefault(); return; }
      this.dragging = gpid;
      e.dataTransfer.setData(GPID_TYPE, gpid);
      e.dataTransfer.setData('text/plain', gpid);
      e.dataTransfer.effectAllowed = 'move';
      chip.classList.add('dragging');
    });
    chip.addEventListener('dragend', () => {
      chip.classList.remove('dragging');
      this.dragging = null;
      if (this.pending) this.update(this.pending);
    });
    return chip;
  }

  fillChip(chip, p) {
    const why = cantMoveText(p);
    const moving = this.moving.has(p.gpid);
    setAttr(chip, 'data-gpid', p.gpid);
    setAttr(chip, 'draggable', why || moving ? 'false' : 'true');
    setAttr(chip, 'class', 'proc' + (p.where !== p.home ? ' away' : '') + (why ? ' stuck' : '') + (moving ? ' moving' : ''));
    setText(chip.querySelector('.pid'), p.gpid);
    setText(chip.querySelector('.cmd'), p.command);
    setText(chip.querySelector('.nmig'), p.nmig ? `×${p.nmig}` : '');
    setAttr(chip, 'title', `${p.gpid} (${p.user}) home ${p.home}, on ${p.where}, moved ${p.nmig} time(s)` +
      (why ? `; cannot move: ${why}` : '') + `\n${p.command}`);
  }

  setStatus(result, gpid, text) {
    setAttr(this.status, 'data-result', result);
    setAttr(this.status, 'data-gpid', gpid);
    setText(this.status, text);
  }

  addLog(result, text) {
    const li = h('li', { class: result, testid: 'migrate-log-entry', text: `${new Date().toLocaleTimeString('en-GB')} ${text}` });
    this.log.prepend(li);
    while (this.log.children.length > LOG_LINES) this.log.lastElementChild.remove();
  }

  async move(p, toNode) {
    const gpid = p.gpid;
    const from = p.where;
    const to = toNode === p.home ? 'home' : toNode;
    this.moving.set(gpid, toNode);
    this.redrawChip(gpid);
    const what = `${gpid} ${from} → ${toNode}`;
    this.setStatus('moving', gpid, `moving ${what}…`);
    let polling = true;
    const poll = async () => {
      while (polling) {
        try {
          const pr = await getProgress(gpid);
          if (polling && pr.moving) {
            this.setStatus('moving', gpid, `moving ${what}: ${pr.phase}, round ${pr.rounds}, ` +
              `${fmtBytes(pr.bytes_sent)} sent in ${fmtMs(pr.elapsed_ms)}` + (pr.rate_bps ? ` (${fmtBytes(pr.rate_bps)}/s)` : ''));
          }
        } catch { /* the move's own reply says what went wrong */ }
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    poll();
    try {
      const f = await postMigrate(gpid, to);
      const text = `moved ${gpid} ${f.from || from} → ${f.to || toNode} in ${fmtMs(f.total_ms)} ` +
        `(frozen ${fmtMs(f.frozen_ms)}, ${f.rounds ?? '?'} rounds, ${fmtBytes(f.bytes_sent)})`;
      this.setStatus('ok', gpid, text);
      this.addLog('ok', text);
    } catch (e) {
      if (e instanceof Unauthorized) this.onUnauthorized();
      const text = `${gpid} did not move to ${toNode}: ${e.message}`;
      this.setStatus('error', gpid, text);
      this.addLog('error', text);
    } finally {
      polling = false;
      this.moving.delete(gpid);
      this.redrawChip(gpid);
    }
  }

  redrawChip(gpid) {
    const p = this.procs.get(gpid);
    const chip = this.boxes.querySelector(`[data-testid="proc-${CSS.escape(gpid)}"]`);
    if (p && chip) this.fillChip(chip, p);
  }
}
