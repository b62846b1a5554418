/**
 * How a provisional result (EvalReport.provisional: a run still going, or cancelled) is named in every view: the
 * panel's header badge, the status bar, the trees and the diagnostics say the same words.
 */
import type { ProvisionalInfo } from './report';

const count = (n: number) => n.toLocaleString('en-US');

/** "provisional: 1,234 of 10,000 images" while running; "cancelled at 1,234 of 10,000 images" after a cancel. */
export function describeProvisional(p: ProvisionalInfo): string {
  const of = `${count(p.done)} of ${count(p.total)} image${p.total === 1 ? '' : 's'}`;
  return p.cancelled ? `cancelled at ${of}` : `provisional: ${of}`;
}
