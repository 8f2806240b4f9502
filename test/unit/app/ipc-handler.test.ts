import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createIpcHandler } from '../../../main/app/ipc-handler.ts';
import { APP_ENTRY_URL } from '../../../main/app/origins.ts';
import { createStudioService } from '../../../main/service/studio.ts';
import { UNOPENED_LIBRARY } from '../../integration/service/dirs.ts';
import { createScriptedEngine } from '../../integration/web/scripted-engine.ts';

describe('IPC handler: sender check and validation', () => {
  const service = createStudioService({ engine: createScriptedEngine(), libraryDir: UNOPENED_LIBRARY });
  after(() => service.close());
  const info = createIpcHandler('engine.info', service, null);
  const studioFrame = { senderFrame: { url: APP_ENTRY_URL, parent: null } };

  it('answers the studio page', async () => {
    const reply = await info(studioFrame, {});
    assert.ok(reply.ok);
  });

  it('refuses subframes, foreign pages and destroyed frames', async () => {
    for (const event of [
      { senderFrame: { url: APP_ENTRY_URL, parent: { url: APP_ENTRY_URL } } },
      { senderFrame: { url: 'https://example.com/', parent: null } },
      { senderFrame: { url: 'http://localhost:5173/', parent: null } },
      { senderFrame: null },
    ]) {
      const reply = await info(event, {});
      assert.ok(!reply.ok && reply.error.code === 'unauthorized', JSON.stringify(event));
    }
  });

  it('accepts the dev server only when it is the configured one', async () => {
    const devInfo = createIpcHandler('engine.info', service, 'http://localhost:5173');
    assert.ok((await devInfo({ senderFrame: { url: 'http://localhost:5173/', parent: null } }, {})).ok);
  });

  it('validates arguments before the service sees them', async () => {
    const generate = createIpcHandler('generate', service, null);
    const reply = await generate(studioFrame, { prompt: 'apple', settings: { seed: 'x' } });
    assert.ok(!reply.ok);
    assert.equal(reply.error.code, 'invalid_argument');
    assert.match(reply.error.message, /^generate: settings\.seed: .*\(got "x"\)$/);
  });
});
