// Entry of the engine's utilityProcess: the engine's own message loop (main/engine/serve.ts)
// over Electron's parentPort. ONNX inference runs here, off the main process, so a long run
// never freezes the UI and a native crash takes down only this process (electron-anchors §2.5).

import { serveEngine } from '../engine/serve.ts';

const parentPort = process.parentPort;
if (!parentPort) throw new Error('engine-process must be started with utilityProcess.fork');

serveEngine({
  // utilityProcess ports transfer only MessagePorts; ArrayBuffers are copied by structured clone.
  post: (msg: unknown) => parentPort.postMessage(msg),
  onMessage: (cb: (msg: unknown) => void) => parentPort.on('message', (event) => cb(event.data)),
});
