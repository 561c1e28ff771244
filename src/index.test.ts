import { describe, expect, it } from 'vitest';
import * as inlet from './index.js';

describe('the library entry point', () => {
  it('exports the verifier, the signer, the emulator and createInlet', async () => {
    expect(Object.keys(inlet).sort()).toEqual([
      'ERROR_CODES',
      'createEmulator',
      'createInlet',
      'createVerifier',
      'signWebhook',
      'verifyWebhook',
    ]);
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = Buffer.from('{"id":"p","status":"starting"}');
    const headers = inlet.signWebhook(body, { secret, id: 'msg_1', timestampSec: 1_700_000_000 });
    const result = inlet.verifyWebhook(body, headers, { secrets: [secret], toleranceSec: 0 });
    expect(result).toMatchObject({ ok: true, scheme: 'standard', key: 'msg_1' });
    const emulator = inlet.createEmulator({ secret });
    const url = await emulator.listen(0);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    await emulator.close();
  });
});
