// The history plots: each node's load, CPU use and memory use over the last
// hour. Filled once from GET /api/history, then one sample per state event;
// charts are redrawn only while their view is shown.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h, syncChildren } from './dom.js';
import { fmtClock } from './format.js';

const HOUR_MS = 3600 * 1000;

// One node's samples as uPlot's columns: time (s), load, CPU %, memory %.
class Series {
  constructor() { this.cols = [[], [], [], []]; }
  get lastT() { const t = this.cols[0]; return t.length ? t[t.length - 1] * 1000 : -Infinity; }
  push(t, load, cpuUtil, memUsed, memTotal) {
    if (t <= this.lastT) return;
    const [ts, ld, cpu, mem] = this.cols;
    ts.push(t / 1000);
    ld.push(load);
    cpu.push(cpuUtil == null ? null : cpuUtil * 100);
    mem.push(memUsed == null || !memTotal ? null : (memUsed / memTotal) * 100);
  }
  trim(nowMs) {
    const ts = this.cols[0];
    let i = 0;
    while (i < ts.length && ts[i] * 1000 < nowMs - HOUR_MS) i++;
    if (i > 0) for (const c of this.cols) c.splice(0, i);
  }
}

export class HistoryView {
  constructor(root) {
    this.series = new Map();  // node name -> Series
    this.charts = new Map();  // node name -> uPlot
    this.shown = false;
    this.grid = h('div', { class: 'history', testid: 'history' });
    root.append(h('p', { class: 'hint', text: 'Last hour, one sample a second. Left axis: load; right axis: CPU and memory use in %.' }), this.grid);
    this.names = [];
    window.addEventListener('resize', () => this.resize());
  }

  seriesOf(name) {
    let s = this.series.get(name);
    if (!s) { s = new Series(); this.series.set(name, s); }
    return s;
  }

  // Replaces what is held with the server's ring, keeping newer samples.
  load(history) {
    for (const [name, samples] of Object.entries(history.nodes || {})) {
      const old = this.series.get(name);
      const s = new Series();
      for (const p of samples) s.push(p.t, p.load, p.cpu_util, p.mem_used, p.mem_total);
      if (old) {
        const [ts, ld, cpu, mem] = old.cols;
        for (let i = 0; i < ts.length; i++) {
          if (ts[i] * 1000 > s.lastT) {
            s.cols[0].push(ts[i]); s.cols[1].push(ld[i]); s.cols[2].push(cpu[i]); s.cols[3].push(mem[i]);
          }
        }
      }
      this.series.set(name, s);
    }
    this.draw();
  }

  update(state) {
    for (const n of state.nodes) {
      const s = this.seriesOf(n.name);
      const l = n.state === 'alive' || n.state === 'suspect' ? n.load : null;
      if (l) s.push(state.time_ms, l.load, l.cpu_util, l.mem_total - l.mem_free, l.mem_total);
      else s.push(state.time_ms, null, null, null, null);
      s.trim(state.time_ms);
    }
    this.names = state.nodes.map((n) => n.name);
    if (this.shown) this.draw();
  }

  show(on) {
    this.shown = on;
    if (on) { this.draw(); this.resize(); }
  }

  box(name) { return this.grid.querySelector(`[data-key="${CSS.escape(name)}"]`); }

  // A chart fills its grid cell (the cell's width is set by the CSS grid).
  width(name) { return Math.max(280, (this.box(name)?.clientWidth || 400) - 8); }

  resize() {
    if (!this.shown) return;
    for (const [name, c] of this.charts) c.setSize({ width: this.width(name), height: 180 });
  }

  draw() {
    if (!this.shown) return;
    const names = this.names.length ? this.names : [...this.series.keys()];
    syncChildren(this.grid, names, (n) => n, (name) =>
      h('div', { class: 'plot', testid: 'history-' + name }, h('h3', { text: name })), () => {});
    for (const name of names) {
      const s = this.seriesOf(name);
      let chart = this.charts.get(name);
      if (!chart) {
        chart = new uPlot(this.options(this.width(name)), s.cols, this.box(name));
        this.charts.set(name, chart);
      } else {
        chart.setData(s.cols);
      }
    }
    for (const [name, chart] of this.charts) {
      if (!names.includes(name)) { chart.destroy(); this.charts.delete(name); }
    }
  }

  options(width) {
    return {
      width,
      height: 180,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, load: { range: (u, min, max) => [0, Math.max(1, max)] }, pct: { range: [0, 100] } },
      axes: [
        // hh:mm, or hh:mm:ss while the plot spans less than ten minutes.
        { values: (u, splits) => splits.map((t) => fmtClock(t * 1000).slice(0, u.scales.x.max - u.scales.x.min < 600 ? 8 : 5)) },
        { scale: 'load', label: 'load', size: 44 },
        { scale: 'pct', side: 1, label: '%', size: 44, grid: { show: false } },
      ],
      series: [
        {},
        { label: 'load', scale: 'load', stroke: '#1f6feb', width: 1.5, value: (u, v) => v == null ? '–' : v.toFixed(2) },
        { label: 'CPU %', scale: 'pct', stroke: '#d9480f', width: 1.5, value: (u, v) => v == null ? '–' : v.toFixed(0) + '%' },
        { label: 'memory %', scale: 'pct', stroke: '#2f9e44', width: 1.5, value: (u, v) => v == null ? '–' : v.toFixed(0) + '%' },
      ],
    };
  }
}
