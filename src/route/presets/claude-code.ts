import type { Preset } from './types.js';

export const claudeCode: Preset = {
  name: 'claude-code',
  title: 'Claude Code (CLI and IDE extensions)',
  sources: ['https://code.claude.com/docs/en/network-config', 'https://docs.anthropic.com/en/docs/claude-code/corporate-proxy'],
  retrieved: '2026-11-29',
  notes: [
    'Claude Code honours HTTPS_PROXY and NODE_EXTRA_CA_CERTS; it does not support SOCKS proxies.',
    'Installs and auto-updates, plugins and npx-launched MCP servers fetch from other hosts (npm registry, GitHub, the native installer download host); allow those separately if developers need them through the proxy.',
    'sentry.io is shared with every other Sentry customer: tunnelling it lets any client reach any Sentry project.',
    'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 on the clients turns off the telemetry and error-reporting traffic (statsig.anthropic.com, sentry.io).',
  ],
  entries: [
    { host: 'api.anthropic.com', ports: [443], inspect: true, why: 'Claude API (messages, token counting) — carries prompts, code and tool results' },
    { host: 'claude.ai', ports: [443], inspect: false, why: 'sign-in for Claude.ai (Pro/Max/Team/Enterprise) accounts and the WebFetch domain safety check' },
    { host: 'platform.claude.com', ports: [443], inspect: false, why: 'Claude Console sign-in and OAuth token exchange for API-billed accounts (not in the network-config list; used by /login)' },
    { host: 'console.anthropic.com', ports: [443], inspect: false, why: 'former Console domain, still used for sign-in by older Claude Code versions (not in the network-config list)' },
    { host: 'statsig.anthropic.com', ports: [443], inspect: false, why: 'telemetry and feature flags' },
    { host: 'sentry.io', ports: [443], inspect: false, why: 'error reporting' },
  ],
};
