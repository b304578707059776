#!/usr/bin/env node
'use strict';
// Bench ASR, LLM and TTS services for `bench/run.py --mode pipeline`, in Node.js like
// the real AVR modules, on the built-in `http` module only. The same protocol, options, counters
// and timing as bench/pipeline_services.py (the aiohttp version, kept for comparison), at a
// fraction of its CPU: 400 calls upload 20 000 ASR chunks a second.
// Only this version measures turn latency: --llm-delay-ms/--tts-delay-ms, the turn named in
// each reply and marked in its TTS audio, GET /transcripts.

const http = require('http');

const USAGE = `usage: pipeline_services.js [-h] [--port PORT] [--asr-every ASR_EVERY]
                            [--llm-token-ms LLM_TOKEN_MS]
                            [--tts-ms-per-char TTS_MS_PER_CHAR]
                            [--tts-speed TTS_SPEED]
                            [--llm-delay-ms LLM_DELAY_MS]
                            [--tts-delay-ms TTS_DELAY_MS]`;

const HELP = `${USAGE}

Bench ASR, LLM and TTS services for \`bench/run.py --mode pipeline\`.

One Node.js process answers on a timer, speaking the module protocols of README "Pipeline mode":
  POST /speech-to-text-stream  the call's audio streams in; every --asr-every seconds of audio
                               received (16000 bytes a second) a transcript is written back as
                               bare text ("bench turn N for call", no framing)
  POST /prompt-stream          a two-sentence reply streamed as {"type":"text","content":…}
                               token deltas, --llm-token-ms apart
  POST /text-to-speech-stream  raw 8 kHz s16le PCM (a 300 Hz tone at -12 dBFS), --tts-ms-per-char
                               of audio per character of text, written in 100 ms pieces
                               --tts-speed times faster than real time
  GET  /stats                  counters (JSON): requests, bytes, cancellations, errors
  GET  /transcripts            [[uuid, turn, unix_us, llm_ms, tts_ms], ...]: when each
                               transcript was written (the last 100 000), and the modules' own
                               time for that turn (request in -> first byte out, of the last
                               LLM request for it and of its first sentence's TTS request;
                               null when there was none)

Each reply's first sentence names the turn ("... in turn N."); its TTS audio begins with a
marker, the bytes "AVRT" and N as a 32-bit little-endian integer, so the load generator
(--onsets-out) can tell when that turn's answer reached the caller. TTS audio is a whole
number of 20 ms frames.
Prints "pipeline-bench listening port=P" once it accepts connections.

options:
  -h, --help            show this help message and exit
  --port PORT
  --asr-every ASR_EVERY
                        seconds of caller audio per transcript (> 0; default 4.0)
  --llm-token-ms LLM_TOKEN_MS
                        ms between token deltas (default 15.0)
  --tts-ms-per-char TTS_MS_PER_CHAR
                        ms of audio per character (default 60.0)
  --tts-speed TTS_SPEED
                        times faster than real time (> 0; default 4.0)
  --llm-delay-ms LLM_DELAY_MS
                        LLM time to first byte (default 0); when > 0 the reply's first
                        sentence is written whole at that time, the rest token by token
  --tts-delay-ms TTS_DELAY_MS
                        TTS time to first byte: the head and the first audio (default 0)`;

const RATE = 8000;
const PIECE_BYTES = RATE * 2 / 10; // 100 ms
const FRAME_BYTES = 320; // 20 ms
const MAX_TRANSCRIPTS = 100000;
const MAX_BODY = 1 << 20; // LLM and TTS request bodies, as aiohttp's client_max_size

// ---- command line (the flags of the Python version; `--flag value`, `--flag=value`, unique prefixes)

function usageError(message) {
  process.stderr.write(`${USAGE}\npipeline_services.js: error: ${message}\n`);
  process.exit(2);
}

const OPTIONS = {
  '--port': { key: 'port', parse: 'int', value: 0 },
  '--asr-every': { key: 'asrEvery', parse: 'float', value: 4.0, check: (v) => v > 0, rule: 'must be > 0' },
  '--llm-token-ms': { key: 'llmTokenMs', parse: 'float', value: 15.0, check: (v) => v >= 0, rule: 'must be >= 0' },
  '--tts-ms-per-char': { key: 'ttsMsPerChar', parse: 'float', value: 60.0, check: (v) => v >= 0, rule: 'must be >= 0' },
  '--tts-speed': { key: 'ttsSpeed', parse: 'float', value: 4.0, check: (v) => v > 0, rule: 'must be > 0' },
  '--llm-delay-ms': { key: 'llmDelayMs', parse: 'float', value: 0.0, check: (v) => v >= 0, rule: 'must be >= 0' },
  '--tts-delay-ms': { key: 'ttsDelayMs', parse: 'float', value: 0.0, check: (v) => v >= 0, rule: 'must be >= 0' },
};

