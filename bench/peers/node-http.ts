/** The node:http baseline: the same plaintext response as iolab's `hello`. Usage: node node-http.js PORT */
import http from 'node:http';

const body = Buffer.from('Hello, World!');
const port = Number(process.argv[2] ?? 8080);
http
  .createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length, Server: 'node' });
    res.end(body);
  })
  .listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
