#!/usr/bin/env node
// A Speech-to-Speech (STS) peer on the `ws` package, like the real STS servers of the
// AVR ecosystem. Usage:
//   NODE_PATH=/usr/share/nodejs node sts_node.js <port|0> <mode> <record.jsonl> [key=value ...]
// Prints `LISTENING <port>` once ready. Records every connection, message received and
// notable message sent as JSON lines (monotonic time `t`, seconds, same clock as Python's
// time.monotonic()) so tests can assert what reached the STS.
//
// Modes: echo | mute | long | interrupt | transcript | badjson | oversize | close | closeframe
// Options: accept_delay_ms (delay the upgrade), close_after (messages, default 5),
//   long_ms (3000), extra (bytes beyond long_ms, 0), chunk (bytes per audio message, 640),
//   audio_ms (interrupt: 5000), interrupt_after_ms (300), second_after_ms (interrupt: 300,
//   -1 = none), second_ms (200), oversize_bytes (2 MiB).
// With STS_TLS_CERT and STS_TLS_KEY (PEM files) in the environment it serves wss:// on
// https.createServer instead.
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');
const { WebSocketServer } = require('ws');

const [portArg, mode, recordPath, ...rest] = process.argv.slice(2);
if (!mode || !recordPath) {
  console.error('usage: sts_node.js <port> <mode> <record.jsonl> [key=value ...]');
  process.exit(2);
}
const opts = {};
for (const kv of rest) {
  const i = kv.indexOf('=');
  opts[kv.slice(0, i)] = Number(kv.slice(i + 1));
}
const opt = (k, d) => (k in opts ? opts[k] : d);

const now = () => Number(process.hrtime.bigint()) / 1e9;
const fd = fs.openSync(recordPath, 'a');
function record(obj) {
  obj.t = now();
  fs.writeSync(fd, JSON.stringify(obj) + '\n');
}

// Agent speech pattern shared with the Python peers: sample n = 1000 + (n*37 % 4001),
// never zero, so silence padding is distinguishable from speech.
function patternPcm(bytes, startSample = 0, second = false) {
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i + 1 < bytes; i += 2) {
    const n = startSample + i / 2;
    const v = second ? -(1000 + ((n * 53) % 3001)) : 1000 + ((n * 37) % 4001);
    buf.writeInt16LE(v, i);
  }
  if (bytes % 2 === 1) buf[bytes - 1] = 0x11;
  return buf;
}

function sendPcm(ws, conn, pcm, chunk, label) {
  // Recorded before the first byte goes out: recorded after, the time could be later than
  // the caller hearing the first frame (avr-core plays a frame as soon as it arrives).
  record({ conn, event: 'sent', type: 'audio', label, bytes: pcm.length });
  for (let off = 0; off < pcm.length; off += chunk) {
    const part = pcm.subarray(off, Math.min(off + chunk, pcm.length));
    ws.send(JSON.stringify({ type: 'audio', audio: part.toString('base64') }));
  }
}

function sendJson(ws, conn, obj) {
  ws.send(JSON.stringify(obj));
  record({ conn, event: 'sent', type: obj.type, json: obj });
}

let nextConn = 1;
const refuse = (req, res) => {
  res.writeHead(426);
  res.end();
};
const server = process.env.STS_TLS_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.STS_TLS_CERT), key: fs.readFileSync(process.env.STS_TLS_KEY) }, refuse)
  : http.createServer(refuse);
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
server.on('upgrade', (req, socket, head) => {
  const delay = opt('accept_delay_ms', 0);
  const go = () => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  if (delay > 0) setTimeout(go, delay); else go();
});

wss.on('connection', (ws, req) => {
  const conn = nextConn++;
  let count = 0;
  let initSeen = false;
  let closing = false;
  record({ conn, event: 'connection', url: req.url, headers: req.headers });

  ws.on('message', (data, isBinary) => {
    count += 1;
    const entry = { conn, event: 'message', binary: isBinary, len: data.length };
    let msg = null;
    if (!isBinary) {
      const text = data.toString('utf8');
      try { msg = JSON.parse(text); } catch (e) { entry.invalid_json = true; }
      if (msg && typeof msg === 'object') {
        entry.type = msg.type;
        if (msg.type === 'audio' && typeof msg.audio === 'string') {
          entry.audio = msg.audio;
          entry.audio_len = Buffer.from(msg.audio, 'base64').length;
        } else {
          entry.json = msg;
        }
      } else {
        entry.text = text.slice(0, 1000);
      }
    }
    record(entry);

    const first = msg && msg.type === 'init' && !initSeen;
    if (first) initSeen = true;

    switch (mode) {
      case 'echo':
      case 'transcript':
      case 'badjson':
        if (msg && msg.type === 'audio') ws.send(JSON.stringify({ type: 'audio', audio: msg.audio }));
        break;
      case 'close':
        if (count >= opt('close_after', 5) && !closing) {
          closing = true;
          record({ conn, event: 'terminate' });
          ws.terminate();
        }
        break;
      case 'closeframe':
        if (count >= opt('close_after', 5) && !closing) {
          closing = true;
          record({ conn, event: 'close_sent', code: 1000 });
          ws.close(1000, 'bye');
        }
        break;
      default:
        break;
    }

    if (!first) return;
    if (mode === 'long') {
      sendPcm(ws, conn, patternPcm(opt('long_ms', 3000) * 16 + opt('extra', 0)), opt('chunk', 640), 'long');
    } else if (mode === 'interrupt') {
      sendPcm(ws, conn, patternPcm(opt('audio_ms', 5000) * 16), opt('chunk', 640), 'first');
      setTimeout(() => {
        sendJson(ws, conn, { type: 'interruption' });
        const after = opt('second_after_ms', 300);
        if (after >= 0) {
          setTimeout(() => sendPcm(ws, conn, patternPcm(opt('second_ms', 200) * 16, 0, true), 640, 'second'), after);
        }
      }, opt('interrupt_after_ms', 300));
    } else if (mode === 'transcript') {
      sendJson(ws, conn, { type: 'transcript', role: 'user', text: 'hello there' });
      sendJson(ws, conn, { type: 'transcript', role: 'agent', text: 'Hi! How can I help?' });
      sendJson(ws, conn, { type: 'error', message: 'sts-test-error-42' });
      sendJson(ws, conn, { type: 'mystery_type_xyz', value: 1 });
    } else if (mode === 'badjson') {
      ws.send('not json{');
      ws.send(Buffer.alloc(320, 7), { binary: true });
      ws.send('{"type":"audio"}');
      ws.send('{"type":"audio","audio":"!!!not base64!!!"}');
      ws.send('[1,2,3]');
      record({ conn, event: 'sent', type: 'garbage' });
    } else if (mode === 'oversize') {
      const bytes = opt('oversize_bytes', 2 * 1024 * 1024);
      const pcm = patternPcm(Math.floor((bytes * 3) / 4) & ~1);
      ws.send(JSON.stringify({ type: 'audio', audio: pcm.toString('base64') }));
      record({ conn, event: 'sent', type: 'oversize', bytes });
    }
  });

  ws.on('close', (code, reason) => record({ conn, event: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => record({ conn, event: 'error', message: String(err && err.message) }));
});

server.listen(Number(portArg) || 0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
