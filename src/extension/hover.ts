/**
 * Hovering an image path (or its label) in a label file shows a thumbnail of the image (made by sharp, embedded as a
 * data: URI, never the original file) and CLIP's top-K predictions for it, with the given label marked. Before any
 * evaluation the hover shows the thumbnail alone. Tree items of images get the same thumbnail in their tooltips.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { labelFileKind } from '../core/datasetFormat';
import { resolveEntryPath } from '../core/dataset';
import { readProjectConfig } from '../core/projectConfig';
import type { ThumbnailCache } from '../core/thumbnails';
import type { EvalReport, ReportSample } from '../core/report';
import { fieldsOnLine, labelFileLayout, lineStarts, type LabelFileLayout } from './labelEdits';
import { escapeMarkdown } from './format';
import { formatScore } from './diagnosticsModel';
import type { ReportStore } from './store';
import { samplesOf } from '../core/sampleTable';

const THUMBNAIL_SIZE = 160;

/** Thumbnails for hovers and tooltips; sharp is loaded on first use. */
export class Thumbnails {
  private cache: Promise<ThumbnailCache> | undefined;

  private get(): Promise<ThumbnailCache> {
    this.cache ??= import('../core/thumbnails.js').then((m) => new m.ThumbnailCache({ size: THUMBNAIL_SIZE, format: 'webp', maxEntries: 500 }));
    return this.cache;
  }

  /** Markdown for an image's thumbnail, or a line saying why there is none. */
  async markdown(file: string): Promise<string> {
    try {
      const t = await (await this.get()).get(file);
      return `![${escapeMarkdown(path.basename(file))}](${t.dataUri})`;
    } catch (e) {
      return `_No preview: ${escapeMarkdown((e as Error).message)}_`;
    }
  }

  clear(): void {
    void this.cache?.then((c) => c.clear());
  }
}

/** Markdown table of a sample's top-K predictions, the given label in bold. */
export function predictionsMarkdown(sample: ReportSample, report: EvalReport): string {
  if (sample.error) return `Not evaluated: ${escapeMarkdown(sample.error.message)}`;
  if (sample.predicted.length === 0) return 'Not evaluated.';
  const rows = sample.predicted.map((p, i) => {
    const name = escapeMarkdown(p.class);
    const shown = p.class === sample.label ? `**${name}** (label)` : name;
    return `| ${i + 1} | ${shown} | ${formatScore(p.score)} |`;
  });
  const issue = report.labelIssues.find((i) => samplesOf(report).at(i.index)?.path === sample.path);
  const lines = [`| # | CLIP top-${sample.predicted.length} | p |`, '|--:|:--|--:|', ...rows];
  if (!sample.predicted.some((p) => p.class === sample.label)) lines.push('', `The label **${escapeMarkdown(sample.label)}** is not among the top ${sample.predicted.length}.`);
  if (issue) lines.push('', `$(warning) Likely label error #${issue.rank} of ${report.labelIssues.length}: CLIP suggests **${escapeMarkdown(issue.suggested)}**.`);
  return lines.join('\n');
}

interface ParsedDoc {
  version: number;
  layout: LabelFileLayout | null;
  starts: number[];
}

export class LabelFileHover implements vscode.HoverProvider {
  private readonly parsed = new Map<string, ParsedDoc>();

  constructor(
    private readonly store: ReportStore,
    private readonly thumbnails: Thumbnails,
  ) {}

  private layoutOf(doc: vscode.TextDocument, columns: { imageColumn?: string; labelColumn?: string }): ParsedDoc | null {
    const kind = labelFileKind(doc.uri.fsPath);
    if (!kind) return null;
    const key = doc.uri.toString();
    const cached = this.parsed.get(key);
    if (cached && cached.version === doc.version) return cached;
    const text = doc.getText();
    const entry = { version: doc.version, layout: labelFileLayout(text, kind, columns), starts: lineStarts(text, kind) };
    this.parsed.set(key, entry);
    if (this.parsed.size > 20) this.parsed.delete(this.parsed.keys().next().value as string);
    return entry;
  }

  async provideHover(doc: vscode.TextDocument, position: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    if (doc.uri.scheme !== 'file') return undefined;
    const result = this.store.findByLabelFile(doc.uri.fsPath);
    const root = result?.root ?? path.dirname(doc.uri.fsPath);
    const columns = result ? (result.config.labels ?? {}) : await readProjectConfig(root).then((r) => r.config.labels ?? {}, () => ({}));
    const parsed = this.layoutOf(doc, columns);
    if (!parsed?.layout) return undefined;
    const text = doc.getText();
    const line = position.line + 1;
    const fields = fieldsOnLine(text, parsed.layout, line, parsed.starts);
    if (!fields) return undefined;
    const offset = doc.offsetAt(position);
    const span = [fields.image, fields.label].find((f) => offset >= f.start && offset <= f.end);
    if (!span) return undefined;
    // Image paths are relative to the label file's folder, which is the dataset root here.
    const rel = resolveEntryPath(path.relative(root, path.dirname(doc.uri.fsPath)).split(path.sep).join('/'), fields.image.value);
    if (!('rel' in rel)) return undefined;
    const file = path.join(root, ...rel.rel.split('/'));
    if (!(await fs.promises.stat(file).then((s) => s.isFile(), () => false))) return undefined;
    if (token.isCancellationRequested) return undefined;
    const md = new vscode.MarkdownString(undefined, true);
    md.supportHtml = false;
    md.appendMarkdown(`${await this.thumbnails.markdown(file)}\n\n`);
    md.appendMarkdown(`**${escapeMarkdown(rel.rel)}** · label **${escapeMarkdown(fields.label.value)}**\n\n`);
    const sample = result ? samplesOf(result.report).byPath(rel.rel) : undefined;
    if (result && sample) {
      md.appendMarkdown(predictionsMarkdown(sample, result.report));
      if (result.stale) md.appendMarkdown('\n\n_The dataset changed since this evaluation._');
    } else {
      md.appendMarkdown('_Not evaluated yet: run **CLIP Lens: Evaluate Label File** for CLIP\'s predictions._');
    }
    return new vscode.Hover(md, new vscode.Range(doc.positionAt(span.start), doc.positionAt(span.end)));
  }

  dispose(): void {
    this.parsed.clear();
  }
}
