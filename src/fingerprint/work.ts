// Units of work done by the fingerprint lookup, counted where a hostile prompt could make it do
// more than a constant amount per character: probes of the tokenizer's name table (crafted names
// whose hashes collide), index lookups and their binary-search steps, hits gathered. The tests
// compare these counts across input sizes to prove the lookup linear without timing it.
export const work = { probes: 0, lookups: 0, steps: 0, hits: 0 };

export function resetWork(): void {
  work.probes = 0;
  work.lookups = 0;
  work.steps = 0;
  work.hits = 0;
}
