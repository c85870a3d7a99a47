/** Where in a user's model file something happened. */
export interface SourceLoc {
  file: string;
  line: number;
  col: number;
}

export function formatLoc(loc: SourceLoc | undefined): string {
  return loc ? `${loc.file}:${loc.line}:${loc.col}` : '';
}

/**
 * The one error type kiln raises for anything a user can fix: a code, the place, the message and a
 * hint. The CLI prints `file:line:col: message` and `  hint: ...` and exits non-zero; a stack only
 * with --debug.
 */
export class KilnError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly loc?: SourceLoc,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'KilnError';
  }

  /** The text a user sees: place, message, hint. */
  format(): string {
    const where = this.loc ? `${formatLoc(this.loc)}: ` : '';
    return `${where}${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}
