// SPKI pins (`sha256/<base64>`), the form HPKP used and `upstreamTls.pins` takes: the SHA-256 of the
// DER SubjectPublicKeyInfo. Same value as
//   openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
// Pinning the key rather than the certificate survives routine re-issuance with the same key.
import { createHash, X509Certificate } from 'node:crypto';

export type PinnableCertificate = X509Certificate | Buffer | string;

/** SHA-256 of the certificate's DER SubjectPublicKeyInfo, as `sha256/<base64>`. Accepts an
 *  X509Certificate, a DER buffer or a PEM string. */
export function spkiPin(cert: PinnableCertificate): string {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256/${createHash('sha256').update(spki).digest('base64')}`;
}
