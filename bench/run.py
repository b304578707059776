#!/usr/bin/env python3
"""The avr-core bench driver: builds release, runs the sweep against avr-core and against the
floor relay under the same load, prints one table and writes bench/results/<timestamp>.json.

    python3 bench/run.py                       # N = 50,100,200,400,800, 20 s steady state each
    python3 bench/run.py --calls 200 --duration 10 --loops 1,2
    python3 bench/run.py --wav in.wav --record out.wav   # one call: what did the caller hear
    python3 bench/run.py --micro-only                     # per-frame micro-benchmarks

Every process is started here and stopped here by PID; all traffic is on 127.0.0.1.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid, kernel_only=False):
    """utime + stime of one process (or stime alone), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[12]) + (0 if kernel_only else int(fields[11]))


def rss_kib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


class Proc:
    """A child process whose stdout lines we can wait for; stopped by PID only."""

    def __init__(self, name, argv, env=None, logdir=None, capture=False, session=False):
        self.name = name
        self.logpath = os.path.join(logdir, f"{name}.log")
        self.logfile = open(self.logpath, "w")
        # stdout goes to the log file (a pipe nobody drains would stall a chatty server),
        # except for the loadgen, whose one JSON line we read.
        self.p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE if capture else self.logfile,
                                  stderr=self.logfile, text=True, start_new_session=session)

    def wait_line(self, pattern, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.logpath) as f:
                for line in f:
                    m = re.search(pattern, line)
                    if m:
                        return m
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no line matching {pattern!r} (see {self.logpath})")

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL; returns the exit status (negative: killed by a signal)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logfile.close()
        return self.p.returncode

    @property
    def pid(self):
        return self.p.pid


