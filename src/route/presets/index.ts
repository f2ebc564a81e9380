// Vendor presets for `egress.presets` (SPEC §4). Each preset is data in its own file with its
// sources and the date it was taken; this module expands and prints them.
import type { EgressRule } from '../egress.js';
import { claudeCode } from './claude-code.js';
import { copilot } from './copilot.js';
import { cursor } from './cursor.js';
import { geminiCodeAssist } from './gemini.js';
import { codex, openai } from './openai.js';
import type { Preset } from './types.js';

export type { Preset, PresetEntry } from './types.js';

export type PresetCatalog = Readonly<Record<string, Preset>>;

export const PRESETS: PresetCatalog = Object.freeze(
  Object.fromEntries([copilot, claudeCode, cursor, openai, codex, geminiCodeAssist].map((p) => [p.name, p])),
);

export class UnknownPresetError extends Error {
  constructor(
    readonly preset: string,
    readonly known: readonly string[],
    readonly index: number,
  ) {
    super(`unknown preset "${preset}" (known presets: ${known.join(', ')})`);
    this.name = 'UnknownPresetError';
  }
}

export function presetNames(catalog: PresetCatalog = PRESETS): string[] {
  return Object.keys(catalog);
}

/** The egress rules for the named presets, in order. Throws UnknownPresetError naming the known ones. */
export function expandPresets(names: readonly string[], catalog: PresetCatalog = PRESETS): EgressRule[] {
  const rules: EgressRule[] = [];
  names.forEach((name, index) => {
    const preset = Object.hasOwn(catalog, name) ? catalog[name] : undefined;
    if (!preset) throw new UnknownPresetError(name, presetNames(catalog), index);
    for (const e of preset.entries) {
      rules.push({ host: e.host, ports: [...e.ports], inspect: e.inspect, source: `preset ${preset.name}`, why: e.why });
    }
  });
  return rules;
}

/** Human-readable expansion, one line per host, for `aigate check` and reviewers. */
export function renderPresets(names: readonly string[], catalog: PresetCatalog = PRESETS): string[] {
  expandPresets(names, catalog); // validate names first
  const lines: string[] = [];
  for (const name of names) {
    const p = catalog[name]!;
    lines.push(`preset ${p.name}: ${p.title}`);
    lines.push(`  source: ${p.sources.join(', ')} (taken ${p.retrieved})`);
    const width = Math.max(...p.entries.map((e) => `${e.host}:${e.ports.join(',')}`.length));
    for (const e of p.entries) {
      const target = `${e.host}:${e.ports.join(',')}`.padEnd(width);
      lines.push(`  ${e.inspect ? 'inspect' : 'tunnel '}  ${target}  ${e.why}`);
    }
    for (const n of p.notes ?? []) lines.push(`  note: ${n}`);
  }
  return lines;
}
