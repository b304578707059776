#!/usr/bin/env python3
"""Writes the handmade seed corpus under Tests/Fuzz/corpus/<target>/ (run from the repo root).

Split targets take a control byte first (see SplitInput in Tests/Fuzz/AVRFuzz/Support.swift):
0x00 = whole stream in one chunk, 0x80 = one byte at a time, 0x02 + two lengths = three chunks.
"""
import base64, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def split_variants(target, name, stream):
    write(target, name + "-whole", b"\x00" + stream)
    write(target, name + "-bytewise", b"\x80" + stream[:200])
    write(target, name + "-3chunks", b"\x02\x01\x05" + stream)

# AudioSocket
def asm(kind, payload):
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload
uuid = asm(0x01, bytes(range(16)))
slin = asm(0x10, bytes(320))
split_variants("audiosocket", "call", uuid + slin + asm(0x03, b"5") + slin + asm(0x00, b""))
split_variants("audiosocket", "rates", uuid + b"".join(asm(k, bytes(16)) for k in range(0x11, 0x19)))
split_variants("audiosocket", "error", uuid + asm(0xFF, b"\x01\x02") + slin)
write("audiosocket", "before-uuid", b"\x00" + slin + uuid)
write("audiosocket", "bad-dtmf", b"\x00" + uuid + asm(0x03, b"x"))
write("audiosocket", "odd-slin16", b"\x00" + uuid + asm(0x12, bytes(3)))
write("audiosocket", "small-limit", b"\x09" + uuid + asm(0x10, bytes(100)))
write("audiosocket", "http", b"\x00GET / HTTP/1.1\r\n\r\n")

# WebSocket frames from a server (unmasked)
def wsf(opcode, payload, fin=True, form=None):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if form == 127 or (form is None and n > 0xFFFF):
        head += bytes([127]) + struct.pack(">Q", n)
    elif form == 126 or (form is None and n > 125):
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([n])
    return head + payload
audio = b'{"type":"audio","audio":"' + base64.b64encode(bytes(160)) + b'"}'
stream = (wsf(1, audio) + wsf(9, b"hi") + wsf(1, b'{"type":', fin=False) + wsf(10, b"")
          + wsf(0, b'"interruption"}') + wsf(2, bytes(300)) + wsf(8, b"\x03\xe8bye"))
for t in ("ws-frame", "ws-message"):
    split_variants(t, "session", stream)
    write(t, "len127", b"\x00" + wsf(2, b"abc", form=127))
    write(t, "len126", b"\x00" + wsf(1, b"x" * 200))
    write(t, "masked", b"\x00\x81\x85abcd" + b"hello")
    write(t, "rsv", b"\x00\xc1\x00")
    write(t, "huge", b"\x00\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff")
    write(t, "small-limit", b"\x09" + wsf(2, bytes(200)))
write("ws-message", "bad-utf8", b"\x00" + wsf(1, b"\xc3\x28"))
write("ws-message", "utf8-split", b"\x00" + wsf(1, "é€😀".encode()[:3], fin=False) + wsf(0, "é€😀".encode()[3:]))
write("ws-message", "close-codes", b"\x00" + wsf(8, b"\x03\xed"))
write("ws-message", "close-1byte", b"\x00" + wsf(8, b"\x03"))
write("ws-message", "close-empty", b"\x00" + wsf(8, b"") + wsf(1, b"after"))
write("ws-message", "cont-unexpected", b"\x00" + wsf(0, b"x"))
write("ws-message", "new-in-fragment", b"\x00" + wsf(1, b"a", fin=False) + wsf(2, b"b"))

# UTF-8
for name, text in [("ascii", b'{"type":"audio"}'), ("mixed", "héllo €uro 😀 日本".encode()),
                   ("overlong", b"\xc0\xaf"), ("surrogate", b"\xed\xa0\x80"), ("max", b"\xf4\x8f\xbf\xbf"),
                   ("over-max", b"\xf4\x90\x80\x80"), ("truncated", b"abcdefgh\xe2\x82"), ("e0", b"\xe0\x9f\xbf")]:
    write("utf8", name, text)