def build(scratch):
    log("building release (swift build -c release) ...")
    cmd = ["swift", "build", "-c", "release"] + (["--scratch-path", scratch] if scratch else [])
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
    out = subprocess.run(cmd + ["--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def percentile_fields(h):
    return h["p50_ms"], h["p99_ms"], h["max_ms"]


def make_tls_files(logdir):
    """A test CA and a certificate for 127.0.0.1 (openssl CLI); returns (ca.pem, cert+key.pem)."""
    d = os.path.join(logdir, "tls")
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=avr bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf")
    with open(os.path.join(d, "server.pem"), "w") as f:
        for name in ("leaf.pem", "leaf.key"):
            f.write(open(os.path.join(d, name)).read())
    return os.path.join(d, "ca.pem"), os.path.join(d, "server.pem")


def tls_terminator(logdir, name, server_pem, ws_port, hook_port, max_version=None):
    """haproxy terminating TLS in front of the bench STS (wss) and webhook receiver (https);
    `max_version` "TLSv1.2" caps the protocol."""
    cap = f" ssl-max-ver {max_version}" if max_version else ""
    wss_port, https_port = free_port(), free_port()
    cfg = os.path.join(logdir, f"{name}.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend wss
    bind 127.0.0.1:{wss_port} ssl crt {server_pem}{cap}
    default_backend sts
frontend https
    bind 127.0.0.1:{https_port} ssl crt {server_pem}{cap}
    default_backend hooks
backend sts
    server s 127.0.0.1:{ws_port}
backend hooks
    server h 127.0.0.1:{hook_port}
""")
    proc = Proc(name, ["haproxy", "-db", "-f", cfg], logdir=logdir)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", wss_port), timeout=0.2).close()
            return proc, wss_port, https_port
        except OSError:
            if time.time() > deadline or proc.p.poll() is not None:
                proc.stop()
                raise RuntimeError(f"haproxy did not start (see {logdir}/{name}.log)")
            time.sleep(0.05)


def run_one(args, binpath, target, calls, loops, logdir, tls=None, ingress="audiosocket"):
    """One steady-state measurement of `target` ("avr-core" or "avr-floor") under `calls` calls;
    with `tls` (ca.pem, server.pem) the STS and webhooks are reached over TLS (haproxy in front).
    `ingress` "websocket": the callers are Asterisk WebSocket channels on avr-core's /media."""
    ramp = args.ramp or max(50.0, calls / 5.0)
    ramp_s = calls / ramp
    call_duration = args.duration + ramp_s
    window = (ramp_s + 1.0, ramp_s + args.duration - 0.5)
    ws_port, hook_port, port, http_port = free_port(), free_port(), free_port(), free_port()
    pipeline = args.mode == "pipeline"

    def pin(argv, role):
        # --pin: the server alone on CPU 0, the whole harness on CPU 1, so what the callers
        # measure is the server's pacing, not the scheduler sharing two cores among everyone.
        if not args.pin:
            return argv
        return ["taskset", "-c", "0" if role == "server" else "1"] + argv
    # In pipeline mode the bench STS only receives the webhooks; the bench ASR/LLM/TTS services
    # (bench/pipeline_services.js, or the aiohttp version with --services python) answer the
    # pipeline's requests.
    sts = Proc(f"sts-{target}-{calls}-{loops}", pin([f"{binpath}/avr-bench-sts", "--ws-port", str(ws_port),
               "--http-port", str(hook_port), "--mode", "steady" if pipeline else args.mode,
               "--interrupt-every", str(args.interrupt_every)], "harness"),
               logdir=logdir)
    server = None
    loadgen = None
    terminator = None
    services = None
    try:
        sts.wait_line(r"listening ws=(\d+)")
        env = dict(os.environ, DRAIN_TIMEOUT="0", PORT=str(port), STS_URL=f"ws://127.0.0.1:{ws_port}", LOG_LEVEL=args.log_level,
                   LOOPS=str(loops))
        if pipeline:
            program = ["node", os.path.join(ROOT, "bench", "pipeline_services.js")] if args.services == "node" else \
                [sys.executable, os.path.join(ROOT, "bench", "pipeline_services.py")]
            delays = []
            if args.llm_delay_ms or args.tts_delay_ms:
                if args.services != "node":
                    raise SystemExit("--llm-delay-ms/--tts-delay-ms need --services node")
                delays = ["--llm-delay-ms", str(args.llm_delay_ms), "--tts-delay-ms", str(args.tts_delay_ms)]
            services = Proc(f"pipeline-services-{calls}-{loops}", pin(program + [
                            "--asr-every", str(args.asr_every), "--tts-speed", str(args.tts_speed)] + delays, "harness"),
                            logdir=logdir)
            svc_port = int(services.wait_line(r"pipeline-bench listening port=(\d+)").group(1))
            del env["STS_URL"]
            env.update(ASR_URL=f"http://127.0.0.1:{svc_port}/speech-to-text-stream",
                       LLM_URL=f"http://127.0.0.1:{svc_port}/prompt-stream",
                       TTS_URL=f"http://127.0.0.1:{svc_port}/text-to-speech-stream",
                       SYSTEM_MESSAGE="Hello, this is the bench pipeline. How can I help?",
                       INTERRUPT_LISTENING="true" if args.interrupt_listening else "false")
        if target == "avr-core":
            env.update(HTTP_PORT=str(http_port), WEBHOOK_URL=f"http://127.0.0.1:{hook_port}/webhook")
        if tls:
            terminator, wss_port, https_port = tls_terminator(logdir, f"haproxy-{calls}-{loops}", tls[1], ws_port,
                                                              hook_port)
            env.update(STS_URL=f"wss://127.0.0.1:{wss_port}", WEBHOOK_URL=f"https://127.0.0.1:{https_port}/webhook",
                       TLS_CA_FILE=tls[0])
            if args.pin:
                subprocess.run(["taskset", "-a", "-pc", "1", str(terminator.pid)], capture_output=True, check=True)
        server = Proc(f"{target}-{calls}-{loops}", pin([f"{binpath}/{target}"], "server"), env=env, logdir=logdir)
        server.wait_line(r"listening on port %d" % port)
        time.sleep(0.3)
        rss_base = rss_kib(server.pid)
        lg_argv = [f"{binpath}/avr-loadgen", "--port", str(port), "--calls", str(calls), "--duration",
                   str(call_duration), "--ramp", str(ramp), "--codec", args.codec]
        if args.content != "tone":
            lg_argv += ["--content", args.content]
        if target == "avr-core":
            lg_argv += ["--http-port", str(http_port)]
        if args.dtmf_every:
            lg_argv += ["--dtmf-every", str(args.dtmf_every)]
        if ingress == "websocket":
            # Asterisk's WebSocket channel on the HTTP port's /media instead of AudioSocket.
            lg_argv += ["--ingress", "websocket", "--media-port", str(http_port)]
        if args.mode in ("steady", "pipeline"):
            lg_argv += ["--no-echo"]  # pipeline: what plays is TTS audio, not the caller's stamped frames
        if args.line_echo_db is not None:
            # A 2-wire line: the pipeline's echo canceller then has an echo to remove.
            lg_argv += ["--line-echo-db", str(args.line_echo_db), "--line-echo-ms", str(args.line_echo_ms)]
        onsets_path = None
        if pipeline and args.services == "node":
            onsets_path = os.path.join(logdir, f"onsets-{calls}-{loops}.txt")
            lg_argv += ["--onsets-out", onsets_path]
        started = time.time()
        loadgen = Proc(f"loadgen-{target}-{calls}-{loops}", pin(lg_argv, "harness"), logdir=logdir, capture=True)
        pids = {"server": server.pid, "loadgen": loadgen.pid, "sts": sts.pid}
        if terminator:
            pids["tls_terminator"] = terminator.pid
        if services:
            pids["services"] = services.pid

        scraper = Scraper(http_port, args.scrape) if target == "avr-core" and args.scrape > 0 else None
        time.sleep(max(0.0, started + window[0] - time.time()))
        if scraper:
            scraper.start()
        late0 = tick_lateness_or_none(http_port) if target == "avr-core" else None
        load0 = loadavg()
        t0 = time.time()
        c0 = {k: cpu_ticks(v) for k, v in pids.items()}
        s0 = cpu_ticks(server.pid, kernel_only=True)
        time.sleep(max(0.0, (window[1] - window[0]) / 2))
        rss_mid = rss_kib(server.pid)
        time.sleep(max(0.0, started + window[1] - time.time()))
        t1 = time.time()
        c1 = {k: cpu_ticks(v) for k, v in pids.items()}
        load1 = loadavg()
        s1 = cpu_ticks(server.pid, kernel_only=True)
        late1 = tick_lateness_or_none(http_port) if late0 is not None else None
        lateness = lateness_summary(late0, late1) if late1 is not None else None
        seconds = t1 - t0
        scrapes = scraper.stop() if scraper else None

        out, _ = loadgen.p.communicate(timeout=call_duration + ramp_s + 60)
        result = json.loads(out.strip().splitlines()[-1])
        with urllib.request.urlopen(f"http://127.0.0.1:{hook_port}/stats", timeout=5) as response:
            sts_stats = json.load(response)
        services_stats = None
        turn_latency = None
        if services:
            with urllib.request.urlopen(f"http://127.0.0.1:{svc_port}/stats", timeout=5) as response:
                services_stats = json.load(response)
            if onsets_path:
                with urllib.request.urlopen(f"http://127.0.0.1:{svc_port}/transcripts", timeout=5) as response:
                    transcripts = json.load(response)
                turn_latency = pipeline_turn_latency(transcripts, onsets_path, args.llm_delay_ms + args.tts_delay_ms)
    finally:
        server_status = server.stop() if server else None
        if loadgen and loadgen.p.poll() is None:
            loadgen.stop()
        if terminator:
            terminator.stop()
        if services:
            services.stop()
        sts.stop()

    cpu_ms = {k: (c1[k] - c0[k]) * 1000.0 / CLK_TCK for k in c0}
    expected_hooks = None
    received_hooks = None
    if target == "avr-core" and not pipeline:
        expected_hooks = calls * 3 + result["dtmf_sent"] + sts_stats["sts_interruptions"] * 2
        received_hooks = sum(sts_stats["webhooks"].values())
    return {
        "target": target + ("+tls" if tls else ""), "ingress": ingress, "calls": calls, "loops": loops, "window_s": seconds, "ramp_per_s": ramp,
        "cpu_ms_per_call_s": cpu_ms["server"] / (calls * seconds),
        "cpu_pct": cpu_ms["server"] / seconds / 10.0,
        "cpu_kernel_share": (s1 - s0) / max(1, c1["server"] - c0["server"]),
        "rss_base_kib": rss_base, "rss_mid_kib": rss_mid, "rss_kib_per_call": (rss_mid - rss_base) / calls,
        "harness_cpu_pct": {k: cpu_ms[k] / seconds / 10.0 for k in cpu_ms if k != "server"},
        "webhooks_received": received_hooks, "webhooks_expected": expected_hooks,
        "server_exit_status": server_status, "loadgen": result, "sts": sts_stats, "scrapes": scrapes,
        "mode": args.mode, "pipeline_services": services_stats, "tick_lateness": lateness,
        "turn_latency": turn_latency, "loadavg": [load0, load1],
    }


def pipeline_turn_latency(transcripts, onsets_path, modules_ms):
    """Per user turn: the bench ASR wrote the transcript (unix µs, [uuid, turn, us]) -> the
    load generator heard the first frame of that turn's answer (the TTS marker, `uuid turn us`
    lines). Core-added = that minus the modules' own time (--llm-delay-ms + --tts-delay-ms).
    Turns never answered (superseded by the next one, a DTMF digit, or the end of the call)
    are counted, not timed."""
    heard = {}
    try:
        with open(onsets_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    key = (parts[0], int(parts[1]))
                    heard.setdefault(key, int(parts[2]))
    except OSError:
        return None
    latencies, added, measured = [], [], []
    for uuid, turn, sent, llm_ms, tts_ms in transcripts:
        at = heard.get((uuid, int(turn)))
        if at is None or at < sent:
            continue
        latency = (at - sent) / 1000.0
        # The modules' own time as the services measured it (their timers run late on a busy
        # machine), the nominal delays when a service did not note it.
        modules = llm_ms + tts_ms if llm_ms is not None and tts_ms is not None else modules_ms
        latencies.append(latency)
        measured.append(modules)
        added.append(latency - modules)
    if not latencies:
        return {"turns": len(transcripts), "answered": 0, "modules_ms": modules_ms}

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]
    return {"turns": len(transcripts), "answered": len(latencies), "modules_ms": modules_ms,
            "modules_measured_p50_ms": pct(measured, 50),
            "latency_p50_ms": pct(latencies, 50), "latency_p99_ms": pct(latencies, 99), "latency_max_ms": max(latencies),
            "core_added_p50_ms": pct(added, 50), "core_added_p99_ms": pct(added, 99), "core_added_max_ms": max(added)}


def tick_lateness(port):
    """avr-core's own pacing: the avr_loop_lateness_seconds histogram (all loops), cumulative
    counts per bucket bound in seconds, from /metrics."""
    buckets = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            m = re.match(r'avr_loop_lateness_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line)
            if m:
                bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                buckets[bound] = buckets.get(bound, 0) + float(m.group(2))
    return buckets


def tick_lateness_or_none(port):
    """tick_lateness, or None when /metrics does not answer in time (a machine so loaded that
    the scrape times out still yields the run's other figures)."""
    try:
        return tick_lateness(port)
    except OSError as error:
        log(f"GET /metrics failed ({error}): no server pacing figure for this run")
        return None


def lateness_summary(before, after):
    """Ticks in the window, the share later than 2 ms, and the bucket bound holding the p99."""
    delta = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    total = delta.get(float("inf"), 0)
    if total <= 0:
        return None
    p99 = next((b for b in sorted(delta) if delta[b] >= 0.99 * total), float("inf"))
    return {"ticks": total, "over_2ms_pct": 100.0 * (total - delta.get(0.002, 0)) / total, "p99_le_ms": p99 * 1000}


class Scraper:
    """GET /metrics every `interval` seconds on its own thread (what a Prometheus server does)."""

    def __init__(self, port, interval):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.done = threading.Event()
        self.count = 0
        self.errors = 0
        self.bytes = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    self.bytes = len(response.read())
                    self.count += 1
            except OSError:
                self.errors += 1
            self.done.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self):
        self.done.set()
        self.thread.join(timeout=10)
        return {"count": self.count, "errors": self.errors, "last_bytes": self.bytes}


def meets_bar(row):
    lg = row["loadgen"]
    # Pipeline mode: the agent's audio is TTS audio, not echoed stamps, so loss is not measurable (-1).
    lost_ok = lg["lost"] == 0 or (row.get("mode") == "pipeline" and lg["lost"] == -1)
    return (lg["failed"] == 0 and lost_ok and lg["wrong_call"] == 0 and lg["calls_stalled"] == 0
            and lg["jitter"]["p99_ms"] <= 2.0)


def core_added_cell(row):
    """Pipeline: transcript -> first answer frame at the caller, minus the modules' time."""
    t = row.get("turn_latency")
    if not t or not t.get("answered"):
        return "-" if not t else f"- (0/{t['turns']})"
    return f"{t['core_added_p50_ms']:.1f}/{t['core_added_p99_ms']:.1f} ({t['answered']}/{t['turns']})"


def run_label(row):
    """N, then " tls" and " ws" (WebSocket ingress) when they apply."""
    return (str(row["calls"]) + (" tls" if row["target"].endswith("+tls") else "")
            + (" ws" if row.get("ingress") == "websocket" else ""))


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def print_table(rows, floors):
    head = ("N", "loops", "core ms/call-s", "floor ms/call-s", "ratio", "core CPU%", "floor CPU%", "RSS KiB/call",
            "kernel share", "jitter p50/p99/max ms", "echo p50/p99/max ms", "lost", "wrong", "stalls", "webhooks rcv/exp",
            "harness CPU% lg+sts(+svc)", "floor jitter p99", "floor echo p99", "load 1m")
    pipeline = any(row.get("mode") == "pipeline" for row in rows)
    if pipeline:
        head += ("turn core-added p50/p99 ms (answered/turns)",)
    lines = [head]
    for row in rows:
        lg = row["loadgen"]
        floor = floors.get(row["calls"])
        f_ms = floor["cpu_ms_per_call_s"] if floor else None
        lines.append((
            run_label(row), str(row["loops"]),
            f"{row['cpu_ms_per_call_s']:.3f}",
            f"{f_ms:.3f}" if f_ms else "-",
            f"{row['cpu_ms_per_call_s'] / f_ms:.2f}" if f_ms else "-",
            f"{row['cpu_pct']:.1f}", f"{floor['cpu_pct']:.1f}" if floor else "-",
            f"{row['rss_kib_per_call']:.1f}", f"{row['cpu_kernel_share'] * 100:.0f}%",
            "%.2f/%.2f/%.1f" % percentile_fields(lg["jitter"]),
            "%.1f/%.1f/%.1f" % percentile_fields(lg["latency"]),
            str(lg["lost"]), str(lg["wrong_call"]), f"{lg['stalls']} ({lg['calls_stalled']} calls)",
            f"{row['webhooks_received']}/{row['webhooks_expected']}" if row["webhooks_expected"] is not None else "-",
            "%.1f+%.1f" % (row["harness_cpu_pct"]["loadgen"], row["harness_cpu_pct"]["sts"])
            + ("+%.1f" % row["harness_cpu_pct"]["services"] if "services" in row["harness_cpu_pct"] else ""),
            "%.2f" % floor["loadgen"]["jitter"]["p99_ms"] if floor else "-",
            "%.1f" % floor["loadgen"]["latency"]["p99_ms"] if floor else "-",
            "%.1f-%.1f" % tuple(row["loadavg"]) if row.get("loadavg") else "-",
        ) + ((core_added_cell(row),) if pipeline else ()))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for index, line in enumerate(lines):
        print(" | ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)))
        if index == 0:
            print("-+-".join("-" * w for w in widths))


def core_added_latency(rows, floors):
    """The echo path's caller-to-caller latency p50/p99 of each avr-core run minus the floor's
    at the same N in the same sweep: what the core adds over bare relaying and pacing. Stored
    in each row as `core_added_latency`; printed with the bars (p50 <= +1 ms, p99 <= +5 ms)."""
    lines = []
    for row in rows:
        floor = floors.get(row["calls"])
        core, ref = row["loadgen"].get("latency") or {}, (floor or {}).get("loadgen", {}).get("latency") or {}
        if not floor or row.get("mode") == "pipeline" or not core.get("p50_ms") or not ref.get("p50_ms"):
            continue
        added = {"p50_ms": core["p50_ms"] - ref["p50_ms"], "p99_ms": core["p99_ms"] - ref["p99_ms"],
                 "core_p50_ms": core["p50_ms"], "core_p99_ms": core["p99_ms"],
                 "floor_p50_ms": ref["p50_ms"], "floor_p99_ms": ref["p99_ms"]}
        added["meets_bar"] = added["p50_ms"] <= 1.0 and added["p99_ms"] <= 5.0
        row["core_added_latency"] = added
        lines.append(f"core-added latency N={run_label(row)} "
                     f"LOOPS={row['loops']}: p50 {added['p50_ms']:+.2f} ms ({core['p50_ms']:.2f} vs floor "
                     f"{ref['p50_ms']:.2f}), p99 {added['p99_ms']:+.2f} ms ({core['p99_ms']:.2f} vs floor "
                     f"{ref['p99_ms']:.2f}); bar p50 <= +1, p99 <= +5: {'met' if added['meets_bar'] else 'missed'}")
    for line in lines:
        print(line)


def microbench(binpath, logdir):
    """ns/frame natively; instructions and allocations per frame under valgrind (if present)."""
    native = json.loads(subprocess.run([f"{binpath}/avr-microbench", "--json"], capture_output=True, text=True,
                                       check=True, timeout=300).stdout.strip().splitlines()[-1])
    rows = {name: {"ns_per_frame": ns} for name, ns in native.items()}
    have_valgrind = subprocess.run(["sh", "-c", "command -v valgrind"], capture_output=True).returncode == 0
    if have_valgrind:
        # Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits: use a copy without it.
        stripped = os.path.join(logdir, "avr-microbench.stripped")
        subprocess.run(["objcopy", "--strip-debug", f"{binpath}/avr-microbench", stripped], check=True)
        small, large = 1000, 3000
        for name in rows:
            def measure(tool, iterations, pattern):
                out = subprocess.run(["valgrind", f"--tool={tool}", "--callgrind-out-file=/dev/null"
                                      if tool == "callgrind" else "--leak-check=no",
                                      stripped, "--only", name, "--iterations", str(iterations),
                                      "--json"], capture_output=True, text=True, timeout=600).stderr
                m = re.search(pattern, out)
                return int(m.group(1).replace(",", "")) if m else None
            ir = [measure("callgrind", k, r"Collected : (\d+)") for k in (small, large)]
            allocs = [measure("memcheck", k, r"total heap usage: ([\d,]+) allocs") for k in (small, large)]
            if None not in ir:
                rows[name]["instructions_per_frame"] = (ir[1] - ir[0]) / (large - small)
            if None not in allocs:
                rows[name]["allocations_per_frame"] = (allocs[1] - allocs[0]) / (large - small)
    print()
    print("micro-benchmarks (per 20 ms frame)")
    print(f"{'case':28} {'ns':>9} {'instructions':>13} {'allocs':>7}")
    for name, row in rows.items():
        ins = row.get("instructions_per_frame")
        alc = row.get("allocations_per_frame")
        print(f"{name:28} {row['ns_per_frame']:9.1f} {ins if ins is None else round(ins):>13} "
              f"{'-' if alc is None else round(alc, 2):>7}")
    return rows


def handshake_bench(binpath, logdir, count=400):
    """CPU of avr-core's client side per connection (plain TCP, full TLS handshake, resumed),
    against haproxy terminating TLS 1.3 and then TLS 1.2."""
    ca, pem = make_tls_files(logdir)
    rows = {}
    for version in ("TLSv1.3", "TLSv1.2"):
        proc, port, _ = tls_terminator(logdir, f"haproxy-handshakes-{version}", pem, free_port(), free_port(),
                                       max_version=None if version == "TLSv1.3" else version)
        try:
            out = subprocess.run([f"{binpath}/avr-microbench", "--tls-handshakes", str(port), "--ca", ca,
                                  "--count", str(count)], capture_output=True, text=True, check=True, timeout=300)
            rows[version] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            proc.stop()
    print()
    print(f"TLS handshake CPU in the client (avr-core's side), us per connection, {count} sequential connections")
    print(f"{'protocol':9} {'plain TCP':>9} {'full':>6} {'resumed':>8} {'full-TCP':>9} {'resumed-TCP':>12} {'ratio':>6}")
    for version, r in rows.items():
        full, resumed = r["full_us"] - r["plain_us"], r["resumed_us"] - r["plain_us"]
        r["resumed_over_full"] = resumed / full if full > 0 else None
        print(f"{version:9} {r['plain_us']:9} {r['full_us']:6} {r['resumed_us']:8} {full:9} {resumed:12} "
              f"{r['resumed_over_full']:6.2f}   ({r['resumed_resumed']}/{count} resumed)")
    return rows


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}


def wav_mode(args, binpath, logdir):
    ws_port, port = free_port(), free_port()
    sts = Proc("sts-wav", [f"{binpath}/avr-bench-sts", "--ws-port", str(ws_port), "--mode", args.mode], logdir=logdir)
    server = None
    try:
        sts.wait_line(r"listening ws=")
        env = dict(os.environ, DRAIN_TIMEOUT="0", PORT=str(port), STS_URL=f"ws://127.0.0.1:{ws_port}", LOG_LEVEL=args.log_level)
        server = Proc("avr-core-wav", [f"{binpath}/avr-core"], env=env, logdir=logdir)
        server.wait_line(r"listening on port %d" % port)
        argv = [f"{binpath}/avr-loadgen", "--port", str(port), "--wav", args.wav, "--codec", args.codec]
        if args.record:
            argv += ["--record", args.record]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if server:
            server.stop()
        sts.stop()
    print(json.dumps(result, indent=2))
    if args.record:
        log(f"recording written to {args.record}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="50,100,200,400,800", help="comma-separated N (a single N = single run)")
    parser.add_argument("--duration", type=float, default=20.0, help="steady-state seconds per run")
    parser.add_argument("--loops", default="1", help="comma-separated LOOPS values for avr-core")
    parser.add_argument("--ramp", type=float, default=0, help="calls started per second (default max(50, N/5))")
    parser.add_argument("--mode", default="echo", choices=["echo", "steady", "interrupt", "pipeline"],
                        help="pipeline: ASR_URL/LLM_URL/TTS_URL to the bench pipeline services instead of STS_URL "
                             "(no floor runs: the floor is an STS relay)")
    parser.add_argument("--services", default="node", choices=["node", "python"],
                        help="pipeline: bench/pipeline_services.js (Node http, as the real modules) or "
                             "bench/pipeline_services.py (aiohttp)")
    parser.add_argument("--asr-every", type=float, default=4.0, help="pipeline: seconds of caller audio per transcript")
    parser.add_argument("--tts-speed", type=float, default=4.0, help="pipeline: TTS audio sent this many times real time")
    parser.add_argument("--llm-delay-ms", type=float, default=0.0,
                        help="pipeline: the bench LLM's time to first byte (its first sentence comes whole then)")
    parser.add_argument("--tts-delay-ms", type=float, default=0.0,
                        help="pipeline: the bench TTS's time to first byte. The table's turn core-added column is "
                             "transcript -> first answer frame at the caller minus these two delays (bar: <= 25 ms "
                             "when they add up to more than ASR_DEBOUNCE_MS; below it the debounce shows)")
    parser.add_argument("--interrupt-listening", action="store_true",
                        help="pipeline: INTERRUPT_LISTENING=true (no barge-in; default false, the VAD runs)")
    parser.add_argument("--line-echo-db", type=float, default=None,
                        help="pipeline: each simulated caller returns what it hears this many dB quieter (the "
                             "line's echo return loss), as a 2-wire line does; the echo canceller then works on "
                             "every frame the agent speaks (default: no echo)")
    parser.add_argument("--line-echo-ms", type=int, default=60, help="pipeline: the line echo's delay (steps of 20)")
    parser.add_argument("--interrupt-every", type=float, default=2.0)
    parser.add_argument("--codec", default="slin", choices=["slin", "ulaw", "alaw"])
    parser.add_argument("--content", default="tone", choices=["tone", "loud", "noise", "sawtooth", "quiet"],
                        help="caller audio after the stamp (loud: full-scale noise; see avr-loadgen --help)")
    parser.add_argument("--dtmf-every", type=float, default=5.0, help="a DTMF digit per call every S seconds (0: none)")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor reference runs")
    parser.add_argument("--ingress", default="audiosocket",
                        help="how the simulated Asterisk reaches avr-core: audiosocket, websocket (the WebSocket "
                             "channel on the HTTP port's /media), or both as a list (audiosocket,websocket): each N "
                             "then runs avr-core once per ingress, back to back, and the CPU ratio is printed")
    parser.add_argument("--scrape", type=float, default=0,
                        help="GET /metrics from avr-core every S seconds during each run (0: no scraping)")
    parser.add_argument("--pin", action="store_true",
                        help="taskset: the server on CPU 0, every harness process on CPU 1")
    parser.add_argument("--tls", action="store_true",
                        help="also run avr-core with wss:// STS and https:// webhooks (haproxy terminates TLS)")
    parser.add_argument("--micro", action="store_true", help="also run the micro-benchmarks")
    parser.add_argument("--micro-only", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--scratch-path", default=os.environ.get("BENCH_SCRATCH"))
    parser.add_argument("--log-level", default="info", help="avr-core LOG_LEVEL during runs")
    parser.add_argument("--wav", help="one call: play this 8 kHz mono 16-bit WAV")
    parser.add_argument("--record", help="with --wav: write what came back to this WAV")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()

    if args.no_build:
        cmd = ["swift", "build", "-c", "release", "--show-bin-path"] + (
            ["--scratch-path", args.scratch_path] if args.scratch_path else [])
        binpath = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    else:
        binpath = build(args.scratch_path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join("/tmp", f"avr-bench-{stamp}-{os.getpid()}")
    os.makedirs(logdir, exist_ok=True)
    log(f"logs in {logdir}")

    if args.wav:
        return wav_mode(args, binpath, logdir)
    if args.micro_only:
        microbench(binpath, logdir)
        return

    ingresses = [x for x in args.ingress.split(",") if x]
    if not ingresses or any(x not in ("audiosocket", "websocket") for x in ingresses):
        raise SystemExit("--ingress: audiosocket, websocket, or a comma-separated list of them")
    if args.line_echo_db is not None and (args.mode != "pipeline" or args.codec != "slin" or ingresses != ["audiosocket"]):
        raise SystemExit("--line-echo-db: --mode pipeline, --codec slin, --ingress audiosocket")
    if args.mode == "pipeline" or "audiosocket" not in ingresses:
        args.no_floor = True  # the floor relays AudioSocket to an STS
    counts = [int(x) for x in args.calls.split(",") if x]
    loop_values = [int(x) for x in args.loops.split(",") if x]
    rows, floors = [], {}
    for calls in counts:
        for loops in loop_values:
            for ingress in ingresses:
                log(f"avr-core  N={calls} LOOPS={loops} ingress={ingress} ...")
                rows.append(run_one(args, binpath, "avr-core", calls, loops, logdir, ingress=ingress))
            if args.tls:
                log(f"avr-core+tls N={calls} LOOPS={loops} ingress={ingresses[0]} ...")
                rows.append(run_one(args, binpath, "avr-core", calls, loops, logdir, tls=make_tls_files(logdir),
                                    ingress=ingresses[0]))
        if not args.no_floor:
            log(f"avr-floor N={calls} ...")
            floors[calls] = run_one(args, binpath, "avr-floor", calls, 1, logdir)

    print()
    print(f"avr-core vs floor — {args.mode}{'' if args.mode == 'pipeline' else ' STS'}, {args.codec} ({args.content}), {args.duration:g} s steady state per run, "
          f"{machine()['cores']} cores ({machine()['cpu']})")
    print_table(rows, floors)
    for row in rows:
        t = row.get("turn_latency")
        if t and t.get("answered"):
            print(f"pipeline turns N={row['calls']} LOOPS={row['loops']}: {t['answered']}/{t['turns']} answered; transcript -> "
                  f"first answer frame p50 {t['latency_p50_ms']:.1f} p99 {t['latency_p99_ms']:.1f} ms, modules' own time "
                  f"p50 {t['modules_measured_p50_ms']:.1f} ms (nominal {t['modules_ms']:g}); core-added p50 "
                  f"{t['core_added_p50_ms']:.1f} p99 {t['core_added_p99_ms']:.1f} max {t['core_added_max_ms']:.1f} ms "
                  f"(bar <= 25 ms when the modules take longer than ASR_DEBOUNCE_MS)")
    for row in rows:
        late = row.get("tick_lateness")
        if late:
            print(f"server pacing N={run_label(row)} LOOPS={row['loops']}: "
                  f"{late['ticks']:.0f} ticks, {late['over_2ms_pct']:.2f}% fired more than 2 ms late, "
                  f"p99 within {late['p99_le_ms']:g} ms (avr_loop_lateness_seconds)")
    core_added_latency(rows, floors)
    knees = {}
    for loops in loop_values:
        for variant in ["avr-core"] + (["avr-core+tls"] if args.tls else []):
            for ingress in ingresses:
                passing = [r["calls"] for r in rows if r["loops"] == loops and r["target"] == variant
                           and r["ingress"] == ingress and meets_bar(r)]
                key = (loops if variant == "avr-core" else f"{loops}+tls") if ingress == "audiosocket" else \
                    (f"{loops} ws" if variant == "avr-core" else f"{loops}+tls ws")
                knees[key] = max(passing) if passing else None
                print(f"knee (largest N with 0 lost, 0 cross-talk, no stalls, jitter p99 <= 2 ms), {variant}, "
                      f"{ingress}, LOOPS={loops}: {knees[key] if knees[key] else 'none of the N tried'}")
    for ws in [r for r in rows if r["ingress"] == "websocket"]:
        audio = next((r for r in rows if r["ingress"] == "audiosocket" and r["target"] == ws["target"]
                      and r["calls"] == ws["calls"] and r["loops"] == ws["loops"]), None)
        if audio:
            ratio = ws["cpu_ms_per_call_s"] / audio["cpu_ms_per_call_s"]
            ws["cpu_vs_audiosocket"] = ratio
            print(f"WebSocket vs AudioSocket N={ws['calls']} LOOPS={ws['loops']}: {audio['cpu_ms_per_call_s']:.3f} -> "
                  f"{ws['cpu_ms_per_call_s']:.3f} ms/call-s ({ratio:.2f}x; bar <= 1.3x), RSS/call "
                  f"{audio['rss_kib_per_call']:.1f} -> {ws['rss_kib_per_call']:.1f} KiB, lost {audio['loadgen']['lost']} -> "
                  f"{ws['loadgen']['lost']}, jitter p99 {audio['loadgen']['jitter']['p99_ms']:.2f} -> "
                  f"{ws['loadgen']['jitter']['p99_ms']:.2f} ms, load {audio['loadavg'][0]:.1f} / {ws['loadavg'][0]:.1f}")
    if args.tls:
        for plain in [r for r in rows if r["target"] == "avr-core" and r["ingress"] == "audiosocket"]:
            tls_row = next((r for r in rows if r["target"] == "avr-core+tls" and r["calls"] == plain["calls"]
                            and r["loops"] == plain["loops"] and r["ingress"] == "audiosocket"), None)
            if tls_row:
                print(f"TLS CPU cost N={plain['calls']} LOOPS={plain['loops']}: "
                      f"{plain['cpu_ms_per_call_s']:.3f} -> {tls_row['cpu_ms_per_call_s']:.3f} ms/call-s "
                      f"(+{(tls_row['cpu_ms_per_call_s'] / plain['cpu_ms_per_call_s'] - 1) * 100:.0f}%)")
    for row in rows:
        if row["server_exit_status"] not in (0, None):
            print(f"note: avr-core N={row['calls']} exited with status {row['server_exit_status']} on SIGTERM "
                  f"(see logs in {logdir})")
    micro = microbench(binpath, logdir) if args.micro else None
    handshakes = handshake_bench(binpath, logdir) if args.tls else None

    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, f"{stamp}.json")
    with open(path, "w") as f:
        json.dump({"timestamp": stamp, "command": " ".join(sys.argv), "machine": machine(), "options": vars(args),
                   "runs": rows, "floor": list(floors.values()), "knee": knees, "micro": micro,
                   "tls_handshakes": handshakes}, f, indent=1)
    print(f"\nresults: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
