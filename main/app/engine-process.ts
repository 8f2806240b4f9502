// Entry of the engine's utilityProcess: the engine's own message loop (main/engine/serve.ts)
// over Electron's parentPort. ONNX inference runs here, off the main process, so a long run
// never freezes the UI and a native crash takes down only this process (electron-anchors §2.5).
// Options arrive as argv (--pack DIR --backend NAME --threads N), set by engine-host.ts.

import { engineOptionsFromArgv, serveEngine } from '../engine/serve.ts';

const parentPort = process.parentPort;
if (!parentPort) throw new Error('engine-process must be started with utilityProcess.fork');

serveEngine(
  {
    // utilityProcess ports transfer only MessagePorts; ArrayBuffers are copied by structured clone.
    post: (msg) => parentPort.postMessage(msg),
    onMessage: (cb) => parentPort.on('message', (event) => cb(event.data)),
  },
  engineOptionsFromArgv(process.argv.slice(1)),
);
