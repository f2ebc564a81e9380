// An SSE chat stream the fake vendor holds open after its first event (`x-test-hold`, see
// vendors.ts) until `vendors.release(hold)`: a flow in progress for drain and reload tests.
import { request, type Dispatcher } from 'undici';

export interface HeldStream {
  status: number;
  /** The rest of the stream once released; settled, never rejected: a cut stream is an outcome tests assert. */
  rest: Promise<{ text: string; cut: boolean }>;
}

/** Opens the stream through `gateway` and waits for its first event: then it is open end to end. */
export async function openHeldStream(client: Dispatcher, gateway: string, hold: string): Promise<HeldStream> {
  const res = await request(`${gateway}/openai/chat/completions`, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/json', 'x-test-hold': hold },
    body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
  });
  const it = res.body[Symbol.asyncIterator]();
  await it.next();
  const rest = (async () => {
    let text = '';
    for (let r = await it.next(); !r.done; r = await it.next()) text += String(r.value);
    return { text, cut: false };
  })().catch(() => ({ text: '', cut: true }));
  return { status: res.statusCode, rest };
}
