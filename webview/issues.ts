/**
 * Likely label errors, most suspicious first, with the same fixes the editor offers as diagnostics: move the image
 * to the suggested class folder (class-folder datasets) or change its label (label files), open the image or the
 * label line, or ignore the sample. Paged (50 at a time) with lazy thumbnails.
 */
import type { PanelUiState, ResolvedStatus } from '../src/core/panelProtocol';
import type { LabelIssue } from '../src/core/report';
import { h, icon, replaceChildren } from './dom';
import { baseName, int, plural } from './format';
import type { HostChannel } from './host';
import type { ReportModel } from './model';
import type { ThumbnailLoader } from './thumbs';

export interface IssuesDeps {
  host: HostChannel;
  thumbs: ThumbnailLoader;
  state: () => PanelUiState;
  save: () => void;
  /** Number of unresolved issues changed (for the tab badge). */
  onCount: (open: number) => void;
  toast: (message: string, kind?: 'info' | 'error') => void;
}

const PAGE = 50;

export class IssuesView {
  readonly element: HTMLElement;
  private readonly list: HTMLElement;
  private readonly more: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly filterInput: HTMLElement & { value: string };
  private readonly showResolved: HTMLElement & { checked: boolean };
  private model: ReportModel | null = null;
  private issues: LabelIssue[] = [];
  private shown = 0;

  constructor(private readonly deps: IssuesDeps) {
    this.filterInput = h('vscode-textfield', { placeholder: 'Filter by path or class', 'aria-label': 'Filter label issues', class: 'filter' }) as HTMLElement & { value: string };
    this.showResolved = h('vscode-checkbox', { label: 'Show fixed and ignored' }) as HTMLElement & { checked: boolean };
    this.summary = h('p', { class: 'muted summary' });
    this.list = h('ol', { class: 'issues', 'aria-label': 'Likely label errors' });
    this.more = h('vscode-button', { secondary: true, class: 'more' });
    this.more.addEventListener('click', () => this.page());
    this.element = h(
      'section',
      { class: 'issues-view' },
      h('div', { class: 'toolbar' }, this.filterInput, this.showResolved),
      this.summary,
      this.list,
      this.more,
    );
    this.filterInput.addEventListener('input', () => {
      this.deps.state().issues.filter = this.filterInput.value;
      this.deps.save();
      this.refresh();
    });
    this.showResolved.addEventListener('change', () => {
      this.deps.state().issues.showResolved = this.showResolved.checked;
      this.deps.save();
      this.refresh();
    });
  }

  setModel(model: ReportModel): void {
    this.model = model;
    const st = this.deps.state().issues;
    this.filterInput.value = st.filter;
    this.showResolved.checked = st.showResolved;
    this.refresh();
  }

  /** Scrolls to (and briefly highlights) the issue of a sample. */
  reveal(path: string): void {
    const idx = this.issues.findIndex((i) => this.pathOf(i) === path);
    if (idx < 0) return;
    while (this.shown <= idx) this.page();
    const el = this.list.querySelector<HTMLElement>(`li[data-path="${CSS.escape(path)}"]`);
    el?.scrollIntoView({ block: 'center' });
    el?.classList.add('flash');
    setTimeout(() => el?.classList.remove('flash'), 1600);
  }

  private pathOf(issue: LabelIssue): string {
    return issue.path ?? this.model?.sample(issue.index)?.path ?? `#${issue.index}`;
  }

  private openCount(): number {
    const resolved = this.deps.state().resolved;
    return (this.model?.report.labelIssues ?? []).filter((i) => !resolved[this.pathOf(i)]).length;
  }

  private refresh(): void {
    const m = this.model;
    if (!m) return;
    const st = this.deps.state();
    const q = st.issues.filter.trim().toLowerCase();
    const all = [...m.report.labelIssues].sort((a, b) => a.rank - b.rank);
    this.issues = all.filter((i) => {
      const path = this.pathOf(i);
      if (!st.issues.showResolved && st.resolved[path]) return false;
      if (m.split && m.sample(i.index)?.split !== m.split) return false;
      return !q || path.toLowerCase().includes(q) || i.given.toLowerCase().includes(q) || i.suggested.toLowerCase().includes(q);
    });
    const open = this.openCount();
    this.deps.onCount(open);
    replaceChildren(
      this.summary,
      all.length === 0
        ? 'No likely label errors: every confident prediction agrees with its label.'
        : `${plural(all.length, 'likely label error')}, most suspicious first (${int(open)} open). Label quality is the probability the model gives the current label; lower is more suspicious.` +
            (this.issues.length < all.length ? ` Showing ${int(this.issues.length)} that match.` : ''),
    );
    this.list.replaceChildren();
    this.shown = 0;
    this.page();
  }

