import { createServer } from 'node:http';

// The ceiling: a bare node:http server that reads the whole body and answers 200, nothing else.
const answer = Buffer.from('{"received":true,"duplicate":false}');
const server = createServer((request, response) => {
  let bytes = 0;
  request.on('data', (chunk: Buffer) => (bytes += chunk.length));
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    response.end(answer);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`bare node:http listening at http://127.0.0.1:${port}/replicate-webhook`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
