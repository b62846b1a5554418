/**
 * Drawing of the confusion matrix on a 2D canvas, independent of interaction so the interactive view and the PNG
 * export share it. Cells come from one n×n colour bitmap (one pixel per cell) drawn with nearest-neighbour
 * scaling when a cell covers at least one device pixel; below that, visible cells are max-pooled so an isolated
 * confusion never disappears in the overview. Labels, grid lines and numbers appear only when cells are big enough.
 */
import type { MatrixMode } from '../src/core/panelProtocol';
import { pctShort } from './format';
import { luminance, mix, rgb, type ChartTheme, type Rgb } from './theme';

/** Matrix values in display order (row r, column c = classes order[r], order[c]). */
export interface MatrixData {
  n: number;
  /** Display position → class index. */
  order: number[];
  labels: readonly string[];
  /** Counts in display order, row-major. */
  counts: Float64Array;
  /** Row totals (support) in display order. */
  rowTotals: Float64Array;
  /** Colour intensity 0..1 per cell, row-major (see {@link cellIntensity}). */
  intensity: Float32Array;
  mode: MatrixMode;
  maxDiag: number;
  maxOff: number;
}

/** Cell sizes (CSS px) at which details appear. */
export const LABELS_FROM = 9;
export const GRID_FROM = 7;
export const NUMBERS_FROM = 26;
export const MAX_CELL = 96;

/** Builds display-order arrays from a confusion matrix. */
export function buildMatrixData(matrix: readonly (readonly number[])[], labels: readonly string[], order: number[], mode: MatrixMode): MatrixData {
  const n = order.length;
  const counts = new Float64Array(n * n);
  const rowTotals = new Float64Array(n);
  let maxDiag = 0;
  let maxOff = 0;
  for (let r = 0; r < n; r++) {
    const row = matrix[order[r]];
    let total = 0;
    for (let c = 0; c < n; c++) {
      const v = row[order[c]];
      counts[r * n + c] = v;
      total += v;
      if (r === c) maxDiag = Math.max(maxDiag, v);
      else maxOff = Math.max(maxOff, v);
    }
    rowTotals[r] = total;
  }
  const intensity = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const v = counts[r * n + c];
      if (v === 0) continue;
      intensity[r * n + c] = cellIntensity(v, r === c, rowTotals[r], mode, maxDiag, maxOff);
    }
  }
  return { n, order, labels: order.map((i) => labels[i]), counts, rowTotals, intensity, mode, maxDiag, maxOff };
}

/**
 * Colour intensity of a non-empty cell: in 'counts' mode the count relative to the largest cell of its kind
 * (diagonal and off-diagonal are scaled separately, or the diagonal would wash out every error); in 'recall' mode
 * the share of the row. A square root keeps small values visible; never below 0.08 so a single image shows.
 */
export function cellIntensity(v: number, diagonal: boolean, rowTotal: number, mode: MatrixMode, maxDiag: number, maxOff: number): number {
  const raw = mode === 'recall' ? (rowTotal > 0 ? v / rowTotal : 0) : v / Math.max(1, diagonal ? maxDiag : maxOff);
  return Math.max(0.08, Math.sqrt(Math.min(1, raw)));
}

export function cellColor(theme: ChartTheme, t: number, diagonal: boolean): Rgb {
  if (t <= 0) return theme.empty;
  return mix(theme.empty, diagonal ? theme.correct : theme.confused, 0.1 + 0.9 * t);
}

/** One pixel per cell, in display order. */
export function buildBitmap(data: MatrixData, theme: ChartTheme): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, data.n);
  canvas.height = Math.max(1, data.n);
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  const px = img.data;
  const n = data.n;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const col = cellColor(theme, data.intensity[r * n + c], r === c);
      const o = (r * n + c) * 4;
      px[o] = col[0];
      px[o + 1] = col[1];
      px[o + 2] = col[2];
      px[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Where things are, in CSS pixels; offsets in cells. */
export interface MatrixLayout {
  width: number;
  height: number;
  /** Left gutter (row labels) and top gutter (column labels). */
  left: number;
  top: number;
  cell: number;
  offsetX: number;
  offsetY: number;
  labels: boolean;
}

export interface MatrixHighlights {
  hover?: { r: number; c: number } | null;
  selected?: { r: number; c: number } | null;
  cursor?: { r: number; c: number } | null;
}

export function labelFont(theme: ChartTheme, cell: number): string {
  return `${Math.round(Math.max(9, Math.min(12, cell * 0.72)))}px ${theme.font}`;
}

/** Truncates text with an ellipsis to fit `max` pixels in the current font. */
export function ellipsize(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  if (ctx.measureText(text).width <= max) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + '…').width <= max) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + '…';
}