  private page(): void {
    const next = this.issues.slice(this.shown, this.shown + PAGE);
    for (const issue of next) this.list.appendChild(this.item(issue));
    this.shown += next.length;
    const left = this.issues.length - this.shown;
    this.more.hidden = left <= 0;
    this.more.textContent = `Show ${int(Math.min(PAGE, left))} more (${int(left)} left)`;
  }

  private item(issue: LabelIssue): HTMLElement {
    const m = this.model!;
    const path = this.pathOf(issue);
    const sample = m.sample(issue.index);
    const top = sample?.predicted[0];
    const resolved = this.deps.state().resolved[path];
    const li = h('li', { class: `issue${resolved ? ' resolved' : ''}`, 'data-path': path });
    const open = () => this.deps.host.post({ type: 'openImage', path });
    const thumb = this.deps.thumbs.element(path, { onOpen: open, title: `${path}\nClick to open the image` });
    const actions = h('div', { class: 'actions' });
    const body = h(
      'div',
      { class: 'issue-body' },
      h(
        'div',
        { class: 'issue-head' },
        h('span', { class: 'rank', title: 'Rank (1 = most likely wrong)', text: `#${issue.rank}` }),
        h('button', { type: 'button', class: 'link path', title: `Open ${path}`, text: path, onclick: open }),
      ),
      h(
        'div',
        { class: 'issue-text' },
        'Labelled ',
        h('span', { class: 'chip given', text: issue.given }),
        ' but looks like ',
        h('span', { class: 'chip suggested', text: issue.suggested }),
        top && top.class === issue.suggested ? h('span', { class: 'muted', text: ` (${(top.score * 100).toFixed(0)}% confident)` }) : null,
        h('span', { class: 'muted', title: 'Probability the model gives the current label', text: ` · label quality ${issue.score < 0.001 ? '< 0.001' : issue.score.toFixed(3)}` }),
      ),
      actions,
    );
    li.append(thumb, body);
    this.renderActions(actions, issue, path, resolved);
    return li;
  }

  private renderActions(actions: HTMLElement, issue: LabelIssue, path: string, resolved: ResolvedStatus | undefined): void {
    const m = this.model!;
    if (resolved) {
      const undoHint = resolved.action === 'ignored' ? 'Ignored' : 'Fixed';
      replaceChildren(actions, h('span', { class: 'resolved-note', title: undoHint }, icon('check'), resolved.message));
      return;
    }
    const sample = m.sample(issue.index);
    const move = m.fixKind === 'move-to-folder';
    const fixLabel = move ? `Move to folder '${issue.suggested}'` : `Change label to '${issue.suggested}'`;
    const fix = h('vscode-button', { class: 'fix', title: move ? `Move ${baseName(path)} into the ${issue.suggested} folder` : `Rewrite the label on its line of the label file`, text: fixLabel });
    const openImg = h('vscode-button', { secondary: true, text: 'Open image' });
    const openLine = sample?.source ? h('vscode-button', { secondary: true, text: 'Open label line', title: `${sample.source.file}:${sample.source.line}` }) : null;
    const ignore = h('vscode-button', { secondary: true, text: 'Ignore', title: 'Hide this sample from label-issue lists and diagnostics' });
    const busy = (on: boolean) => [fix, ignore].forEach((b) => b.toggleAttribute('disabled', on));
    const act = async (kind: 'fix' | 'ignore') => {
      busy(true);
      const answer =
        kind === 'fix'
          ? await this.deps.host.request((requestId) => ({ type: 'applyFix', requestId, path, toClass: issue.suggested }), 'actionResult')
          : await this.deps.host.request((requestId) => ({ type: 'ignoreSample', requestId, path }), 'actionResult');
      busy(false);
      if (!answer.ok) {
        this.deps.toast(answer.message ?? 'The action failed.', 'error');
        return;
      }
      const message = answer.message ?? (kind === 'fix' ? (move ? `Moved to ${issue.suggested}/` : `Label changed to ${issue.suggested}`) : 'Ignored');
      this.deps.state().resolved[path] = { action: kind === 'fix' ? 'fixed' : 'ignored', message };
      this.deps.save();
      this.deps.toast(message);
      const li = actions.closest('li');
      li?.classList.add('resolved');
      this.renderActions(actions, issue, path, this.deps.state().resolved[path]);
      this.deps.onCount(this.openCount());
    };
    fix.addEventListener('click', () => void act('fix'));
    ignore.addEventListener('click', () => void act('ignore'));
    openImg.addEventListener('click', () => this.deps.host.post({ type: 'openImage', path }));
    openLine?.addEventListener('click', () => this.deps.host.post({ type: 'openLabelLine', path }));
    replaceChildren(actions, fix, openImg, openLine, ignore);
  }
}
