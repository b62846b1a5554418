/**
 * The commit gate at the top of the report, when the dataset's `.clip-lens.json` sets thresholds: passed or failed,
 * then one row per threshold (failed first) with the measured value, the threshold and the config key it comes
 * from, and for a class a link to its images. The same result the status bar summarises as "gate 2/18".
 */
import type { PanelGate as GateResult } from '../src/core/panelProtocol';

type GateCheck = GateResult['checks'][number];
import { h } from './dom';
import { int, pct } from './format';

export interface GateDeps {
  showImages: (className: string) => void;
}

function value(c: GateCheck, v: number | null): string {
  if (v === null) return '—';
  return c.kind === 'labelIssues' ? int(v) : pct(v);
}

function row(c: GateCheck, deps: GateDeps): HTMLElement {
  const comparison = c.comparison === 'min' ? '≥' : c.comparison === 'max' ? '≤' : '';
  return h(
    'tr',
    { class: c.passed ? 'pass' : 'fail', 'data-check': c.id },
    h('td', { class: 'gate-status', text: c.passed ? '✓ pass' : '✗ fail' }),
    h('td', { class: 'gate-name', text: c.name }),
    h('td', { class: 'gate-actual num', text: c.kind === 'config' ? '' : value(c, c.actual) }),
    h('td', { class: 'gate-required num', text: c.kind === 'config' ? '' : `${comparison} ${value(c, c.required)}` }),
    h(
      'td',
      { class: 'gate-key' },
      h('code', { text: c.configKey }),
      c.kind === 'config' ? h('span', { class: 'muted', text: ` ${c.message}` }) : null,
      // The ratchet (gate.maxDrop): measured against the baseline file.
      c.baseline ? h('span', { class: 'muted gate-baseline', text: ` baseline ${pct(c.baseline.value)} in ${c.baseline.file}, at most ${pct(c.baseline.maxDrop)} lower` }) : null,
      c.class && c.kind !== 'config'
        ? h('button', { type: 'button', class: 'link', text: `Show ${c.class} images`, onclick: () => deps.showImages(c.class!) })
        : null,
    ),
  );
}

/** The gate section, or null when there is no gate. */
export function renderGate(gate: GateResult | null | undefined, deps: GateDeps): HTMLElement | null {
  if (!gate || gate.checks.length === 0) return null;
  const checks = [...gate.checks].sort((a, b) => Number(a.passed) - Number(b.passed));
  const { passed, total, failed } = gate.summary;
  const heading = gate.passed ? `Commit gate passed: ${passed} of ${total} thresholds met` : `Commit gate failed: ${failed} of ${total} thresholds not met`;
  const table = (rows: GateCheck[]) =>
    h(
      'table',
      { class: 'gate-table' },
      h('thead', null, h('tr', null, h('th', { text: '' }), h('th', { text: 'Threshold' }), h('th', { class: 'num', text: 'Measured' }), h('th', { class: 'num', text: 'Required' }), h('th', { text: '.clip-lens.json key' }))),
      h('tbody', null, ...rows.map((c) => row(c, deps))),
    );
  const failedChecks = checks.filter((c) => !c.passed);
  const passedChecks = checks.filter((c) => c.passed);
  // The failed thresholds are always shown; the passed ones behind a toggle.
  const body = [
    failedChecks.length ? table(failedChecks) : null,
    passedChecks.length ? h('details', { class: 'gate-details' }, h('summary', { text: `${passedChecks.length} threshold${passedChecks.length === 1 ? '' : 's'} met` }), table(passedChecks)) : null,
  ];
  return h(
    'section',
    { class: `gate ${gate.passed ? 'passed' : 'failed'}`, 'aria-label': 'Commit gate', 'data-gate': gate.passed ? 'passed' : 'failed' },
    h('h2', { class: 'gate-heading', text: heading }),
    ...body,
  );
}
