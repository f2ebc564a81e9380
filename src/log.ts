// The operational log (start-up, failures, warnings) — separate from the audit log. JSON to
// stderr by default so containers collect it; never carries request bodies or credentials.
import pino, { type Logger } from 'pino';

export function createLogger(level = process.env['AIGATE_LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'aigate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.password', '*.authorization', '*["proxy-authorization"]', 'url'], censor: '[redacted]' },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

export type { Logger };
