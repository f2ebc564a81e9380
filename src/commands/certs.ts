// `aigate certs init [--dir certs] [--host NAME]...` (SPEC §1). The work is in tls/ca.ts; this prints
// what happened and how to make clients trust the CA.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { initCerts, type InitCertsResult } from '../tls/ca.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface CertsInitOptions {
  dir: string;
  /** --host values; empty or absent: localhost, 127.0.0.1, ::1 and the machine's host name. */
  hosts?: readonly string[];
  stdout: Output;
  stderr: Output;
  now?: Date;
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

const day = (d: Date): string => d.toISOString().slice(0, 10);

/** Trust instructions for the CA certificate at `caCertPath` (absolute). Also used by `npm start`. */
export function trustInstructions(caCertPath: string): string[] {
  return [
    `Clients going through aigate must trust its CA, ${caCertPath}:`,
    `  Node tools (Claude Code, Copilot CLI, npm):  export NODE_EXTRA_CA_CERTS=${caCertPath}`,
    `  curl:                                        curl --cacert ${caCertPath} -x http://PROXY:3128 https://…`,
    `  Python (requests/httpx):                     export REQUESTS_CA_BUNDLE / SSL_CERT_FILE to a bundle that includes it`,
    `  VS Code / Cursor: add it to the OS trust store (below) and keep "http.proxyStrictSSL": true —`,
    `    the editor reads the OS store ("http.systemCertificates", on by default); never turn strict SSL off.`,
    `  OS trust store:`,
    `    Debian/Ubuntu:  sudo cp ${caCertPath} /usr/local/share/ca-certificates/aigate.crt && sudo update-ca-certificates`,
    `    RHEL/Fedora:    sudo cp ${caCertPath} /etc/pki/ca-trust/source/anchors/aigate.crt && sudo update-ca-trust`,
    `    macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${caCertPath}`,
    `    Windows:        certutil -addstore -f Root ca.crt   (as administrator)`,
  ];
}

function describe(result: InitCertsResult): string[] {
  const lines: string[] = [];
  const caSubject = new X509Certificate(readFileSync(result.caCertPath)).subject.replace(/\n/g, ', ');
  const verb = (p: string): string => (result.created.includes(p) ? 'created' : 'kept   ');
  lines.push(`  ${verb(result.caCertPath)}  ${shown(result.caCertPath)}   ${caSubject}, valid until ${day(result.caNotAfter)}`);
  lines.push(`  ${verb(result.caKeyPath)}  ${shown(result.caKeyPath)}   private key, mode 0600 — keep it secret`);
  const why = result.renewed && result.renewed !== 'missing' ? ` (re-issued: ${result.renewed})` : '';
  lines.push(`  ${verb(result.certPath)}  ${shown(result.certPath)}   for ${result.hosts.join(', ')}, valid until ${day(result.certNotAfter)}${why}`);
  lines.push(`  ${verb(result.keyPath)}  ${shown(result.keyPath)}   private key, mode 0600`);
  return lines;
}

export function runCertsInit(opts: CertsInitOptions): number {
  let result: InitCertsResult;
  try {
    result = initCerts({ dir: opts.dir, hosts: opts.hosts, now: opts.now });
  } catch (err) {
    opts.stderr.write(`aigate certs init: ${(err as Error).message}\n`);
    return 1;
  }
  const out: string[] = [`aigate certs init: ${shown(result.caCertPath).replace(/ca\.crt$/, '') || '.'}`, ...describe(result), ''];
  out.push(...trustInstructions(result.caCertPath), '');
  out.push(`Anyone holding ${shown(result.caKeyPath)} can impersonate any site to clients that trust this CA.`);
  out.push('proxy.crt is re-issued by this command when it is missing, expiring within 30 days, signed by another CA,');
  out.push('or lacks a --host name (the names it had are kept; delete proxy.crt to start from the --host list alone).');
  opts.stdout.write(`${out.join('\n')}\n`);
  for (const w of result.warnings) opts.stderr.write(`warning: ${w}\n`);
  return 0;
}
