// A detection rule is data: a few lower-case keywords for the pre-filter, one bounded regular
// expression tried at each keyword occurrence, and an optional validator. Nothing here runs a
// regular expression over a whole body: the detector finds keyword hits in one pass and tries each
// rule's pattern sticky at those positions only (see detector.ts for why that keeps scans linear).

/** Where a candidate was found, for validators that need to look at its surroundings. */
export interface MatchContext {
  /** The whole text being scanned. */
  readonly text: string;
  /** Offset of the keyword occurrence that triggered this attempt. */
  readonly keywordAt: number;
  /** The keyword (lower-case) that triggered this attempt. */
  readonly keyword: string;
  /** The regular expression match (sticky, so `match.index` is where the pattern started). */
  readonly match: RegExpExecArray;
  /** Offsets of the secret value inside `text`. */
  readonly start: number;
  readonly end: number;
}

export interface Rule {
  /** Kebab-case, stable: it appears in audit lines, 403 messages and `rules.actions`/`disable`. */
  readonly id: string;
  readonly description: string;
  /**
   * Lower-case literals; the pattern is tried only where one of them occurs (case-insensitively).
   * Every match of `pattern` must begin exactly `offset` characters before a keyword occurrence.
   */
  readonly keywords: readonly string[];
  /**
   * Tried with the sticky flag at `keywordAt - offset`. Every quantifier must be bounded and the
   * pattern must not nest variable repetitions, so one attempt costs at most a few hundred steps.
   * Patterns whose first token repeats (a class run) start with a negative look-behind for that
   * class, so an attempt from inside a run fails at once instead of rescanning the run.
   */
  readonly pattern: RegExp;
  /**
   * 'word': the keyword must start a word (the character before is not a letter or digit, or the
   * keyword starts a camelCase word), checked before the pattern is tried, so a keyword repeated
   * inside one long word costs one comparison per occurrence.
   */
  readonly boundary?: 'word';
  /** Characters between the start of a match and the keyword (0: the match starts at the keyword). */
  readonly offset?: number;
  /**
   * Capture group holding the secret, or several (alternatives): the first that participated.
   * Default: the first group that participated in the match, or the whole match without groups.
   * The group must end the match, or be followed only by a one-character delimiter (`"`, `@`):
   * its offset is found from the end of the match.
   */
  readonly secretGroup?: number | readonly number[];
  /** Only for low-confidence rules: their findings are audited, never blocked or redacted by default. */
  readonly defaultAction?: 'monitor';
  /** Overlapping findings: the higher priority wins (provider 3, structural 2, generic 1). */
  readonly priority?: number;
  /** Leading characters of the value that are a public format marker (`ghp_`), shown when masking. */
  readonly maskPrefix?: number;
  /**
   * Returns false to drop a candidate (bad checksum, placeholder, low entropy, stop word…), true to
   * keep it, or a prefix of `value` when the secret ends earlier than the pattern matched (an
   * unquoted value cut at `;` in a connection string).
   */
  readonly validate?: (value: string, ctx: MatchContext) => boolean | string;
  /**
   * Skip the shared placeholder/example checks (for rules that do their own, e.g. PEM blocks whose
   * long random bodies would hit short marker words by chance).
   */
  readonly ownPlaceholderChecks?: boolean;
  /**
   * 'fixed': a vendor format whose body is random characters (a prefix, an alphabet, a length):
   * the short placeholder words are not applied, since random bodies spell them by chance.
   * 'checksum': `validate` verified a checksum, which no hand-typed placeholder passes: only the
   * documented examples are dismissed (a random body can spell `lorem` or `xxxxx` too).
   */
  readonly format?: 'fixed' | 'checksum';
}