# Handshake response
ok = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
split_variants("ws-handshake", "ok", ok + wsf(1, b'{"type":"x"}'))
write("ws-handshake", "refused", b"\x00HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
write("ws-handshake", "wrong-accept", b"\x00" + ok.replace(b"s3pP", b"AAAA"))
write("ws-handshake", "extension", b"\x00" + ok[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
write("ws-handshake", "folded", b"\x00" + ok[:-2] + b" folded\r\n\r\n")
write("ws-handshake", "lf-only", b"\x00" + ok.replace(b"\r\n", b"\n") + b"\r\n\r\n")
write("ws-handshake", "small-limit", b"\x09" + ok)

# HTTP requests
post = (b'POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n'
        b'{"uuid":"1","from":"2000"}'[:25])
get = b"GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
split_variants("http-request", "pipelined", get + post + get)
write("http-request", "chunked", b"\x00POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
write("http-request", "expect", b"\x00POST /call HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}")
write("http-request", "close", b"\x00GET / HTTP/1.0\r\n\r\n")
write("http-request", "too-large", b"\x09POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n")
write("http-request", "bad", b"\x00GET / HTTP/1.1\r\nHost : x\r\n\r\n")
write("http-request", "cl-te", b"\x00POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

# Strict head check: ordinary requests and the smuggling probes
ok = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
te = b"POST /call HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
split_variants("http-head-check", "pipelined", ok + post + te + b"2;e=1\r\n{}\r\n0\r\nT: 1\r\n\r\n" + b"GET / HTTP/1.0\r\n\r\n")
split_variants("http-head-check", "bare-cr", b"GET /health HTTP/1.1\r\nHost: x\r\n\rXPOST /call HTTP/1.1\r\nHost: x\r\n\r\n")
write("http-head-check", "chunk-no-crlf", b"\x00" + te + b"2\r\n{}XX0\r\n\r\n" + post)
write("http-head-check", "obs-fold", b"\x00POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n 0\r\n\r\n" + b"a" * 10)
write("http-head-check", "name-space", b"\x00GET / HTTP/1.1\r\nHost : x\r\nX A: b\r\n\r\n")
write("http-head-check", "no-host", b"\x00GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
write("http-head-check", "two-hosts", b"\x00GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
write("http-head-check", "absolute", b"\x00POST http://avr:6001/call HTTP/1.1\r\nHost: avr\r\nContent-Length: 2\r\n\r\n{}")
write("http-head-check", "bare-lf", b"\x00GET / HTTP/1.1\nHost: x\n\n")
write("http-head-check", "te-cl", b"\x00POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

# HTTP responses
resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"sts_url\":1}"
split_variants("http-response", "keepalive", resp + resp)
write("http-response", "chunked", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
write("http-response", "eof-body", b"\x00HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstreamed until EOF")
write("http-response", "204", b"\x00HTTP/1.1 204 No Content\r\n\r\n")
write("http-response", "truncated", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
write("http-response", "small-limits", b"\x1b" + resp)
write("http-response", "100-continue", b"\x00HTTP/1.1 100 Continue\r\n\r\n" + resp)

# JSON
for name, text in [("call", b'{"uuid":"3f1c2a9e-0b7d-4c55-9e2a-1d2c3b4a5f60","from":"2000","to":"100","vars":{"a":[1,2.5e-3,true,null]}}'),
                   ("escapes", b'"\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/"'), ("numbers", b"[0,-0,1e10,-1.5E+2,123456789012345678901234567890]"),
                   ("nested", b"[" * 64 + b"]" * 64), ("too-deep", b"[" * 65 + b"]" * 65), ("bad-surrogate", b'"\\ud800"'),
                   ("empty-obj", b" { } "), ("dup", b'{"a":1,"a":2}'), ("utf8", '{"ü":"日本"}'.encode()),
                   ("call-body", b'{"uuid":"3F1C2A9E-0b7d-4c55-9e2a-1d2c3b4a5f60","payload":{"from":"2000","n":1}}'),
                   ("call-bad-uuid", b'{"uuid":"3f1c2a9e+0b7d-4c55-9e2a-1d2c3b4a5f60","payload":{}}')]:
    write("json", name, text)

# STS inbound (control byte, then the text message)
pcm = bytes(range(256)) * 2
for name, text in [("audio", b'{"type":"audio","audio":"' + base64.b64encode(pcm) + b'"}'),
                   ("audio-reversed", b'{ "audio" : "' + base64.b64encode(pcm[:7]) + b'" , "type" : "audio" }'),
                   ("padded1", b'{"type":"audio","audio":"' + base64.b64encode(b"\x01") + b'"}'),
                   ("padded2", b'{"type":"audio","audio":"' + base64.b64encode(b"\x01\x02") + b'"}'),
                   ("interruption", b'{"type":"interruption"}'), ("escaped", b'{"type":"au\\u0064io","audio":""}'),
                   ("other", b'{"type":"transcript","text":"hi"}'), ("bad-pad", b'{"type":"audio","audio":"AB=="}')]:
    write("sts-inbound", name, b"\x05" + text)
write("sts-inbound", "wrap", b"\xff" + b'{"type":"audio","audio":"' + base64.b64encode(pcm * 3) + b'"}')

# URLs (base, 0x00, JSON payload)
for name, text in [("plain", b"ws://localhost:6030\x00{\"from\":\"2000\",\"channel\":\"PJSIP/2000-00000013\"}"),
                   ("query-fragment", b"wss://user:pw@example.com:443/path?a=1&#frag\x00{\"n\":1,\"b\":true,\"z\":null,\"o\":{\"k\":[1]}}"),
                   ("ipv6", b"ws://[::1]:8080/sts\x00{}"), ("ipv6-v4", b"http://[::ffff:127.0.0.1]/\x00{\"a\":\"\xc3\xa9 &=\"}"),
                   ("bad-port", b"ws://h:99999/"), ("no-scheme", b"localhost:80"), ("https", b"HTTPS://Example.COM?x"),
                   ("empty-host", b"ws://:80/")]:
    write("url", name, text)

# Codec detector: records of [length (2 bytes, big-endian), gap ms], then the payload.
# Control byte bit 7 scales gaps ×4.
import math, random
def lin2ulaw(s):
    s = max(-32635, min(32635, s)); sign = 0x80 if s < 0 else 0
    s = abs(s) + 0x84
    exp = next(e for e in range(7, -1, -1) if s & (0x80 << e) or e == 0)
    return ~(sign | exp << 4 | (s >> (exp + 3)) & 0x0F) & 0xFF
def lin2alaw(s):
    sign = 0x80 if s >= 0 else 0
    s = min(abs(s) >> 3, 0xFFF)
    if s < 32:
        code = s >> 1
    else:
        exp = s.bit_length() - 5
        code = exp << 4 | (s >> exp) & 0x0F
    return (sign | code) ^ 0x55
def tone(n, amp, off=0, f=440): return [int(amp * math.sin(2 * math.pi * f * (i + off) / 8000)) for i in range(n)]
def slin16(samples): return b"".join(struct.pack("<h", s) for s in samples)
def rec(payload, gap): return struct.pack(">H", len(payload)) + bytes([gap]) + payload
def frames(encode, size, count, gap=20, control=0, amp=8000):
    return bytes([control]) + b"".join(rec(encode(tone(size, amp, off=size * i)), gap) for i in range(count))
ulaw = lambda xs: bytes(lin2ulaw(x) for x in xs)
alaw = lambda xs: bytes(lin2alaw(x) for x in xs)
write("codec-detector", "slin-20ms", frames(slin16, 160, 6))
write("codec-detector", "ulaw-20ms", frames(ulaw, 160, 6))
write("codec-detector", "alaw-20ms", frames(alaw, 160, 6, amp=3000))
write("codec-detector", "ulaw-40ms", frames(ulaw, 320, 14, gap=10, control=0x80))
write("codec-detector", "slin-10ms", frames(slin16, 80, 30, gap=3, control=0x80))
write("codec-detector", "loud-slin", frames(slin16, 160, 4, amp=32767))
write("codec-detector", "silence-ulaw", bytes([0]) + rec(b"\xff" * 160, 20) * 3)
write("codec-detector", "odd-first", bytes([0]) + rec(b"\x7f" * 161, 20) + rec(b"\x00" * 320, 20))
write("codec-detector", "stall", bytes([0]) + rec(b"\xd5" * 160, 0) + rec(b"\xd5" * 160, 250) + rec(b"\xd5" * 160, 20))
random.seed(1)
write("codec-detector", "noise", bytes([0]) + b"".join(rec(bytes(random.randrange(256) for _ in range(320)), 20) for _ in range(3)))

# Pipeline. llm-reply: flag bit 0 (control 0x08) builds serialised text objects
# from the 0x00-separated stream; sentence-splitter: text; tts-audio: flag bit 0 puts a WAV
# header first (bits 1-2: streamed, sized, 16 kHz, stereo); asr-transcript: flag bit 0 spaces
# the pieces in time (bits 1-3 pick the gap).
def obj(kind, content):
    return ('{"type":"%s","content":%s}' % (kind, content)).encode()
deltas = b"".join(obj("text", '"%s"' % w) for w in ["Hel", "lo", " Dr", ". Smith", "! \\\"quoted\\\"", " caf\\u00e9 \\ud83d\\ude00", " 3", ".14."])
split_variants("llm-reply", "deltas", deltas)
split_variants("llm-reply", "mixed", obj("status", '"thinking"') + b"\n" + obj("text", '"a } b { c"') + b' ,\r\n'
               + obj("error", '{"code":1}') + b'{"type":"tool","x":[{"y":"}"}]}' + '{"type":"text","content":"日本 😀"}'.encode())
split_variants("llm-reply", "sse", b'data: ' + obj("text", '"a"') + b'\n\ndata: [DONE]\n\n')
split_variants("llm-reply", "plain", "**Sure!** Here it is:\n- one 😀\n- two <think>x</think> 【1†a】".encode())
write("llm-reply", "brace-text", b"\x00{Note} Hello.")
write("llm-reply", "bom-json", b"\x00\xef\xbb\xbf" + obj("text", '"a"'))
write("llm-reply", "truncated", b"\x00" + obj("text", '"ab')[:-2])
write("llm-reply", "malformed-second", b"\x00" + obj("text", '"a"') + b'{"type":"text","content":nope}' + b" junk")
write("llm-reply", "serialised", b"\x0a\x01\x03" + "a\"b\\c\x00\n\t\x01é😀\x00\x00end".encode())
write("llm-reply", "serialised-commas", b"\x38" + "x\x00y\x00".encode())

for name, text in [("reply", "<think>plan. more</think>**Hello** Dr. Smith! It costs $1,000.50, i.e. 3.14 each... ok? Yes.\n- item one\n1. item two\n【3:0†src】Bye 👋🏽"),
                   ("cjk", "你好。今天好吗？好！"), ("quotes", 'He said "Hi." (Really.) Well… J. R. R. Tolkien vs. U.S. e.g. this.'),
                   ("unclosed", "Start <thin <think>never closed. x"), ("markdown", "## Title\n> quote\n  - a\n10) b\n```code```\n__b__ *i*")]:
    split_variants("sentence-splitter", name, text.encode())

def le16(v): return struct.pack("<H", v)
def le32(v): return struct.pack("<I", v)
def riff_chunk(cid, body): return cid + le32(len(body)) + body + (b"\0" if len(body) % 2 else b"")
def fmt_chunk(tag=1, ch=1, rate=8000, bits=16): return riff_chunk(b"fmt ", le16(tag) + le16(ch) + le32(rate) + le32(rate * ch * bits // 8) + le16(ch * bits // 8) + le16(bits))
ramp = bytes((i * 7) & 0xFF for i in range(321))
split_variants("tts-audio", "raw-odd", ramp)
split_variants("tts-audio", "wav-clip", b"RIFF" + le32(0) + b"WAVE" + riff_chunk(b"LIST", b"INFOISFT") + fmt_chunk() + riff_chunk(b"data", ramp[:101]) + riff_chunk(b"LIST", b"x"))
write("tts-audio", "two-wavs", b"\x00" + (b"RIFF" + le32(0) + b"WAVE" + fmt_chunk() + riff_chunk(b"data", ramp[:40])) * 2)
write("tts-audio", "wav-16k", b"\x00RIFF" + le32(0) + b"WAVE" + fmt_chunk(rate=16000) + riff_chunk(b"data", ramp[:10]))
write("tts-audio", "not-wave", b"\x00RIFF" + le32(0) + b"AVI " + ramp[:20])
write("tts-audio", "data-first", b"\x00RIFF" + le32(0) + b"WAVE" + riff_chunk(b"data", ramp[:10]))
write("tts-audio", "header-streamed", b"\x08" + ramp[:99])
write("tts-audio", "header-sized", b"\x98" + ramp[:33])
write("tts-audio", "header-stereo", b"\x38" + ramp[:8])
write("tts-audio", "riff-prefix", b"\x00RIF")

for name, text in [("turn", "I would like to book a table<end>\n"), ("tokens", "<fin>yes</s> <|endoftext|> please <EOS> I <3 you"),
                   ("error", '{"message":"Deepgram connection closed"}'), ("error-nested", '{"error":{"message":"bad key"}}'),
                   ("utf8", "ça coûte 5 € 😀 日本語\r\n")]:
    split_variants("asr-transcript", name, text.encode())
write("asr-transcript", "spaced-150ms", b"\x2b\x03\x05\x04" + b"I want to book a table<end>")
write("asr-transcript", "spaced-400ms", b"\x3a\x02\x04" + b"one two three\n")
write("asr-transcript", "spaced-cut-char", b"\x29\x01" + "é日本".encode())
# vad: [config, thresholds] + records [op, n] + n samples (op bit 0 agent, bits 1-2 gain, bits 3-7 repeats-1)
def vad_rec(samples, agent=False, gain=0, repeats=1):
    return bytes([(1 if agent else 0) | gain << 1 | (repeats - 1) << 3, len(samples)]) + slin16(samples)
def vad_noise(n, amp): return [random.randint(-amp, amp) for _ in range(n)]
write("vad", "silence", bytes([0x54, 0x40]) + vad_rec([0] * 160, repeats=32))
write("vad", "noise-then-tone", bytes([0x54, 0x40]) + vad_rec(vad_noise(160, 30), repeats=32) + vad_rec(tone(160, 8000, f=1000), repeats=20))
write("vad", "speechlike", bytes([0x14, 0x40]) + vad_rec(vad_noise(160, 30), repeats=16)
      + b"".join(vad_rec(tone(160, 6000 * (k % 3), off=160 * k, f=150 + 40 * k)) for k in range(30)))
write("vad", "echo", bytes([0x24, 0x40]) + b"".join(vad_rec(tone(160, 9000, off=160 * k, f=300 + 25 * k), agent=True)
      + vad_rec(tone(160, 900, off=160 * k, f=300 + 25 * k)) for k in range(40)))
write("vad", "frames-80-odd", bytes([0x01, 0xC0]) + b"".join(vad_rec(vad_noise(n, 2000), gain=1) for n in (1, 79, 80, 81, 255, 0, 17)))
write("vad", "clipped", bytes([0x13, 0x20]) + vad_rec(vad_noise(160, 20), repeats=10) + vad_rec(tone(160, 30000), gain=3, repeats=8))

# Asterisk's WebSocket channel on /media: masked client frames (MEDIA_START in both control
# formats, media, events, close); flag bit 0 (control byte 0x08) parses one control message.
def mf(op, payload, key=b"\x37\xfa\x21\x3d"):
    n = len(payload)
    head = bytes([0x80 | op]) + (bytes([0x80 | n]) if n <= 125 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
media_plain = b"MEDIA_START connection_id:avr channel:WebSocket/avr/0x1 channel_id:1.2 format:ulaw optimal_frame_size:160 ptime:20"
media_json = (b'{"event":"MEDIA_START","connection_id":"avr","channel":"WebSocket/avr/0x1","channel_id":"1.2","format":"slin16",'
              b'"optimal_frame_size":640,"ptime":20,"channel_variables":{"__AVR_UUID":"935652e3-7c59-4edc-b17f-9646a9c2a265"}}')
split_variants("ws-media", "plain", mf(1, media_plain) + mf(2, bytes(160)) + mf(1, b"DTMF_END digit:5 channel_id:1.2")
               + mf(1, b"MEDIA_XOFF") + mf(1, b"MEDIA_XON") + mf(8, b"\x03\xe8"))
split_variants("ws-media", "json", mf(1, media_json) + mf(2, bytes(640))
               + mf(1, b'{"event":"DTMF_END","channel_id":"1.2","digit":"#"}')
               + mf(1, b'{"event":"ERROR","channel_id":"1.2","error_text":"x"}'))
write("ws-media", "direct-plain", b"\x08" + media_plain)
write("ws-media", "direct-json", b"\x08" + media_json)
write("ws-media", "direct-error", b"\x08" + b"ERROR channel_id:1.2 error_text:FLUSH_MEDIA not supported in passthrough mode")
