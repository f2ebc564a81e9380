// The audit log as the proxy opens it: every sink's failures counted and logged, the cluster told
// when the log refuses traffic (audit.onWriteError: deny), and a file or syslog target that
// cannot be opened reported as a config error with its key path.
import type { Logger } from 'pino';
import { AuditLog, MAX_BUFFERED_BYTES } from '../audit/log.js';
import { SyslogError } from '../audit/syslog.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { reportAuditState } from './cluster.js';

/** The audit log with its write failures logged; a file that cannot be opened stops the start. */
export function openAuditLog(config: Config, configFile: string, logger: Logger, metrics: Metrics): AuditLog {
  const { onWriteError } = config.audit;
  if (config.audit.file) metrics.auditFailing.set({ sink: 'file' }, 0);
  if (config.audit.stdout) metrics.auditFailing.set({ sink: 'stdout' }, 0);
  if (config.audit.syslog) metrics.auditFailing.set({ sink: 'syslog' }, 0);
  let log: AuditLog | undefined;
  try {
    log = new AuditLog(config.audit, {
      onError: (err, sink) => {
        metrics.auditWriteErrors.inc({ sink });
        metrics.auditFailing.set({ sink }, 1);
        reportAuditState(log?.refusesTraffic() ?? false);
        const traffic = onWriteError === 'deny' ? 'refused until it works again' : 'continues';
        logger.error({ err, sink, onWriteError, traffic }, 'audit log write failed; its lines are kept in memory and written when it works again');
      },
      onDrop: (sink) => logger.error({ sink, maxBufferedBytes: MAX_BUFFERED_BYTES }, 'audit log failing with too much unwritten: lines are dropped until it works again'),
      onRecovered: (sink, droppedBytes) => {
        metrics.auditFailing.set({ sink }, 0);
        reportAuditState(log?.refusesTraffic() ?? false);
        logger.warn({ sink, droppedBytes }, 'audit log writable again; the lines it kept are written');
      },
    });
    return log;
  } catch (err) {
    if (err instanceof SyslogError) throw new ConfigError(configFile, 'audit.syslog', err.message);
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(configFile, 'audit.file', `cannot open ${config.audit.file} for appending (${code})`);
  }
}
