// `aigate start --pid-file FILE`: the pid to signal (logrotate's `postrotate kill -HUP`, a service
// manager's reload) written where a script can find it. Matching the process by its command line
// does not work: it is `node …/dist/cli.js start …`, with no "aigate" before "start".
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export class PidFileError extends Error {}

/** Writes this process's pid atomically (a reader never sees a half-written file); returns the remover. */
export function writePidFile(file: string): () => void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644 });
    renameSync(tmp, file);
  } catch (err) {
    throw new PidFileError(`--pid-file ${file}: ${(err as Error).message}`);
  }
  return () => {
    // Only ours: a newer aigate that took the file over keeps it.
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
}
