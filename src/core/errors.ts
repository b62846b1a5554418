/**
 * Errors the user can act on. Every one names the file (and line, when there is one) it is about,
 * so the CLI can print it on one line and the extension can put it on the right line as a diagnostic.
 */
export class ClipLensError extends Error {
  readonly file?: string;
  readonly line?: number;
  /** Stable machine-readable code, e.g. 'model-missing-file', 'label-file-bad-line'. */
  readonly code: string;

  constructor(code: string, message: string, where: { file?: string; line?: number } = {}) {
    super(ClipLensError.format(message, where));
    this.name = 'ClipLensError';
    this.code = code;
    this.file = where.file;
    this.line = where.line;
  }

  static format(message: string, where: { file?: string; line?: number }): string {
    if (!where.file) return message;
    return where.line !== undefined ? `${where.file}:${where.line}: ${message}` : `${where.file}: ${message}`;
  }
}

/** Thrown when an AbortSignal fires during a long operation. */
export class CancelledError extends Error {
  constructor(message = 'Cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
