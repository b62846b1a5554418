/**
 * Theme colours for canvas drawing, read from VS Code's CSS variables (so light, dark and high-contrast themes all
 * work), and a notification when the theme changes (VS Code swaps the body class and the variables on <html>).
 */

export type Rgb = [number, number, number];

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour → [r, g, b] (alpha dropped), via the canvas colour parser. */
export function parseColor(css: string, fallback: Rgb): Rgb {
  probe ??= document.createElement('canvas').getContext('2d');
  if (!probe || !css.trim()) return fallback;
  probe.fillStyle = '#010203';
  probe.fillStyle = css.trim();
  const v = String(probe.fillStyle);
  if (v === '#010203' && css.trim() !== '#010203') return fallback;
  if (v.startsWith('#')) return [parseInt(v.slice(1, 3), 16), parseInt(v.slice(3, 5), 16), parseInt(v.slice(5, 7), 16)];
  const m = v.match(/rgba?\(([^)]+)\)/);
  if (!m) return fallback;
  const [r, g, b] = m[1].split(',').map((x) => parseFloat(x));
  return [r, g, b];
}

export function cssVar(name: string, fallback = ''): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export const rgb = (c: Rgb, a = 1): string => (a >= 1 ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${a})`);

export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** WCAG relative luminance, 0 (black) to 1 (white). */
export function luminance(c: Rgb): number {
  const f = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}

export type ThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';

export function themeKind(): ThemeKind {
  const b = document.body.classList;
  if (b.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (b.contains('vscode-high-contrast')) return 'high-contrast';
  if (b.contains('vscode-light')) return 'light';
  if (b.contains('vscode-dark')) return 'dark';
  return luminance(parseColor(cssVar('--vscode-editor-background', '#1e1e1e'), [30, 30, 30])) > 0.5 ? 'light' : 'dark';
}

/** Colours and fonts the canvases use. */
export interface ChartTheme {
  kind: ThemeKind;
  background: Rgb;
  foreground: Rgb;
  muted: Rgb;
  /** Empty (zero) matrix cells. */
  empty: Rgb;
  grid: Rgb;
  /** Hue of correct predictions (the diagonal). */
  correct: Rgb;
  /** Hue of confusions (off the diagonal). */
  confused: Rgb;
  focus: Rgb;
  /** Border drawn around things in high-contrast themes, else null. */
  contrastBorder: Rgb | null;
  font: string;
  monoFont: string;
}

export function readChartTheme(): ChartTheme {
  const kind = themeKind();
  const light = kind === 'light' || kind === 'high-contrast-light';
  const background = parseColor(cssVar('--vscode-editor-background'), light ? [255, 255, 255] : [30, 30, 30]);
  const foreground = parseColor(cssVar('--vscode-editor-foreground', cssVar('--vscode-foreground')), light ? [51, 51, 51] : [204, 204, 204]);
  const muted = parseColor(cssVar('--vscode-descriptionForeground'), mix(foreground, background, 0.35));
  const hc = kind === 'high-contrast' || kind === 'high-contrast-light';
  const contrast = cssVar('--vscode-contrastBorder');
  return {
    kind,
    background,
    foreground,
    muted,
    empty: mix(background, foreground, light ? 0.035 : 0.05),
    grid: hc ? mix(background, foreground, 0.5) : mix(background, foreground, light ? 0.12 : 0.16),
    correct: parseColor(cssVar('--vscode-charts-blue'), light ? [0, 95, 184] : [55, 148, 255]),
    confused: parseColor(cssVar('--vscode-charts-red'), light ? [205, 49, 49] : [241, 76, 76]),
    focus: parseColor(cssVar('--vscode-focusBorder'), [0, 127, 212]),
    contrastBorder: hc && contrast ? parseColor(contrast, foreground) : null,
    font: cssVar('--vscode-font-family', 'system-ui, sans-serif'),
    monoFont: cssVar('--vscode-editor-font-family', 'ui-monospace, monospace'),
  };
}

/** Calls `listener` (once per frame at most) when VS Code changes the theme. */
export function onThemeChange(listener: () => void): void {
  let queued = false;
  const fire = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      listener();
    });
  };
  const mo = new MutationObserver(fire);
  mo.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
}
