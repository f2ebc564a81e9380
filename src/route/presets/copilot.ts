import type { Preset } from './types.js';

export const copilot: Preset = {
  name: 'copilot',
  title: 'GitHub Copilot (IDE extensions, Copilot Chat, Copilot CLI)',
  sources: ['https://docs.github.com/en/copilot/reference/copilot-allowlist-reference'],
  retrieved: '2026-11-29',
  notes: [
    'Copilot on GHE.com (data residency) also needs SUBDOMAIN.ghe.com and *.SUBDOMAIN.ghe.com for your tenant: add them to egress.allow.',
    'Enterprise Managed Users sign in through github.com/enterprises/YOUR-ENTERPRISE/*, covered by the github.com entry.',
    'CONNECT cannot restrict paths: allowing github.com for sign-in allows all of github.com, git over HTTPS included. Override with inspect: true in egress.allow to inspect it too.',
    'Telemetry hosts are tunnelled here; Copilot telemetry can include code snippets when the user opted in. Add them to egress.allow with inspect: true to inspect them.',
  ],
  entries: [
    { host: '*.githubcopilot.com', ports: [443], inspect: true, why: 'Copilot API: chat, completions, agents (api.githubcopilot.com and the plan-specific api./proxy./origin-tracker. hosts under individual., business., enterprise.) — carries prompts and code' },
    { host: 'copilot-proxy.githubusercontent.com', ports: [443], inspect: true, why: 'API service for Copilot suggestions (code completions) — carries code' },
    { host: 'origin-tracker.githubusercontent.com', ports: [443], inspect: true, why: 'API service for Copilot suggestions (public-code matching) — receives suggested code' },
    { host: 'telemetry.individual.githubcopilot.com', ports: [443], inspect: false, why: 'Copilot telemetry (Copilot Individual)' },
    { host: 'telemetry.business.githubcopilot.com', ports: [443], inspect: false, why: 'Copilot telemetry (Copilot Business)' },
    { host: 'telemetry.enterprise.githubcopilot.com', ports: [443], inspect: false, why: 'Copilot telemetry (Copilot Enterprise)' },
    { host: 'github.com', ports: [443], inspect: false, why: 'authentication (github.com/login/*; EMU: github.com/enterprises/*) — OAuth, no prompts' },
    { host: 'api.github.com', ports: [443], inspect: false, why: 'user management and Copilot token exchange (/user, /copilot_internal/*) — GitHub tokens, no prompts' },
    { host: 'copilot-telemetry.githubusercontent.com', ports: [443], inspect: false, why: 'telemetry' },
    { host: 'collector.github.com', ports: [443], inspect: false, why: 'analytics telemetry' },
    { host: 'default.exp-tas.com', ports: [443], inspect: false, why: 'telemetry / experiment assignment' },
  ],
};
