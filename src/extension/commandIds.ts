/**
 * Every command id, view id and context key of the extension, in one typed place. package.json declares the same
 * ids; test/unit/extension-manifest.test.ts checks that the two agree.
 */

export const COMMANDS = {
  evaluateDataset: 'clipLens.evaluateDataset',
  evaluateLabelFile: 'clipLens.evaluateLabelFile',
  rerun: 'clipLens.rerun',
  cancelEvaluation: 'clipLens.cancelEvaluation',
  openReport: 'clipLens.openReport',
  revealInExplorer: 'clipLens.revealInExplorer',
  clearResult: 'clipLens.clearResult',
  openImage: 'clipLens.openImage',
  openLabelLine: 'clipLens.openLabelLine',
  applyFix: 'clipLens.applyFix',
  applyFixChooseClass: 'clipLens.applyFixChooseClass',
  ignoreSample: 'clipLens.ignoreSample',
  addPrompt: 'clipLens.addPrompt',
  moveToSuggestedClass: 'clipLens.moveToSuggestedClass',
  removeFromSplit: 'clipLens.removeFromSplit',
  undoLastFix: 'clipLens.undoLastFix',
  selectModel: 'clipLens.selectModel',
  installCommitGate: 'clipLens.installCommitGate',
  uninstallCommitGate: 'clipLens.uninstallCommitGate',
  updateBaseline: 'clipLens.updateBaseline',
  showLog: 'clipLens.showLog',
  searchImages: 'clipLens.searchImages',
  showMoreImages: 'clipLens.showMoreImages',
} as const;

export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];

/** viewType of the report panel (reportPanel.ts's REPORT_PANEL_VIEW_TYPE; activation event onWebviewPanel:<this>). */
export const PANEL_VIEW_TYPE = 'clipLens.report';

export const VIEWS = {
  container: 'clipLens',
  datasets: 'clipLens.datasets',
  labelIssues: 'clipLens.labelIssues',
  warnings: 'clipLens.warnings',
} as const;

/** Context keys set with `setContext` (see context.ts). */
export const CONTEXT_KEYS = {
  hasResults: 'clipLens.hasResults',
  hasLabelIssues: 'clipLens.hasLabelIssues',
  hasWarnings: 'clipLens.hasWarnings',
  running: 'clipLens.running',
  /** Paths of images that have a suggested class (explorer "Move to Suggested Class", `resourcePath in ...`). */
  movableImages: 'clipLens.movableImages',
  /** Paths of leaked and duplicated images of class-folder datasets (explorer "Remove from Split…"). */
  removableImages: 'clipLens.removableImages',
  /** A CLIP Lens fix can be undone and is the last file operation (Ctrl+Z runs Undo Last Fix in our views). */
  canUndoFix: 'clipLens.canUndoFix',
} as const;

/** Tree item contextValues (package.json `view/item/context` menus match on them). */
export const TREE_CONTEXT = {
  dataset: 'clipLens.dataset',
  class: 'clipLens.class',
  image: 'clipLens.image',
  /** An image of the Duplicates node that "Remove Image from Split…" is offered for (a leaked or duplicated copy). */
  removableImage: 'clipLens.image.removable',
  issueGroup: 'clipLens.issueGroup',
  /** A label issue fixed by moving the image (class folders). */
  issueMove: 'clipLens.issue.move',
  /** A label issue fixed by changing a label-file line. */
  issueLabel: 'clipLens.issue.label',
  warning: 'clipLens.warning',
  /** A warning whose fix is a prompt for its class (prompt-fails). */
  warningPrompt: 'clipLens.warning.prompt',
} as const;
