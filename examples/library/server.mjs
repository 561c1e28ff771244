// Inlet inside your own Node app: receive Replicate webhooks on /replicate-webhook with node:http (and
// the same Inlet through a fetch-style handler on /fetch/replicate-webhook), and run a handler once
// per completed prediction. Run it from the repository root after `npm run build`:
//
//   REPLICATE_WEBHOOK_SECRET=whsec_... node examples/library/server.mjs
//
// In your own project: `npm install inlet-webhooks` and import from 'inlet-webhooks' instead.
import { createServer } from 'node:http';
import { createInlet } from '../../dist/index.js';

const inlet = createInlet({
  secret: process.env.REPLICATE_WEBHOOK_SECRET,
  database: process.env.DATABASE_URL ?? 'sqlite:./data/example.db',
});

// Runs once per transition (retried on a throw, resumed after a restart): make it idempotent on id.
inlet.on(
  'prediction.completed',
  async (message) => {
    const { id, status, output } = message.data;
    console.log(`completed ${id} ${status} ${JSON.stringify(output)} (message ${message.id})`);
  },
  { name: 'log-completed' },
);

const server = createServer(async (req, res) => {
  if (req.url === '/fetch/replicate-webhook') {
    // The fetch handler, as Hono or a Next.js route would call it.
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const request = new Request(`http://localhost${req.url}`, {
      method: req.method,
      headers: req.headers,
      body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
    });
    const response = await inlet.fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
    return;
  }
  inlet.listener(req, res);
});

await inlet.ready();
server.listen(Number(process.env.PORT ?? 5000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/replicate-webhook`);
});

const shutdown = async () => {
  server.close();
  await inlet.close();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
