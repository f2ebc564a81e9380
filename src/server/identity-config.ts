// The identity settings' value checks, free of imports so the config schema can use them.
import { isIP } from 'node:net';

/** Certificate fields a gateway user can be named by (listen.gateway.clientCertificate.userField). */
export const CERT_USER_FIELDS = ['CN', 'emailAddress', 'SAN:email', 'SAN:DNS', 'SAN:URI'] as const;
export type CertUserField = (typeof CERT_USER_FIELDS)[number];

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host). */
export function parseCidr(value: string): { address: string; prefix: number } {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new Error(`"${value}" is not an IP address or CIDR`);
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max };
  const p = value.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) throw new Error(`"${value}": prefix length must be 0-${max}`);
  return { address, prefix: Number(p) };
}

