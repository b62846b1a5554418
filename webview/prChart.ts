/** Precision-recall curve on a small canvas: axes, grid, the no-skill baseline (prevalence) and the step curve. */
import type { PrCurve } from '../src/core/panelProtocol';
import { rgb, type ChartTheme } from './theme';

export const PR_CHART_SIZE = { width: 300, height: 210 };

export function drawPrChart(canvas: HTMLCanvasElement, curve: PrCurve, theme: ChartTheme): void {
  const { width, height } = PR_CHART_SIZE;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = width * dpr;
  canvas.height = height * dpr;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 40, right: 10, top: 10, bottom: 34 };
  const w = width - pad.left - pad.right;
  const hgt = height - pad.top - pad.bottom;
  const X = (r: number) => pad.left + r * w;
  const Y = (p: number) => pad.top + (1 - p) * hgt;

  ctx.font = `11px ${theme.font}`;
  ctx.fillStyle = rgb(theme.muted);
  ctx.strokeStyle = rgb(theme.grid);
  ctx.lineWidth = 1;
  const ticks = ['0', '0.25', '0.5', '0.75', '1'];
  for (let i = 0; i <= 4; i++) {
    const v = i / 4;
    ctx.beginPath();
    ctx.moveTo(X(0), Math.round(Y(v)) + 0.5);
    ctx.lineTo(X(1), Math.round(Y(v)) + 0.5);
    ctx.moveTo(Math.round(X(v)) + 0.5, Y(0));
    ctx.lineTo(Math.round(X(v)) + 0.5, Y(1));
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText(ticks[i], X(0) - 5, Y(v));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText(ticks[i], X(v), Y(0) + 4);
  }
  ctx.textAlign = 'center';
  ctx.fillText('recall', X(0.5), Y(0) + 18);
  ctx.save();
  ctx.translate(10, Y(0.5));
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText('precision', 0, 0);
  ctx.restore();

  // No-skill baseline: precision = prevalence at every recall.
  const prevalence = curve.total ? curve.positives / curve.total : 0;
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = rgb(theme.muted);
  ctx.beginPath();
  ctx.moveTo(X(0), Y(prevalence));
  ctx.lineTo(X(1), Y(prevalence));
  ctx.stroke();
  ctx.setLineDash([]);

  // Step curve: precision holds until the next recall point (as average precision integrates it).
  const { recall, precision } = curve;
  ctx.strokeStyle = rgb(theme.correct);
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(X(recall[0]), Y(precision[0]));
  for (let i = 1; i < recall.length; i++) {
    ctx.lineTo(X(recall[i]), Y(precision[i - 1]));
    ctx.lineTo(X(recall[i]), Y(precision[i]));
  }
  ctx.stroke();
  if (curve.source === 'top-k' && curve.coverage < 1) {
    // Mark where known scores end.
    ctx.setLineDash([2, 3]);
    ctx.strokeStyle = rgb(theme.confused);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(X(curve.coverage), Y(0));
    ctx.lineTo(X(curve.coverage), Y(1));
    ctx.stroke();
    ctx.setLineDash([]);
  }
}
