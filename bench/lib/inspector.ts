/** A session on a Node process's inspector (its `--inspect` WebSocket URL), for the benchmarks' heap and allocation figures. */
import { WebSocket } from 'ws';

/** A session on the daemon's inspector: `call` sends one method and resolves with its result. */
export async function inspectorSession(url: string): Promise<{ call: (method: string, params?: object) => Promise<Record<string, unknown>>; close: () => void }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((r, j) => ws.once('open', r).once('error', j));
  let id = 0;
  const call = (method: string, params?: object): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const my = ++id;
      const on = (d: Buffer): void => {
        const m = JSON.parse(d.toString()) as { id?: number; result?: Record<string, unknown> };
        if (m.id === my) {
          ws.off('message', on);
          resolve(m.result ?? {});
        }
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  return { call, close: () => ws.close() };
}
