// node:http2 as a test client: a session to a listener, and one request on it read whole.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';

export interface H2Answer {
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP/2 session to `url` (https), trusting `ca`; resolves once connected. */
export function openH2(url: string, ca: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { ca });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One request on an h2 session; resolves with the response headers and the whole body. */
export function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let answer: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (answer = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ headers: answer, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}