function parseValue(flag, spec, text) {
  const t = text.trim();
  const ok = spec.parse === 'int' ? /^[+-]?\d+$/.test(t)
    : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t);
  const value = Number(t);
  if (!ok || !Number.isFinite(value)) usageError(`argument ${flag}: invalid ${spec.parse} value: '${text}'`);
  if (spec.check && !spec.check(value)) usageError(`argument ${flag}: ${spec.rule}: '${text}'`);
  return value;
}

function parseArgs(argv) {
  const args = {};
  for (const spec of Object.values(OPTIONS)) args[spec.key] = spec.value;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(HELP + '\n');
      process.exit(0);
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const matches = Object.keys(OPTIONS).filter((flag) => flag === name || (name.length > 2 && flag.startsWith(name)));
    const flag = matches.includes(name) ? name : matches.length === 1 ? matches[0] : null;
    if (!arg.startsWith('--') || !flag) {
      usageError(matches.length > 1 ? `ambiguous option: ${name} could match ${matches.join(', ')}`
        : `unrecognized arguments: ${arg}`);
    }
    let text;
    if (name !== arg) text = arg.slice(eq + 1);
    else if (i + 1 < argv.length) text = argv[++i];
    else usageError(`argument ${flag}: expected one argument`);
    args[OPTIONS[flag].key] = parseValue(flag, OPTIONS[flag], text);
  }
  return args;
}

// ---- helpers

function toneSecond() {
  const amplitude = 32767 * 10 ** (-12 / 20);
  const buffer = Buffer.alloc(RATE * 2);
  for (let i = 0; i < RATE; i++) {
    buffer.writeInt16LE(Math.trunc(amplitude * Math.sin(2 * Math.PI * 300 * i / RATE)), i * 2);
  }
  return buffer;
}

// JSON as Python's json.dumps writes it: ", " and ": " separators, non-ASCII as \uXXXX.
function pyJsonString(s) {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function pyJsonObject(object) {
  return '{' + Object.entries(object).map(([k, v]) => `${pyJsonString(k)}: ${typeof v === 'string' ? pyJsonString(v) : v}`).join(', ') + '}';
}

// Python's str.split() separators.
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

function pyWords(s) {
  return s.split(PY_WHITESPACE).filter((w) => w.length > 0);
}

function codePoints(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

function sendJson(res, status, object) {
  const body = Buffer.from(pyJsonObject(object));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
  res.end(body);
}

function sendText(res, status, text, headers = {}) {
  const body = Buffer.from(text);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, ...headers });
  res.end(body);
}

// The whole body (at most MAX_BODY bytes) parsed as UTF-8 JSON; `done(value)` or `done(undefined)`
// when it is too large, not UTF-8 or not JSON. Nothing is called if the client goes away first.
function readJson(req, done) {
  const parts = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size >= MAX_BODY) tooLarge = true; // aiohttp refuses a body of client_max_size too
    if (!tooLarge) parts.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) return done(undefined);
    try {
      done(JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(parts))));
    } catch {
      done(undefined);
    }
  });
}

// Whether the client has gone away (`closed`), and `onClose`, called when it does or once the
// response is done. Watched from the start, so that a close before the response is noticed too.
function watchClose(res) {
  const watch = { closed: false, onClose: null };
  res.on('close', () => {
    watch.closed = true;
    if (watch.onClose) watch.onClose();
  });
  return watch;
}

// Calls `fn` after `delayMs` (0: on the next turn of the loop, as asyncio.sleep(0)); returns the
// function that cancels it.
function after(delayMs, fn) {
  if (delayMs > 0) {
    const timeout = setTimeout(fn, delayMs);
    return () => clearTimeout(timeout);
  }
  const immediate = setImmediate(fn);
  return () => clearImmediate(immediate);
}

