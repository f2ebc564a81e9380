// Classification markers (`inspect.classification`, SPEC §11 "Sensitive code"): a comment tag, an
// SPDX licence reference or a banner line that says how sensitive the code around it is. Each
// marker is compiled into a keyword rule the detector runs like any custom rule — the same
// keyword gate, the same safety analysis of its pattern, the same linear scan — so a marker is
// found in every view a secret is (JSON strings, decoded attachments, WebSocket messages,
// envelopes). A finding's rule id is `classification:<level>`; its action is the level's.
//
// The tagged region, what `redact` replaces: from the start of the marker's line to the end of
// the text it is in (the JSON string value, the attachment, the file). A marker is written at the
// top of a file or a section, and what follows it is what it classifies; there is no closing
// marker (one that could be forgotten or injected to end a region early).
import type { InspectConfig } from '../config/schema.js';
import { compileCustomRule, type CompiledCustomRule } from './custom.js';

export const CLASSIFICATION_PREFIX = 'classification:';

/** The marker text shown for a finding (it is a label, not a secret), at most this long. */
export const MAX_MARKER_SHOWN = 80;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** After a level or a name: not followed by another word character, so `internal` is not `internals`. */
const END = '(?![A-Za-z0-9_-])';

/**
 * The detector rules of `inspect.classification`: the shipped tags for every level, the
 * organisation's SPDX reference and banners when `org` is set, and the configured markers. Throws
 * an Error whose message starts with the offending key path.
 */
export function compileClassification(cfg: InspectConfig['classification']): CompiledCustomRule[] {
  const levels = Object.keys(cfg.levels);
  const known = (level: string, key: string): void => {
    if (!(level in cfg.levels)) {
      throw new Error(`${key}: unknown level "${level}" (inspect.classification.levels has ${levels.length > 0 ? levels.join(', ') : 'none'})`);
    }
  };
  const rules: CompiledCustomRule[] = [];
  const add = (pattern: string, level: string, keywords: string[] | undefined, key: string): void => {
    const rule = compileCustomRule({ id: `${CLASSIFICATION_PREFIX}${level}`, pattern, keywords, action: cfg.levels[level] }, 0, key);
    rules.push({ ...rule, description: `code classified ${level}` });
  };
  if (cfg.tags) {
    for (const level of levels) {
      const l = escapeRegExp(level);
      // `@classification <level>`, `@classification: <level>` (Javadoc / JSDoc style tags).
      add(`(?i)@classification(?:[:=][ \\t]*|[ \\t]+)${l}${END}`, level, ['@classification'], `inspect.classification.levels.${level}`);
      // `aigate: <level>`, `aigate-classification: <level>` (a comment line).
      add(`(?i)aigate(?:-classification)?:[ \\t]*${l}${END}`, level, ['aigate:', 'aigate-classification:'], `inspect.classification.levels.${level}`);
    }
  }
  if (cfg.org !== undefined) {
    const org = escapeRegExp(cfg.org);
    known(cfg.proprietaryLevel, 'inspect.classification.proprietaryLevel');
    add(`(?i)SPDX-License-Identifier:[ \\t]*LicenseRef-${org}-Proprietary${END}`, cfg.proprietaryLevel, ['spdx-license-identifier:'], 'inspect.classification.org');
    // Banner lines: `ACME CONFIDENTIAL`, `Acme Restricted`, one per level.
    for (const level of levels) {
      add(`(?i)${org}[ \\t]+${escapeRegExp(level)}${END}`, level, [`${cfg.org.toLowerCase()} `, `${cfg.org.toLowerCase()}\t`], 'inspect.classification.org');
    }
  }
  cfg.markers.forEach((m, i) => {
    const key = `inspect.classification.markers[${i}]`;
    known(m.level, `${key}.level`);
    // Messages of compileCustomRule name `${key}.pattern` / `${key}.keywords`.
    add(m.pattern, m.level, m.keywords, key);
  });
  return rules;
}
