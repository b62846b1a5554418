/** Number and date formatting for the panel (fixed en-US digits so screenshots and tests are stable). */

export function pct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `${(v * 100).toFixed(digits)}%`;
}

/** Compact percentage for small spaces: "100%", "87%", "3.4%", "0.2%", "0%". */
export function pctShort(v: number): string {
  const p = v * 100;
  if (p === 0) return '0%';
  if (p >= 9.95 || p === 100) return `${Math.round(p)}%`;
  return `${p.toFixed(1)}%`;
}

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function int(v: number): string {
  return INT.format(v);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${int(n)} ${n === 1 ? one : many}`;
}

export function dateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-US', { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** Last path segment of a POSIX or Windows path. */
export function baseName(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? p;
}