// Notes a module's time (request in -> first byte out) for a bench turn.
function noteModuleTime(services, uuid, turn, module, ms) {
  const key = `${uuid} ${turn}`;
  let times = services.moduleTimes.get(key);
  if (!times) {
    if (services.moduleTimes.size >= MAX_TRANSCRIPTS) services.moduleTimes.delete(services.moduleTimes.keys().next().value);
    times = {};
    services.moduleTimes.set(key, times);
  }
  times[module] = ms;
}

function wallMicroseconds() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

// ---- the services

class Services {
  constructor(args) {
    this.args = args;
    this.tone = toneSecond();
    this.toneTwice = Buffer.concat([this.tone, this.tone]); // a piece may wrap around the second
    this.transcripts = [];
    this.moduleTimes = new Map(); // "uuid turn" -> { llm, tts } (ms), the last MAX_TRANSCRIPTS turns
    this.stats = {
      asr_streams: 0, asr_open: 0, asr_audio_bytes: 0, asr_transcripts: 0,
      llm_requests: 0, llm_completed: 0, llm_cancelled: 0, llm_bad_requests: 0,
      tts_requests: 0, tts_completed: 0, tts_cancelled: 0, tts_bytes: 0, tts_bad_requests: 0,
    };
    this.routes = {
      '/speech-to-text-stream': ['POST', (req, res) => this.asr(req, res)],
      '/prompt-stream': ['POST', (req, res) => this.llm(req, res)],
      '/text-to-speech-stream': ['POST', (req, res) => this.tts(req, res)],
      '/stats': ['GET', (req, res) => sendJson(res, 200, this.stats)],
      '/transcripts': ['GET', (req, res) => {
        const rows = this.transcripts.map(([uuid, turn, at]) => {
          const times = this.moduleTimes.get(`${uuid} ${turn}`);
          return [uuid, turn, at, times?.llm ?? null, times?.tts ?? null];
        });
        const body = Buffer.from(JSON.stringify(rows));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
        res.end(body);
      }],
    };
  }

  asr(req, res) {
    const stats = this.stats;
    const uuid = req.headers['x-uuid'] ?? '?';
    stats.asr_streams++;
    stats.asr_open++;
    res.on('close', () => { stats.asr_open--; }); // after the end, or when the client went away
    res.writeHead(200, { 'Content-Type': 'text/event-stream' }); // chunked: no length
    res.flushHeaders();
    const perTurn = Math.trunc(this.args.asrEvery * RATE * 2);
    let received = 0;
    let turns = 0;
    let paused = false;
    req.on('data', (chunk) => {
      received += chunk.length;
      stats.asr_audio_bytes += chunk.length;
      while (received >= (turns + 1) * perTurn) {
        turns++;
        stats.asr_transcripts++;
        if (this.transcripts.length >= MAX_TRANSCRIPTS) this.transcripts.shift();
        this.transcripts.push([uuid, turns, wallMicroseconds()]);
        if (!res.write(`bench turn ${turns} for call ${uuid.slice(0, 8)}`) && !paused) {
          paused = true; // as the Python version awaits the write: read on once it drained
          req.pause();
          res.once('drain', () => { paused = false; req.resume(); });
        }
      }
    });
    req.on('end', () => res.end());
  }

  // Writes the pieces `next()` returns (null: the end), `delayMs` apart, waiting for the socket to
  // drain when it is full; counts `<prefix>_completed`, or `<prefix>_cancelled` when the client
  // closes first.
  stream(res, watch, prefix, contentType, delayMs, next, firstDelayMs = 0, onFirstWrite = null) {
    const stats = this.stats;
    if (watch.closed) { // gone while its request was read: the Python version's first write fails
      stats[`${prefix}_cancelled`]++;
      return;
    }
    let finished = false;
    let cancel = null;
    watch.onClose = () => {
      if (finished) return;
      finished = true;
      if (cancel) cancel();
      stats[`${prefix}_cancelled`]++; // the core cancelled the request (barge-in, hang-up)
    };
    const step = () => {
      cancel = null;
      if (finished) return;
      const piece = next();
      if (piece === null) {
        finished = true;
        stats[`${prefix}_completed`]++;
        res.end();
        return;
      }
      if (onFirstWrite) {
        onFirstWrite();
        onFirstWrite = null;
      }
      if (res.write(piece)) cancel = after(delayMs, step);
      else res.once('drain', () => { if (!finished) cancel = after(delayMs, step); });
    };
    if (firstDelayMs > 0) {
      cancel = after(firstDelayMs, () => {
        if (finished) return;
        res.writeHead(200, { 'Content-Type': contentType });
        step();
      });
      return;
    }
    res.writeHead(200, { 'Content-Type': contentType });
    step();
  }

