// The certificate files a config names, read and cross-checked once at start-up (and by
// `aigate check`), so a wrong key or a non-CA certificate is reported with its key path instead
// of surfacing as an obscure TLS error on the first connection.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { ConfigError, readConfiguredFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CertificateError, loadIssuer, type Issuer, type PemPair } from './x509.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** When the certificate stops being valid. */
  notAfter: Date;
}

/** `tls.cert` + `tls.key` for the gateway listener. */
export function loadGatewayKeyPair(config: Config, configFile: string): KeyPair {
  const cert = readConfiguredFile(configFile, 'tls.cert', config.tls.cert);
  const key = readConfiguredFile(configFile, 'tls.key', config.tls.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(configFile, 'tls.cert', `${config.tls.cert} is not a PEM certificate (${(err as Error).message})`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(configFile, 'tls.key', `${config.tls.key} is not a readable PEM private key (${(err as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError(configFile, 'tls.key', `${config.tls.key} does not belong to the certificate in ${config.tls.cert}`);
  }
  return { cert, key, notAfter: new Date(x509.validTo) };
}

/** `tls.ca.cert` + `tls.ca.key`, which sign forward-mode interception certificates. */
export function loadInterceptionCa(config: Config, configFile: string): { pair: PemPair; issuer: Issuer } {
  const pair = {
    certPem: readConfiguredFile(configFile, 'tls.ca.cert', config.tls.ca.cert).toString('utf8'),
    keyPem: readConfiguredFile(configFile, 'tls.ca.key', config.tls.ca.key).toString('utf8'),
  };
  try {
    return { pair, issuer: loadIssuer(pair, 'tls.ca') };
  } catch (err) {
    if (err instanceof CertificateError) throw new ConfigError(configFile, 'tls.ca', err.message);
    throw err;
  }
}

/** `upstreamTls.ca` PEM files, trusted for upstreams beside the system store. */
export function loadUpstreamCas(config: Config, configFile: string): string[] {
  return config.upstreamTls.ca.map((file, i) => readConfiguredFile(configFile, `upstreamTls.ca[${i}]`, file).toString('utf8'));
}
