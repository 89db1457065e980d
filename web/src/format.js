// Number and time formatting shared by the dashboard's views.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function fmtBytes(n) {
  n = n == null ? n : Number(n);
  if (n == null || !Number.isFinite(n)) return '–';
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + UNITS[i];
}

// A fraction (0.25) as a percentage ("25%").
export function fmtFraction(f) {
  if (f == null || !Number.isFinite(f)) return '–';
  return (f * 100).toFixed(f < 0.1 ? 1 : 0) + '%';
}

export function fmtNumber(x, digits = 2) {
  x = x == null ? x : Number(x);
  if (x == null || !Number.isFinite(x)) return '–';
  return x.toFixed(digits);
}

export function fmtMs(ms) {
  if (ms == null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 120000) return (ms / 1000).toFixed(1) + ' s';
  return Math.round(ms / 60000) + ' min';
}

export function fmtSeconds(s) {
  if (s == null || !Number.isFinite(s)) return '–';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}` : s.toFixed(1) + ' s';
}

export function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}
