import type { Preset } from './types.js';

export const openai: Preset = {
  name: 'openai',
  title: 'OpenAI API (SDK clients, tools configured with an OpenAI API key)',
  sources: ['https://platform.openai.com/docs/api-reference'],
  retrieved: '2026-11-29',
  entries: [{ host: 'api.openai.com', ports: [443], inspect: true, why: 'OpenAI API (responses, chat completions, embeddings) — carries prompts and code' }],
};

export const codex: Preset = {
  name: 'codex',
  title: 'OpenAI Codex CLI and IDE extension',
  sources: ['https://github.com/openai/codex', 'https://developers.openai.com/codex'],
  retrieved: '2026-11-29',
  notes: [
    'Signed in with ChatGPT, Codex sends prompts to chatgpt.com/backend-api/codex; with an API key, to api.openai.com. CONNECT cannot restrict paths, so allowing chatgpt.com allows the ChatGPT web app too (inspected).',
  ],
  entries: [
    { host: 'api.openai.com', ports: [443], inspect: true, why: 'OpenAI API, used when Codex runs with an API key — carries prompts and code' },
    { host: 'chatgpt.com', ports: [443], inspect: true, why: 'Codex backend when signed in with ChatGPT (/backend-api/codex) — carries prompts and code' },
    { host: 'auth.openai.com', ports: [443], inspect: false, why: 'sign-in and token refresh' },
  ],
};
