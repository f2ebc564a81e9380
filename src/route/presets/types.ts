// A vendor allowlist kept as reviewable data: every entry says why it is there, and every preset
// says where the list came from and when. Security teams review these files, not code.

export interface PresetEntry {
  /** Exact host, `*.domain` (one or more labels, not the apex) or an IP literal. */
  host: string;
  ports: readonly number[];
  /** true: TLS is terminated and requests are inspected; false: blind tunnel, audited at close. */
  inspect: boolean;
  why: string;
}

export interface Preset {
  name: string;
  title: string;
  /** The vendor documents this list was taken from. */
  sources: readonly string[];
  /** When the list was taken from the sources (YYYY-MM-DD). */
  retrieved: string;
  /** What the list does not cover, and caveats for reviewers. */
  notes?: readonly string[];
  entries: readonly PresetEntry[];
}
