// How far each builtin rule reads around a keyword occurrence (see ../reach.ts): the larger of what
// its pattern reads (checked against the pattern by test/unit/inspect-reach.test.ts) and what its
// validator reads through ctx.text. A rule missing here, or declaring Infinity, is never decided
// from a window: the fast path sends any body where its keywords occur to the full scan.
//
// Validators that read ctx.text:
// - generic-*: up to 64 characters of identifier before the keyword, then 6 before that for a
//   call's `(`, and up to 81 more for the line start (unquotedContext): 151; after the match, the
//   character that closes an XML value (2) and the blanks that end the line (restOfLineIsEmpty). That
//   last run is unbounded, but a window cut inside it reads as "rest of line empty", which only
//   accepts more: a window can then say "maybe" where the whole text says no, never the reverse.
// - azure-sas-token: 400 characters before `sig=` and 400 after the value for the `sv=` parameter.
// - url-credentials: 32 characters before `://` for the scheme.
// Every other validator reads only the value and the match.
import type { Reach } from '../reach.js';

export const RULE_REACH: Readonly<Record<string, Reach>> = {
  'aws-access-key': { before: 1, after: 21 },
  'aws-secret-access-key': { before: 1, after: 75 },
  'gcp-api-key': { before: 1, after: 40 },
  'gcp-service-account-key': { before: 0, after: 8279 },
  'gcp-oauth-client-secret': { before: 1, after: 36 },
  'azure-storage-key': { before: 0, after: 120 },
  'azure-connection-string': { before: 0, after: 65 },
  'azure-sas-token': { before: 400, after: 711 },
  'azure-ad-client-secret': { before: 5, after: 37 },
  'github-pat': { before: 1, after: 41 },
  'github-oauth-token': { before: 1, after: 41 },
  'github-app-token': { before: 1, after: 41 },
  'github-refresh-token': { before: 1, after: 41 },
  'github-fine-grained-pat': { before: 1, after: 94 },
  'gitlab-pat': { before: 1, after: 84 },
  'gitlab-token': { before: 1, after: 86 },
  'slack-token': { before: 1, after: 261 },
  'slack-webhook': { before: 0, after: 120 },
  'stripe-secret-key': { before: 1, after: 256 },
  'stripe-webhook-secret': { before: 1, after: 71 },
  'openai-api-key': { before: 1, after: 254 },
  'anthropic-api-key': { before: 1, after: 269 },
  'huggingface-token': { before: 1, after: 44 },
  'groq-api-key': { before: 1, after: 57 },
  'xai-api-key': { before: 1, after: 85 },
  'npm-token': { before: 1, after: 41 },
  'pypi-token': { before: 1, after: 428 },
  'sendgrid-api-key': { before: 1, after: 70 },
  'twilio-api-key': { before: 1, after: 35 },
  'twilio-auth-token': { before: 0, after: 94 },
  'mailgun-api-key': { before: 1, after: 110 },
  'vault-token': { before: 1, after: 405 },
  'datadog-api-key': { before: 0, after: 100 },
  'shopify-token': { before: 1, after: 39 },
  'digitalocean-token': { before: 1, after: 72 },
  'private-key': { before: 0, after: 17222 },
  jwt: { before: 1, after: 12297 },
  'url-credentials': { before: 32, after: 198 },
  // `=*` after the token: the bounded part, then a run of `=` as long as it is.
  'http-auth-header': { before: 0, after: 2104, run: '=' },
  'generic-password': { before: 151, after: 379 },
  'generic-api-key': { before: 151, after: 384 },
  'generic-private-key': { before: 151, after: 381 },
  'generic-token': { before: 151, after: 375 },
  'generic-secret': { before: 151, after: 380 },
};
