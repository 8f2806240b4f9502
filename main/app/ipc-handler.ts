// The body of every IPC handler, kept free of Electron imports so it can be unit-tested: refuse
// a sender that is not the studio's own top-level page, validate the argument against the
// contract, run the operation, and answer a Reply (Electron would keep only a thrown error's message).

import { errorInfo, parseArgs, type OperationName, type Reply } from '../../preload/contract.ts';
import type { StudioService } from '../service/studio.ts';
import { isTrustedSender } from './origins.ts';

/** The part of Electron's IpcMainInvokeEvent the guard reads. */
export interface InvokeEventLike {
  senderFrame: { url: string; parent: unknown } | null;
}

export function createIpcHandler(
  op: OperationName,
  service: StudioService,
  dev: string | null,
): (event: InvokeEventLike, raw: unknown) => Promise<Reply<unknown>> {
  return async (event, raw) => {
    if (!isTrustedSender(event.senderFrame, dev)) {
      console.warn(`ipc: refused ${op} from ${event.senderFrame?.url ?? 'a destroyed frame'}`);
      return { ok: false, error: { code: 'unauthorized', message: `${op}: sender is not the studio` } };
    }
    try {
      const args = parseArgs(op, raw);
      return { ok: true, value: await service.call(op, args as never) };
    } catch (err) {
      return { ok: false, error: errorInfo(err) };
    }
  };
}
