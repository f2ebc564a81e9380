import type { Preset } from './types.js';

export const geminiCodeAssist: Preset = {
  name: 'gemini-code-assist',
  title: 'Gemini Code Assist and Gemini CLI',
  sources: [
    'https://cloud.google.com/gemini/docs/codeassist/network-access',
    'https://github.com/google-gemini/gemini-cli (packages/core/src/code_assist/server.ts)',
  ],
  retrieved: '2026-11-29',
  notes: [
    'Signing in with a Google account also needs accounts.google.com in the browser; that is browser traffic, not the tool’s, and is not in this list.',
    'Google documents restricting Gemini Code Assist to your users’ domains by having an intercepting proxy add the X-GeminiCodeAssist-Allowed-Domains header.',
  ],
  entries: [
    { host: 'cloudcode-pa.googleapis.com', ports: [443], inspect: true, why: 'Gemini Code Assist backend (IDE plugins, Gemini CLI signed in with Google) — carries prompts and code' },
    { host: 'generativelanguage.googleapis.com', ports: [443], inspect: true, why: 'Gemini API, used by Gemini CLI with an API key — carries prompts and code' },
    { host: 'oauth2.googleapis.com', ports: [443], inspect: false, why: 'OAuth token exchange and refresh' },
  ],
};
