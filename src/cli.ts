#!/usr/bin/env node
// The `aigate` command (SPEC §1). Each subcommand is a thin wrapper over a module in commands/.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';

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
    .action(async (o: { config: string; initCerts?: boolean }) => {
      const { runStart } = await import('./commands/start.js');
      const { createLogger } = await import('./log.js');
      exitCode = await runStart({ config: o.config, initCerts: Boolean(o.initCerts), logger: createLogger(), stderr: process.stderr });
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

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return exitCode;
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
