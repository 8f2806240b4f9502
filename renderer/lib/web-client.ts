// Web mode's StudioBridge: each operation is POST /api/<name> (JSON, binary fields per wire.ts)
// answering a Reply, and events arrive over the WebSocket /api/events. Same interface as the
// desktop app's window.studio, so the views cannot tell the two apart.

import {
  eventNames,
  listenerName,
  methodName,
  operationNames,
  type EventName,
  type OperationName,
  type Reply,
  type StudioBridge,
  type StudioEvent,
} from '../../preload/contract.ts';
import { fromWire, toWire } from '../../preload/wire.ts';

export interface WebClientOptions {
  /** e.g. http://127.0.0.1:5123 */
  origin: string;
  token: string;
  /** Told when the server answers, becomes unreachable or refuses the token. */
  link?: { opened(): void; lost(): void; refused(): void };
}

export function createWebBridge({ origin, token, link }: WebClientOptions): StudioBridge {
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  let socket: WebSocket | null = null;
  let retryMs = 250;

  function connect(): void {
    const url = new URL('/api/events', origin);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('token', token);
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      retryMs = 250;
      link?.opened();
    };
    ws.onmessage = (message: MessageEvent<string>) => {
      const event = fromWire(message.data) as StudioEvent;
      for (const listener of listeners.get(event.name) ?? []) listener(event.payload);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      void probe();
      // The server restarts with a new token, so keep retrying only while someone listens.
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  /** Why the event socket closed: the server gone, or refusing the token (a restart makes a new one). */
  async function probe(): Promise<void> {
    if (!link) return;
    try {
      const response = await fetch(new URL('/api/health', origin), { headers: { authorization: `Bearer ${token}` } });
      if (response.status === 401) link.refused();
      else if (!response.ok) link.lost();
    } catch {
      link.lost();
    }
  }

  async function call(op: OperationName, args: unknown): Promise<Reply<unknown>> {
    let response: Response;
    try {
      response = await fetch(new URL(`/api/${op}`, origin), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: toWire(args ?? {}),
      });
    } catch (err) {
      link?.lost();
      const message = `${op}: the studio server is unreachable (${(err as Error).message})`;
      return { ok: false, error: { code: 'internal', message } };
    }
    if (response.status === 401) link?.refused();
    else link?.opened();
    const text = await response.text();
    try {
      return fromWire(text) as Reply<unknown>;
    } catch {
      return { ok: false, error: { code: 'internal', message: `${op}: HTTP ${response.status}, body is not JSON` } };
    }
  }

  const api: Record<string, unknown> = {};
  for (const op of operationNames) api[methodName(op)] = (args?: unknown) => call(op, args);
  for (const name of eventNames) {
    api[listenerName(name)] = (listener: (payload: unknown) => void) => {
      if (socket === null) connect();
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      set.add(listener);
      return () => set.delete(listener);
    };
  }
  return api as StudioBridge;
}