  llm(req, res) {
    const arrived = performance.now();
    this.stats.llm_requests++;
    const watch = watchClose(res);
    readJson(req, (body) => {
      const valid = body !== null && typeof body === 'object' && !Array.isArray(body)
        && typeof body.uuid === 'string' && typeof body.message === 'string' && Array.isArray(body.messages);
      if (!valid) {
        this.stats.llm_bad_requests++;
        sendJson(res, 400, { message: 'uuid, message and messages are required' });
        return;
      }
      const heard = pyWords(body.message);
      const turn = /\bturn (\d+)\b/.exec(body.message);
      const first = `Sure, I heard you say ${heard.length ? heard[heard.length - 1] : 'nothing'} in turn ${turn ? turn[1] : 0}.`;
      const second = 'This is the second sentence of a bench reply.';
      // With a time to first byte, the first sentence comes whole at that time: the LLM's
      // share of the turn's latency is then exactly --llm-delay-ms.
      const words = this.args.llmDelayMs > 0 ? [first, ...second.split(' ')] : `${first} ${second}`.split(' ');
      let index = 0;
      this.stream(res, watch, 'llm', 'text/event-stream', this.args.llmTokenMs, () => {
        if (index === words.length) return null;
        const delta = index === 0 ? words[0] : ' ' + words[index];
        index++;
        return `{"type": "text", "content": ${pyJsonString(delta)}}`;
      }, this.args.llmDelayMs, () => {
        if (turn) noteModuleTime(this, req.headers['x-uuid'] ?? '?', Number(turn[1]), 'llm', performance.now() - arrived);
      });
    });
  }

  tts(req, res) {
    const arrived = performance.now();
    this.stats.tts_requests++;
    const watch = watchClose(res);
    readJson(req, (body) => {
      if (body === null || typeof body !== 'object' || Array.isArray(body) || typeof body.text !== 'string') {
        this.stats.tts_bad_requests++;
        sendJson(res, 400, { error: 'text is required' });
        return;
      }
      let total = Math.trunc(codePoints(body.text) * this.args.ttsMsPerChar / 1000 * RATE) * 2;
      total -= total % FRAME_BYTES;
      const toneBytes = this.tone.length;
      const turn = /\bin turn (\d+)\./.exec(body.text);
      let marker = turn && total >= FRAME_BYTES ? Buffer.alloc(8) : null;
      if (marker) {
        marker.write('AVRT', 0, 'latin1');
        marker.writeUInt32LE(Number(turn[1]) >>> 0, 4);
      }
      let sent = 0;
      let offset = 0;
      this.stream(res, watch, 'tts', 'audio/l16', 100 / this.args.ttsSpeed, () => {
        if (sent >= total) return null;
        const size = Math.min(PIECE_BYTES, total - sent);
        let piece = this.toneTwice.subarray(offset, offset + size);
        if (marker) {
          piece = Buffer.concat([marker, piece.subarray(marker.length)]);
          marker = null;
        }
        offset = (offset + size) % toneBytes;
        sent += size;
        this.stats.tts_bytes += size;
        return piece;
      }, this.args.ttsDelayMs, () => {
        if (turn) noteModuleTime(this, req.headers['x-uuid'] ?? '?', Number(turn[1]), 'tts', performance.now() - arrived);
      });
    });
  }

  handle(req, res) {
    const path = req.url.split('?', 1)[0];
    const route = Object.hasOwn(this.routes, path) ? this.routes[path] : undefined;
    if (!route) return sendText(res, 404, '404: Not Found');
    const [method, handler] = route;
    const allowed = method === 'GET' ? ['GET', 'HEAD'] : [method];
    if (!allowed.includes(req.method)) {
      return sendText(res, 405, '405: Method Not Allowed', { Allow: allowed.join(',') });
    }
    handler(req, res);
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const services = new Services(args);
  const server = http.createServer((req, res) => services.handle(req, res));
  server.requestTimeout = 0; // an ASR upload lasts the whole call
  server.keepAliveTimeout = 75000; // aiohttp's keep-alive
  server.on('clientError', (err, socket) => {
    if (socket.writable && !socket.writableEnded) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.listen({ host: '127.0.0.1', port: args.port, backlog: 1024 }, () => {
    process.stdout.write(`pipeline-bench listening port=${server.address().port}\n`);
  });
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
