// bench/answer-bursts.ts' server: node:http answering 200 with an empty body, each answer at once, or
// (--batch) a loop turn's answers written together at setImmediate. Prints "ready" once listening.
//   node bench/lib/burst-server.mjs --port N [--batch]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, batch: { type: 'boolean', default: false } } });
let pending = [];
const answer = (res) => {
  res.writeHead(200, { 'content-length': '0' });
  res.end();
};
const flush = () => {
  const now = pending;
  pending = [];
  for (const res of now) answer(res);
};
createServer((_req, res) => {
  if (!values.batch) return answer(res);
  if (pending.length === 0) setImmediate(flush);
  pending.push(res);
}).listen(Number(values.port), '127.0.0.1', () => process.stdout.write('ready\n'));