/** Draws the matrix into `ctx`, whose transform maps CSS pixels (scale = dpr). */
export function drawMatrix(
  ctx: CanvasRenderingContext2D,
  dpr: number,
  data: MatrixData,
  bitmap: HTMLCanvasElement,
  layout: MatrixLayout,
  theme: ChartTheme,
  hi: MatrixHighlights = {},
): void {
  const { n } = data;
  const { width, height, left: L, top: T, cell, offsetX, offsetY } = layout;
  ctx.save();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = rgb(theme.background);
  ctx.fillRect(0, 0, width, height);
  if (n === 0) {
    ctx.restore();
    return;
  }
  const c0 = Math.floor(offsetX);
  const r0 = Math.floor(offsetY);
  const visW = Math.min(width - L, (n - offsetX) * cell);
  const visH = Math.min(height - T, (n - offsetY) * cell);
  const c1 = Math.min(n, Math.ceil(offsetX + visW / cell));
  const r1 = Math.min(n, Math.ceil(offsetY + visH / cell));

  // Cells.
  ctx.save();
  ctx.beginPath();
  ctx.rect(L, T, visW, visH);
  ctx.clip();
  if (cell * dpr >= 1) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, offsetX, offsetY, visW / cell, visH / cell, L, T, visW, visH);
  } else {
    drawPooled(ctx, dpr, data, bitmap, theme, layout, visW, visH);
  }

  // Grid.
  if (cell >= GRID_FROM) {
    ctx.strokeStyle = rgb(theme.grid, theme.contrastBorder ? 1 : 0.55);
    ctx.lineWidth = 1 / dpr;
    ctx.beginPath();
    for (let c = c0; c <= c1; c++) {
      const x = Math.round((L + (c - offsetX) * cell) * dpr) / dpr;
      ctx.moveTo(x, T);
      ctx.lineTo(x, T + visH);
    }
    for (let r = r0; r <= r1; r++) {
      const y = Math.round((T + (r - offsetY) * cell) * dpr) / dpr;
      ctx.moveTo(L, y);
      ctx.lineTo(L + visW, y);
    }
    ctx.stroke();
  }

  // Numbers.
  if (cell >= NUMBERS_FROM) {
    ctx.font = `${Math.round(Math.min(13, cell * 0.36))}px ${theme.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let r = r0; r < r1; r++) {
      for (let c = c0; c < c1; c++) {
        const v = data.counts[r * n + c];
        if (v === 0) continue;
        const bg = cellColor(theme, data.intensity[r * n + c], r === c);
        ctx.fillStyle = luminance(bg) > 0.4 ? '#1b1b1b' : '#ffffff';
        const text = data.mode === 'recall' ? pctShort(v / data.rowTotals[r]) : compactCount(v);
        ctx.fillText(text, L + (c - offsetX + 0.5) * cell, T + (r - offsetY + 0.5) * cell + 0.5);
      }
    }
  }

  // Cell outlines: hover, keyboard cursor, selection.
  const outline = (p: { r: number; c: number } | null | undefined, color: string, w: number) => {
    if (!p) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = w;
    const x = L + (p.c - offsetX) * cell;
    const y = T + (p.r - offsetY) * cell;
    const s = Math.max(cell, 3);
    ctx.strokeRect(x - w / 2, y - w / 2, s + w, s + w);
  };
  outline(hi.hover, rgb(theme.foreground, 0.85), 1.5);
  outline(hi.cursor, rgb(theme.focus), 1.5);
  outline(hi.selected, rgb(theme.focus), 2.5);
  ctx.restore();

  // Labels.
  if (layout.labels) {
    ctx.font = labelFont(theme, cell);
    ctx.textBaseline = 'middle';
    const hoverR = hi.hover?.r ?? hi.cursor?.r ?? -1;
    const hoverC = hi.hover?.c ?? hi.cursor?.c ?? -1;
    const selR = hi.selected?.r ?? -1;
    const selC = hi.selected?.c ?? -1;
    const labelColor = (active: boolean) => rgb(active ? theme.foreground : theme.muted);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, T, L, visH);
    ctx.clip();
    ctx.textAlign = 'right';
    for (let r = r0; r < r1; r++) {
      ctx.fillStyle = labelColor(r === hoverR || r === selR);
      ctx.fillText(ellipsize(ctx, data.labels[r], L - 10), L - 6, T + (r - offsetY + 0.5) * cell);
    }
    ctx.restore();
    ctx.save();
    ctx.beginPath();
    ctx.rect(L, 0, visW, T);
    ctx.clip();
    ctx.textAlign = 'left';
    for (let c = c0; c < c1; c++) {
      ctx.save();
      ctx.translate(L + (c - offsetX + 0.5) * cell, T - 6);
      ctx.rotate(-Math.PI / 2);
      ctx.fillStyle = labelColor(c === hoverC || c === selC);
      ctx.fillText(ellipsize(ctx, data.labels[c], T - 10), 0, 0);
      ctx.restore();
    }
    ctx.restore();
  }

  // Frame.
  ctx.strokeStyle = rgb(theme.contrastBorder ?? theme.grid);
  ctx.lineWidth = 1;
  ctx.strokeRect(L - 0.5, T - 0.5, visW + 1, visH + 1);
  ctx.restore();
}

/** Pooled overviews, per bitmap (rebuilt with the data or the theme), for the last geometry drawn. */
const pooledCache = new WeakMap<HTMLCanvasElement, { key: string; canvas: HTMLCanvasElement }>();

/** Overview below one device pixel per cell: each output pixel shows the strongest cell it covers. */
function drawPooled(ctx: CanvasRenderingContext2D, dpr: number, data: MatrixData, bitmap: HTMLCanvasElement, theme: ChartTheme, layout: MatrixLayout, visW: number, visH: number): void {
  const w = Math.max(1, Math.round(visW * dpr));
  const hgt = Math.max(1, Math.round(visH * dpr));
  const key = `${w}x${hgt}@${layout.cell * dpr}+${layout.offsetX},${layout.offsetY}`;
  let cached = pooledCache.get(bitmap);
  if (!cached || cached.key !== key) {
    cached = { key, canvas: poolCells(data, theme, layout, dpr, w, hgt) };
    pooledCache.set(bitmap, cached);
  }
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cached.canvas, Math.round(layout.left * dpr), Math.round(layout.top * dpr));
  ctx.restore();
}

function poolCells(data: MatrixData, theme: ChartTheme, layout: MatrixLayout, dpr: number, w: number, hgt: number): HTMLCanvasElement {
  const { n, intensity, counts } = data;
  const perPx = 1 / (layout.cell * dpr);
  const img = new ImageData(w, hgt);
  const px = img.data;
  const colStart = new Int32Array(w + 1);
  for (let x = 0; x <= w; x++) colStart[x] = Math.min(n, Math.floor(layout.offsetX + x * perPx));
  for (let y = 0; y < hgt; y++) {
    const ra = Math.min(n - 1, Math.floor(layout.offsetY + y * perPx));
    const rb = Math.max(ra + 1, Math.min(n, Math.floor(layout.offsetY + (y + 1) * perPx)));
    for (let x = 0; x < w; x++) {
      const ca = Math.min(n - 1, colStart[x]);
      const cb = Math.max(ca + 1, colStart[x + 1]);
      // The cell with the most images wins (confusions on ties): the diagonal stays visible where it dominates,
      // and an isolated confusion is never averaged away.
      let offN = 0;
      let offT = 0;
      let diagN = 0;
      let diagT = 0;
      for (let r = ra; r < rb; r++) {
        const base = r * n;
        for (let c = ca; c < cb; c++) {
          const v = counts[base + c];
          if (v === 0) continue;
          if (r === c) {
            diagN = v;
            diagT = intensity[base + c];
          } else if (v > offN) {
            offN = v;
            offT = intensity[base + c];
          }
        }
      }
      const col = offN >= diagN ? cellColor(theme, offT, false) : cellColor(theme, diagT, true);
      const o = (y * w + x) * 4;
      px[o] = col[0];
      px[o + 1] = col[1];
      px[o + 2] = col[2];
      px[o + 3] = 255;
    }
  }
  const tmp = document.createElement('canvas');
  tmp.width = w;
  tmp.height = hgt;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  return tmp;
}

export function compactCount(v: number): string {
  if (v < 1000) return String(v);
  if (v < 10000) return `${(v / 1000).toFixed(1)}k`;
  return `${Math.round(v / 1000)}k`;
}
