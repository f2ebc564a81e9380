#!/usr/bin/env node
// The `aigate` command (SPEC §1). Each subcommand is a thin wrapper over a module in commands/.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import type { Config } from './config/schema.js';

const DEFAULT_CONFIG = 'config/aigate.yaml';
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('aigate')
    .description('Inspection proxy for AI coding tools')
    .version(version)
    .exitOverride()
    .showHelpAfterError();
  let exitCode = 0;

  program
    .command('start')
    .description('run the proxy until SIGTERM/SIGINT')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--init-certs', 'create a development CA and gateway certificate when missing (npm start does this)')
    .option('--workers <n>', 'worker processes sharing the listeners, for multi-core hosts (a number or "auto")', parseWorkers, 1)
    .option('--pid-file <file>', 'write the pid to signal (SIGHUP reopens the audit log and reloads the configuration, SIGTERM drains) once started; removed on exit')
    .action(async (o: { config: string; initCerts?: boolean; workers: number; pidFile?: string }) => {
      const { runStart } = await import('./commands/start.js');
      const { createLogger } = await import('./log.js');
      exitCode = await runStart({ config: o.config, initCerts: Boolean(o.initCerts), logger: createLogger(), stderr: process.stderr, workers: o.workers, pidFile: o.pidFile });
    });

  program
    .command('reload')
    .description('make a running aigate re-read its configuration and the files it names (SIGHUP, through the admin listener)')
    .option('-c, --config <file>', 'the configuration the proxy runs (for listen.admin and its token file)', DEFAULT_CONFIG)
    .option('--admin <url>', 'the admin listener, when not the one in the config (http://host:port)')
    .option('--token-file <file>', 'bearer token for listen.admin.auth (default: its tokenFile; Basic: AIGATE_ADMIN_USER / AIGATE_ADMIN_PASSWORD)')
    .action(async (o: { config: string; admin?: string; tokenFile?: string }) => {
      const { runReload } = await import('./commands/reload.js');
      const config = await loadOrReport(o.config);
      if (config === null) return void (exitCode = 1);
      exitCode = await runReload({ config, configFile: o.config, admin: o.admin, tokenFile: o.tokenFile, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('certs')
    .description('manage the aigate CA and gateway certificate')
    .command('init')
    .description('create a CA (if none exists) and a gateway certificate signed by it')
    .option('--dir <dir>', 'where to write ca.crt, ca.key, proxy.crt, proxy.key', 'certs')
    .option('--host <name>', 'DNS name or IP for the certificate (repeatable)', collect, [] as string[])
    .action(async (o: { dir: string; host: string[] }) => {
      const { runCertsInit } = await import('./commands/certs.js');
      exitCode = runCertsInit({ dir: o.dir, hosts: o.host, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('check')
    .description('validate the configuration and, unless --offline, reach every upstream and allowed host')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--offline', 'validate the configuration only (no DNS, no connections)')
    .option('--json', 'one JSON object per host')
    .action(async (o: { config: string; offline?: boolean; json?: boolean }) => {
      const { runCheck } = await import('./commands/check.js');
      exitCode = await runCheck({ configFile: o.config, offline: Boolean(o.offline), json: Boolean(o.json), stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('scan')
    .description('run the detector over files, directories (recursively, honouring .gitignore) or stdin')
    .argument('[paths...]', 'files or directories; none or - reads stdin')
    .option('-c, --config <file>', `rules, allowValues and actions from this config (default: ${DEFAULT_CONFIG} when present)`)
    .option('--json', 'one JSON object per finding')
    .option('-q, --quiet', 'no summary line on stderr')
    .action(async (paths: string[], o: { config?: string; json?: boolean; quiet?: boolean }) => {
      const { runScan } = await import('./commands/scan.js');
      const { existsSync } = await import('node:fs');
      const file = o.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
      const config = file ? await loadOrReport(file) : undefined;
      if (config === null) return void (exitCode = 2);
      exitCode = await runScan({ config, paths, json: Boolean(o.json), quiet: Boolean(o.quiet), stdout: process.stdout, stderr: process.stderr });
    });

  const fingerprint = program.command('fingerprint').description('protected-code indexes (inspect.fingerprints)');
  fingerprint
    .command('build')
    .description('index source code so prompts that copy it are findings protected-code:<label>')
    .argument('<paths...>', 'repositories, directories or files (.gitignore honoured; vendored and built code skipped)')
    .requiredOption('--label <name>', 'name of the protected code (rule id protected-code:<name>)')
    .requiredOption('--out <file>', 'index file to write')
    .option('--exclude <path>', 'public code whose matches never count (dependencies, generated helpers); repeatable', collect, [] as string[])
    .action(async (paths: string[], o: { label: string; out: string; exclude: string[] }) => {
      const { runFingerprintBuild } = await import('./commands/fingerprint.js');
      exitCode = await runFingerprintBuild({ paths, label: o.label, out: o.out, exclude: o.exclude, stdout: process.stdout, stderr: process.stderr });
    });
  fingerprint
    .command('stats')
    .description('describe a protected-code index')
    .argument('<file>', 'index file')
    .action(async (file: string) => {
      const { runFingerprintStats } = await import('./commands/fingerprint.js');
      exitCode = runFingerprintStats({ file, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('pin')
    .description('print the SPKI pin (sha256/<base64>) of HOST\'s certificate, for upstreamTls.pins')
    .argument('<host[:port]>', 'host to connect to (port 443 by default)')
    .option('-c, --config <file>', 'apply connectTo and upstreamTls.ca from this config')
    .option('-k, --insecure', 'print the pin even if the certificate does not verify')
    .action(async (target: string, o: { config?: string; insecure?: boolean }) => {
      const { runPin } = await import('./commands/pin.js');
      const config = o.config ? await loadOrReport(o.config) : undefined;
      if (config === null) return void (exitCode = 1);
      exitCode = await runPin({ target, config, insecure: Boolean(o.insecure), stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('audit')
    .description('audit trail tools')
    .command('verify')
    .description('check the hash chains of audit files (rotated and .gz ones too); exit 1 names the first break')
    .argument('<files...>', 'audit files, in any order (sorted by rotation suffix: audit.log.2.gz, audit.log.1, audit.log)')
    .option('-c, --config <file>', `audit.chainKey and audit.checkpointSeconds from this config (default: ${DEFAULT_CONFIG} when present)`)
    .option('--allow-unended', 'a chain without chain-end (a killed process) is a warning, not a failure')
    .option('--live', 'the set includes the file a running aigate writes: chains whose last line is recent need no chain-end')
    .option('--keep-order', 'read the files in the order given')
    .action(async (files: string[], o: { config?: string; allowUnended?: boolean; live?: boolean; keepOrder?: boolean }) => {
      const { runAuditVerify } = await import('./commands/audit.js');
      const { existsSync } = await import('node:fs');
      const file = o.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
      const config = file ? await loadOrReport(file) : undefined;
      if (config === null) return void (exitCode = 2);
      exitCode = await runAuditVerify({ files, config, allowUnended: Boolean(o.allowUnended), live: Boolean(o.live), keepOrder: Boolean(o.keepOrder), stdout: process.stdout, stderr: process.stderr });
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander. SPEC §1's
      // statuses: 2 is scan's "usage or read error"; every other command has only 0 and 1.
      if (err.exitCode === 0) return 0;
      const command = argv.slice(2).find((a) => !a.startsWith('-'));
      return command === 'scan' || command === 'audit' ? 2 : 1;
    }
    throw err;
  }
  return exitCode;
}

/** Loads a config for a command that only reads it; prints the one-line error and returns null. */
async function loadOrReport(file: string): Promise<Config | null> {
  const { loadConfig, ConfigError } = await import('./config/load.js');
  try {
    return loadConfig(file);
  } catch (err) {
    process.stderr.write(`aigate: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return null;
  }
}

function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('must be a whole number from 1 to 256, or "auto"');
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`aigate: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
