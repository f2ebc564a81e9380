// A scan thread (pool.ts): builds the same inspector as the main thread, from the same config and
// fingerprint key, and inspects the bodies it is sent. Nothing here touches the network or the
// audit log; a body's outcome goes back to the thread that owns its request.
import { parentPort, workerData } from 'node:worker_threads';
import type { InspectConfig } from '../config/schema.js';
import { createInspector, InspectError, type InspectBodyMeta, type InspectOutcome } from './index.js';
import type { ProtectedCodeSource } from './protected.js';

export interface ScanRequest {
  id: number;
  body: Uint8Array;
  meta: InspectBodyMeta;
}

export type ScanReply =
  | { id: number; outcome: InspectOutcome }
  | { id: number; inspectError: { kind: InspectError['kind']; message: string } }
  | { id: number; failure: string };

// The protected-code indexes come loaded (not read again: the same bytes the main thread checked).
const { config, fingerprintKey, protectedCode } = workerData as { config: InspectConfig; fingerprintKey: Uint8Array; protectedCode: ProtectedCodeSource[] };
const inspector = createInspector(config, { fingerprintKey: Buffer.from(fingerprintKey), protectedCode });
const port = parentPort!;

port.on('message', (req: ScanRequest) => {
  const body = Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  inspector.inspectBody(body, req.meta).then(
    (outcome) => {
      const reply: ScanReply = { id: req.id, outcome };
      // The redacted body is this thread's own buffer: moved, not copied.
      const red = outcome.redactedBody;
      port.postMessage(reply, red && red.byteLength === red.buffer.byteLength ? [red.buffer as ArrayBuffer] : []);
    },
    (err: unknown) => {
      const reply: ScanReply =
        err instanceof InspectError
          ? { id: req.id, inspectError: { kind: err.kind, message: err.message } }
          : { id: req.id, failure: err instanceof Error ? err.message : String(err) };
      port.postMessage(reply);
    },
  );
});
