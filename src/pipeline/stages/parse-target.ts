// First stage of every flow: the request target becomes a normalised path (what is routed and
// audited) and a query string (passed on unchanged). A target that cannot be made safe is a 400.
import { BadPathError, normalisePath, splitTarget } from '../../route/router.js';
import { ProxyError } from '../errors.js';
import type { Stage } from '../exchange.js';
import { assertReadableFraming } from './framing.js';

export const parseTargetStage: Stage = (ex) => {
  // Only HTTP/2 brings a CONNECT here (HTTP/1.1's goes to the servers' 'connect' listeners, which
  // answer it themselves); Node would answer it 405 with no request id and no audit line.
  if (ex.req.method === 'CONNECT') throw new ProxyError('bad_request', 'CONNECT over HTTP/2 is not proxied (tunnels are opened with an HTTP/1.1 CONNECT to the forward listener)');
  try {
    const { path, query } = splitTarget(ex.req.url ?? '/');
    ex.flow.path = normalisePath(path);
    ex.rawPath = path;
    ex.query = query;
  } catch (err) {
    if (err instanceof BadPathError) throw new ProxyError('bad_request', `bad request target: ${err.message}`);
    throw err;
  }
  // Node would answer these two itself (400, 417) with an empty body, no request id and no audit
  // line; the servers pass them here instead (requireHostHeader: false, a checkExpectation listener).
  const { req } = ex;
  if (req.headers.host === undefined && req.httpVersion === '1.1') throw new ProxyError('bad_request', 'an HTTP/1.1 request needs a Host header');
  const expect = req.headers.expect;
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') {
    const shown = expect.length > 64 ? `${expect.slice(0, 64)}…` : expect;
    throw new ProxyError('bad_request', `unsupported expectation "Expect: ${shown}" (only 100-continue is)`);
  }
  assertReadableFraming(req);
};
