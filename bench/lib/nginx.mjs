// The two nginx instances of a bench run, both from Debian's package, both one worker:
// - "upstream": the fake vendor API. TLS with SNI (a certificate per vendor name plus a default
//   one), answers JSON only after the whole request body was read (the TLS front reads it into
//   memory and hands it to an internal server on a unix socket, like a real API that parses the
//   body); /v1/early/ answers with `return 200` BEFORE reading the body (issue 7's trap).
// - "proxy": what the guide deploys — TLS-terminating reverse proxy, proxy_pass with
//   proxy_ssl_server_name on and certificate verification, upstream keep-alive, limit_req set
//   high enough never to refuse, streaming (proxy_buffering off) and an access log.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, waitForTls } from './proc.mjs';
import { ANTHROPIC, OPENAI } from './pki.mjs';

export const CHAT_RESPONSE = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1700000000,
  model: 'gpt-4o',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Here is the refactored function with the loop hoisted out.' }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 256, completion_tokens: 14, total_tokens: 270 },
});

function common(dir, name) {
  const tmp = join(dir, `nginx-${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  // Root runs the workers as root too: the default `nobody` cannot enter the 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  return `
${user}
worker_processes 1;
worker_rlimit_nofile 30000;
pid ${join(dir, `nginx-${name}.pid`)};
error_log ${join(dir, `nginx-${name}-error.log`)} warn;
events { worker_connections 12000; }
`;
}

function temps(dir, name) {
  const tmp = join(dir, `nginx-${name}-tmp`);
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${join(tmp, k)};`).join('\n  ');
}

export function upstreamConfig(dir, pki, port) {
  const backend = join(dir, 'nginx-backend.sock');
  const locations = `
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    # The trap: nginx answers here before it has read the body (it discards the body afterwards).
    location /v1/early/ { default_type application/json; return 200 '${CHAT_RESPONSE}'; }
    # Everything else is answered by the backend, i.e. only after the whole body was read here.
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`;
  return `${common(dir, 'upstream')}
http {
  access_log off;
  ${temps(dir, 'upstream')}
  upstream backend { server unix:${backend}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen unix:${backend};
    keepalive_requests 1000000;
    client_max_body_size 16m;
    location / { default_type application/json; return 200 '${CHAT_RESPONSE}'; }
  }
  server {
    listen 127.0.0.1:${port} ssl default_server;
    ssl_certificate ${pki.files.fallbackCert};
    ssl_certificate_key ${pki.files.fallbackKey};
    ${locations}
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${OPENAI};
    ssl_certificate ${pki.files.openaiCert};
    ssl_certificate_key ${pki.files.openaiKey};
    ${locations}
  }
}
`;
}

/** The guide's reverse proxy: /openai/ → https://api.openai.com/v1/, /anthropic/ → https://api.anthropic.com/. */
export function proxyConfig(dir, pki, { nginx: port, upstream: upstreamPort, sse: ssePort }) {
  const headers = (host) => `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${host};
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_ssl_server_name on;
      proxy_ssl_name ${host};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_trusted_certificate ${pki.files.vendorCa};
      proxy_ssl_session_reuse on;`;
  return `${common(dir, 'proxy')}
http {
  access_log ${join(dir, 'nginx-access.log')};
  ${temps(dir, 'proxy')}
  limit_req_zone $binary_remote_addr zone=perdev:10m rate=1000000r/s;
  upstream openai { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }
  upstream anthropic { server 127.0.0.1:${ssePort}; keepalive 64; keepalive_requests 1000000; }
  server {
    # http2: ALPN h2 for S1h2 (nginx 1.22's spelling of \`http2 on\`); HTTP/1.1 clients (wrk) unchanged.
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${pki.files.frontCert};
    ssl_certificate_key ${pki.files.frontKey};
    keepalive_requests 1000000;
    client_max_body_size 8m;
    client_body_buffer_size 1m;   # bodies stay in memory, as in aigate
    limit_req zone=perdev burst=1000000 nodelay;
    proxy_buffering off;          # SSE: each event goes out as it arrives
    proxy_read_timeout 300s;
    location /openai/ {
      proxy_pass https://openai/v1/;${headers(OPENAI)}
    }
    location /anthropic/ {
      proxy_pass https://anthropic/;${headers(ANTHROPIC)}
    }
  }
}
`;
}

export async function startNginx(dir, name, config, port) {
  const file = join(dir, `nginx-${name}.conf`);
  writeFileSync(file, config);
  const entry = startChild('nginx', ['-p', dir, '-e', join(dir, `nginx-${name}-error.log`), '-c', file, '-g', 'daemon off;'], {
    name: `nginx ${name}`,
    // SIGQUIT: graceful stop; the master takes its workers down with it.
    stopSignal: 'SIGQUIT',
  });
  await waitForTls(port, { entry });
  return entry;
}
