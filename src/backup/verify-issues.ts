/**
 * What verify finds, line by line: every issue counted, the first of each
 * kind kept for the report (a backup with a million bad lines should not
 * hold a million messages), the errors told from the warnings.
 */

export type IssueKind = "unreadable" | "malformed" | "id-mismatch" | "bad-signature" | "unsorted" | "duplicate" | "key-conflict" | "key-change";

export type Issue = {
  kind: IssueKind;
  /** The input's name, as given (or "stdin"). */
  file: string;
  /** Index of the input in the command line. */
  input: number;
  line: number;
  message: string;
  /** Makes the backup corrupt (exit 7); the others are warnings. */
  error: boolean;
};

export class IssueLog {
  /** Kept issues, in the order found. */
  readonly kept: Issue[] = [];
  total = 0;
  errors = 0;
  warnings = 0;
  private readonly keptOf = new Map<IssueKind, number>();
  private readonly found = new Map<IssueKind, number>();

  constructor(
    /** Issues of each kind kept (all are counted). */
    private readonly limit: number,
    private readonly onIssue?: (issue: Issue) => void,
  ) {}

  add(it: Issue): Issue {
    this.total++;
    if (it.error) this.errors++;
    else this.warnings++;
    this.found.set(it.kind, (this.found.get(it.kind) ?? 0) + 1);
    const n = this.keptOf.get(it.kind) ?? 0;
    if (n < this.limit) {
      this.keptOf.set(it.kind, n + 1);
      this.kept.push(it);
    }
    this.onIssue?.(it);
    return it;
  }

  /** The kept issues by input and line. */
  sorted(): Issue[] {
    return this.kept.sort((a, b) => a.input - b.input || a.line - b.line);
  }

  /** Issues found of each kind (kept or not). */
  counts(): Partial<Record<IssueKind, number>> {
    return Object.fromEntries(this.found);
  }
}
