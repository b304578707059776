#!/usr/bin/env python3
"""The avr-core soak: calls of random length arriving and ending (every codec, DTMF, webhooks
on) against the release server, while faults are injected, then a verdict.

    python3 bench/soak.py --duration 60 --calls 50 --churn 10      # CI's minute
    python3 bench/soak.py --duration 1800 --calls 400 --churn 30   # the half hour

Faults, once per cycle (a 60 s run has one cycle; a long run one every ~5 minutes):
  sts-kill   the STS process gets SIGKILL, and is restarted on the same port 2 s later;
  hook-stall the webhook receiver stops answering for 2.5 x WEBHOOK_TIMEOUT, then catches up;
  idle       2,000 idle TCP connections on EACH port (AudioSocket, HTTP), held, then closed;
  emfile     `prlimit --pid <server> --nofile=N:HARD`, N below the fds in use, then N restored
             (the soft limit: a process may lower its hard limit but not raise it back without
             CAP_SYS_RESOURCE, and the soft limit is what accept() runs into).

Verdict (exit status 1 on any violation): the server never died and exits 0 on SIGTERM;
call_ended exactly once for every call whose UUID the server read (it answered on the
AudioSocket connection) and for every call_started; no stamped frame lost by a call the
caller ended, no cross-talk, no corrupted echo; a log line names EMFILE and the server
accepts again (HTTP probe, and completed calls placed after each fault); RSS and fd count in
the last steady window within tolerance of the first (medians of 1 s samples); fds back to
the pre-load count once the load is gone. Summary JSON: bench/results/soak-<timestamp>.json.

Every process is started here and stopped here by PID; all traffic is on 127.0.0.1.
"""
import argparse
import datetime
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the bench driver: Proc, build, free_port, machine)

ROOT = bench.ROOT
log = bench.log


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def nofile_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise RuntimeError("no fd limit in /proc/PID/limits")


def connections_to(port):
    """Established TCP connections to 127.0.0.1:port (the server's keep-alive pool to the
    webhook receiver: nothing else connects there for long)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and fields[2] == f"0100007F:{port:04X}":
                count += 1
    return count


def http(port, method, path, timeout=5.0):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def http_probe(port, timeout=5.0):
    """True when the server answers GET /health on a new connection within `timeout`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


class Sampler(threading.Thread):
    """RSS (VmRSS) and fd count of the server once a second; notices the server dying."""

    def __init__(self, server, t0, hook_port):
        super().__init__(daemon=True)
        self.server, self.t0, self.hook_port = server, t0, hook_port
        self.samples = []  # (t, rss_kib, fds, webhook keep-alive connections among them)
        self.died_at = None
        self.status = None
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            if self.server.p.poll() is not None:
                self.died_at = round(time.time() - self.t0, 2)
                self.status = self.server.p.returncode
                log(f"[soak t={self.died_at}s] THE SERVER DIED: exit status {self.status}")
                return
            try:
                self.samples.append((round(time.time() - self.t0, 2), vm_rss_kib(self.server.pid), fd_count(self.server.pid),
                                     connections_to(self.hook_port)))
            except OSError:
                pass
            self.stop_event.wait(1.0)

    def window(self, start, end):
        rows = [s for s in self.samples if start <= s[0] <= end]
        if not rows:
            return None
        # fds: the webhook keep-alive pool (bounded, grows with the peak of concurrent
        # deliveries, e.g. the catch-up after a stall) is not counted; `fds_raw` is.
        return {"from_s": start, "to_s": end, "samples": len(rows),
                "rss_kib": statistics.median(r[1] for r in rows), "fds": statistics.median(r[2] - r[3] for r in rows),
                "fds_raw": statistics.median(r[2] for r in rows),
                "webhook_keepalive": statistics.median(r[3] for r in rows)}


def plan(duration, calls, ramp):
    """Times (s from load start) of the steady windows and of each fault."""
    ramp_s = calls / ramp
    warm = ramp_s + 5.0
    window = min(60.0, 0.15 * duration)
    tail = 2.0
    first = (warm, warm + window)
    last = (duration - tail - window, duration - tail)
    region = (first[1], last[0])
    span = region[1] - region[0]
    if span < 25:
        raise SystemExit(f"--duration {duration} is too short for the fault cycle (needs about {duration + 25 - span:.0f} s)")
    cycles = max(1, int(span // 300))
    length = span / cycles
    faults = []
    for index in range(cycles):
        start = region[0] + index * length
        faults.append(("sts-kill", start + 0.08 * length, 2.0))
        faults.append(("hook-stall", start + 0.25 * length, None))
        faults.append(("idle", start + 0.45 * length, min(30.0, max(4.0, 0.15 * length))))
        faults.append(("emfile", start + 0.72 * length, min(15.0, max(3.0, 0.08 * length))))
    # After the first cycle's faults (they end by 0.8 of the cycle): the same phase as `last`.
    settled = (region[0] + 0.85 * length, region[0] + length) if cycles > 1 else None
    return {"first_window": first, "settled_window": settled, "last_window": last, "cycles": cycles, "cycle_s": length,
            "faults": faults}


class Soak:
    def __init__(self, args, binpath, logdir):
        self.args, self.binpath, self.logdir = args, binpath, logdir
        self.events = []      # what happened when, for the summary
        self.violations = []
        self.checks = {}
        self.sts = None
        self.sts_generation = 0

    def note(self, what, **fields):
        entry = {"t": round(time.time() - self.t0, 2), "event": what, **fields}
        self.events.append(entry)
        log(f"[soak t={entry['t']:.1f}s] {what} " + " ".join(f"{k}={v}" for k, v in fields.items()))

    def fail(self, message):
        self.violations.append(message)
        log(f"[soak] VIOLATION: {message}")

    def start_sts(self):
        self.sts_generation += 1
        self.sts = bench.Proc(f"sts-{self.sts_generation}", [f"{self.binpath}/avr-bench-sts", "--ws-port", str(self.sts_port),
                              "--http-port", "0", "--mode", "echo"], logdir=self.logdir)
        self.sts.wait_line(r"listening ws=(\d+)")

    def server_log_since(self, offset):
        with open(self.server.logpath, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def log_size(self):
        return os.path.getsize(self.server.logpath)

    # MARK: faults

    def fault_sts_kill(self, down_s):
        offset = self.log_size()
        self.sts_ticks += bench.cpu_ticks(self.sts.pid)
        os.kill(self.sts.pid, signal.SIGKILL)
        self.sts.p.wait()
        self.sts.logfile.close()
        self.note("sts-kill", pid=self.sts.pid)
        time.sleep(down_s)
        self.start_sts()
        restarted = time.time() - self.t0
        self.note("sts-restarted", pid=self.sts.pid)
        time.sleep(1.0)
        text = self.server_log_since(offset)
        lines = sum(1 for line in text.splitlines() if "STS connection failed" in line or "STS closed" in line
                    or "Call ended: STS" in line)
        self.note("sts-kill-log", lines_naming_sts=lines)
        if lines == 0:
            self.fail("no server log line names the STS failure after the STS was killed")
        self.recoveries.append(("sts-kill", restarted))

    def fault_hook_stall(self):
        stall_s = 2.5 * self.args.webhook_timeout / 1000.0
        http(self.hook_port, "POST", "/control/stall")
        self.note("hook-stall", seconds=stall_s)
        time.sleep(stall_s)
        stats = json.loads(http(self.hook_port, "GET", "/stats"))
        http(self.hook_port, "POST", "/control/resume")
        self.note("hook-resume", held=stats["webhook_held"])
        self.recoveries.append(("hook-stall", time.time() - self.t0))

    def fault_idle(self, hold_s):
        held = []
        opened = {"audiosocket": 0, "http": 0}
        deadline = time.time() + 20
        for name, port in (("audiosocket", self.port), ("http", self.http_port)):
            for _ in range(self.args.idle_connections):
                if time.time() > deadline:
                    break
                try:
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                    opened[name] += 1
                except OSError:
                    break
        self.note("idle-open", **opened)
        time.sleep(1.0)
        fds = fd_count(self.server.pid)
        rss = vm_rss_kib(self.server.pid)
        self.idle_rss.append(rss)
        probe = http_probe(self.http_port)
        self.note("idle-held", server_fds=fds, server_rss_kib=rss, http_probe=probe)
        for name, count in opened.items():
            if count < self.args.idle_connections:
                self.fail(f"only {count} of {self.args.idle_connections} idle connections could be opened on the {name} port")
        if not probe:
            self.fail("the HTTP port did not answer GET /health while the idle connections were held")
        time.sleep(max(0.0, hold_s - 1.0))
        for s in held:
            s.close()
        time.sleep(1.0)
        self.note("idle-released", server_fds=fd_count(self.server.pid))
        self.recoveries.append(("idle", time.time() - self.t0))

    def fault_emfile(self, hold_s):
        pid = self.server.pid
        soft, hard = nofile_limits(pid)
        in_use = fd_count(pid)
        # Half the fds in use: the soft limit caps the fd NUMBER, and fds in use are compact,
        # so no new fd can be had until calls end and free low numbers (a limit just under
        # the count is dodged by churn: each ending call frees what the next one needs).
        limit = max(32, in_use // 2)
        offset = self.log_size()
        # The soft limit only: raising a hard limit back needs CAP_SYS_RESOURCE, and the soft
        # limit is the one accept() runs into.
        # Calls connecting from now until shortly after the restore wait in the backlog: the
        # load generator keeps their latency and unanswered frames apart.
        self.loadgen.p.send_signal(signal.SIGUSR1)
        subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={limit}:{hard}"], check=True)
        self.note("emfile", fds_in_use=in_use, limit=limit)
        # New connections arrive anyway (the calls' churn); add a few of our own.
        probes = []
        for _ in range(5):
            try:
                probes.append(socket.create_connection(("127.0.0.1", self.http_port), timeout=2))
            except OSError:
                pass
        time.sleep(hold_s)
        for s in probes:
            s.close()
        subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"], check=True)
        self.loadgen.p.send_signal(signal.SIGUSR2)
        restored = time.time() - self.t0
        self.note("emfile-restored", limit=f"{soft}:{hard}", fds_in_use=fd_count(pid))
        recovered = None
        deadline = time.time() + 10
        while time.time() < deadline:
            if http_probe(self.http_port, timeout=2):
                recovered = round(time.time() - self.t0 - restored, 2)
                break
            time.sleep(0.2)
        text = self.server_log_since(offset)
        named = [line for line in text.splitlines() if "EMFILE" in line or "too many open files" in line.lower()]
        self.note("emfile-check", log_lines_naming_emfile=len(named), http_accepts_again_after_s=recovered,
                  first_line=named[0].strip()[:160] if named else None)
        self.emfile_lines.append(len(named))
        if not named:
            self.fail("no server log line names EMFILE while accepts could not get a file descriptor")
        if recovered is None:
            self.fail("the HTTP port did not answer again within 10 s of the fd limit being restored")
        self.recoveries.append(("emfile", restored))

    # MARK: run

    def run(self):
        args = self.args
        self.sts_port, self.hook_port = bench.free_port(), bench.free_port()
        self.port, self.http_port = bench.free_port(), bench.free_port()
        self.recoveries = []
        self.emfile_lines = []
        self.idle_rss = []
        ramp = args.ramp or max(50.0, args.calls / 5.0)
        schedule = plan(args.duration, args.calls, ramp)
        self.start_sts()
        hooks = bench.Proc("webhooks", [f"{self.binpath}/avr-bench-sts", "--ws-port", "0", "--http-port", str(self.hook_port),
                                        "--mode", "echo"], logdir=self.logdir)
        hooks.wait_line(r"listening ws=")
        env = dict(os.environ, DRAIN_TIMEOUT="0", PORT=str(self.port), HTTP_PORT=str(self.http_port), STS_URL=f"ws://127.0.0.1:{self.sts_port}",
                   WEBHOOK_URL=f"http://127.0.0.1:{self.hook_port}/webhook", WEBHOOK_TIMEOUT=str(args.webhook_timeout),
                   WEBHOOK_RETRY=str(args.webhook_retry), LOG_LEVEL="info", LOOPS=str(args.loops))
        # Its own session, as a service runs: with the kernel's autogroup scheduling, CPU is
        # shared per session, so the server competes with the harness and with other users'
        # jobs as a peer rather than inside the harness's share.
        self.server = bench.Proc("avr-core", [f"{self.binpath}/avr-core"], env=env, logdir=self.logdir, session=True)
        loadgen = None
        sampler = None
        calls_path = os.path.join(self.logdir, "calls.txt")
        try:
            self.server.wait_line(r"listening on port %d" % self.port)
            time.sleep(0.5)
            idle_before = {"rss_kib": vm_rss_kib(self.server.pid), "fds": fd_count(self.server.pid)}
            lg_argv = [f"{self.binpath}/avr-loadgen", "--port", str(self.port), "--http-port", str(self.http_port),
                       "--calls", str(args.calls), "--duration", str(args.duration), "--ramp", str(ramp),
                       "--churn", str(args.churn), "--codec", args.codec, "--content", args.content,
                       "--dtmf-every", str(args.dtmf_every), "--calls-out", calls_path, "--progress", "10"]
            self.t0 = time.time()
            loadgen = bench.Proc("loadgen", lg_argv, logdir=self.logdir, capture=True)
            self.loadgen = loadgen
            sampler = Sampler(self.server, self.t0, self.hook_port)
            sampler.start()
            self.note("load-started", calls=args.calls, churn_mean_s=args.churn, pid_server=self.server.pid)
            cpu0 = {"server": bench.cpu_ticks(self.server.pid), "loadgen": bench.cpu_ticks(loadgen.pid)}
            self.sts_ticks = 0
            for name, at, param in schedule["faults"]:
                wait = self.t0 + at - time.time()
                if wait > 0:
                    time.sleep(wait)
                if self.server.p.poll() is not None:
                    break
                if name not in args.faults.split(","):
                    continue
                try:
                    {"sts-kill": lambda: self.fault_sts_kill(param), "hook-stall": self.fault_hook_stall,
                     "idle": lambda: self.fault_idle(param), "emfile": lambda: self.fault_emfile(param)}[name]()
                except (OSError, TypeError, subprocess.CalledProcessError, RuntimeError) as error:
                    self.fail(f"fault {name} could not run: {error!r}")
            # CPU over the run, read just before the load generator ends (its /proc entry goes
            # with it): % of one core per process.
            time.sleep(max(0.0, self.t0 + args.duration - 1 - time.time()))
            elapsed = time.time() - self.t0
            self.cpu = {}
            for name, pid, base in (("server", self.server.pid, cpu0["server"]), ("loadgen", loadgen.pid, cpu0["loadgen"]),
                                    ("sts", self.sts.pid, -self.sts_ticks)):
                try:
                    self.cpu[name] = round((bench.cpu_ticks(pid) - base) / bench.CLK_TCK / elapsed * 100, 1)
                except OSError:
                    self.cpu[name] = None
            out, _ = loadgen.p.communicate(timeout=args.duration + 200)
            self.note("load-finished")
            result = json.loads(out.strip().splitlines()[-1])
            delivered = self.wait_for_webhooks(calls_path)
            time.sleep(1.0)
            alive = self.server.p.poll() is None
            idle_after = {"rss_kib": vm_rss_kib(self.server.pid), "fds": fd_count(self.server.pid),
                          "webhook_keepalive_connections": connections_to(self.hook_port)} if alive else None
            sampler.stop_event.set()
            sampler.join()
            stats = json.loads(http(self.hook_port, "GET", "/stats"))
        finally:
            if sampler:
                sampler.stop_event.set()
            server_status = self.server.stop(timeout=15)
            if loadgen and loadgen.p.poll() is None:
                loadgen.stop()
            if self.sts:
                self.sts.stop()
            hooks.stop()
        return self.verdict(schedule, result, delivered, stats, sampler, idle_before, idle_after, server_status, calls_path)

    def wait_for_webhooks(self, calls_path):
        """Waits (bounded) until every call the server read has its call_ended delivered and the
        count stops moving; returns the receiver's per-uuid counts."""
        reached = set()
        with open(calls_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[4] == "1":
                    reached.add(parts[0])
        deadline = time.time() + 60
        last, stable_since = None, time.time()
        while True:
            events = self.read_events()
            ended = sum(e[1] for e in events.values())
            missing = sum(1 for u in reached if events.get(u, (0, 0, 0))[1] == 0)
            if ended != last:
                last, stable_since = ended, time.time()
            if (missing == 0 and time.time() - stable_since >= 3) or time.time() > deadline:
                return events
            time.sleep(0.5)

    def read_events(self):
        events = {}
        for line in http(self.hook_port, "GET", "/events", timeout=10).decode().splitlines():
            uuid, started, ended, distinct = line.split()
            events[uuid] = (int(started), int(ended), int(distinct))
        return events

    def verdict(self, schedule, result, events, stats, sampler, idle_before, idle_after, server_status, calls_path):
        args = self.args
        calls = {}
        with open(calls_path) as f:
            for line in f:
                p = line.split()
                calls[p[0]] = {"codec": p[1], "start_s": int(p[2]) / 1000, "end_s": int(p[3]) / 1000,
                               "reached": p[4] == "1", "outcome": p[5], "affected": p[9] == "1"}
        reached = {u for u, c in calls.items() if c["reached"]}
        ended = {u: d for u, (s, e, d) in events.items()}
        deliveries = {u: e for u, (s, e, d) in events.items()}
        started = {u for u, (s, e, d) in events.items() if s > 0}
        cend = {
            "calls_placed": len(calls),
            "calls_reached_server": len(reached),
            "call_ended_received": sum(deliveries.values()),
            "call_ended_distinct": sum(ended.values()),
            "duplicates": sum(1 for e in ended.values() if e > 1),
            # The same event (same body, timestamp included) delivered again: WEBHOOK_RETRY
            # re-sent it after an attempt timed out although the receiver had answered.
            "redeliveries": sum(deliveries.values()) - sum(ended.values()),
            "missing": sum(1 for u in reached if ended.get(u, 0) == 0),
            "started_without_ended": sum(1 for u in started if ended.get(u, 0) == 0),
            "unknown_uuids": sum(1 for u in ended if u not in calls),
            "ended_not_reached": sum(1 for u in ended if u in calls and u not in reached),
        }
        if cend["duplicates"]:
            self.fail(f"{cend['duplicates']} call(s) got call_ended more than once")
        if cend["missing"] or cend["started_without_ended"]:
            self.fail(f"call_ended missing: {cend['missing']} call(s) the server answered, "
                      f"{cend['started_without_ended']} call(s) with call_started")
        if cend["unknown_uuids"]:
            self.fail(f"{cend['unknown_uuids']} call_ended for uuids the load generator never placed")

        # Recovery: calls placed after each fault that completed normally.
        recovery = []
        for name, at in self.recoveries:
            later = [c for c in calls.values() if c["start_s"] >= at + 1.0]
            done = sum(1 for c in later if c["outcome"] == "completed")
            recovery.append({"fault": name, "recovered_at_s": round(at, 1), "calls_placed_after": len(later),
                             "completed_after": done})
            if done == 0:
                self.fail(f"no call placed after the {name} fault completed")

        crashed = sampler.died_at is not None or idle_after is None
        if crashed:
            self.fail(f"the server died (at t={sampler.died_at} s)")
        elif server_status != 0:
            self.fail(f"the server exited with status {server_status} on SIGTERM")

        first = sampler.window(*schedule["first_window"])
        last = sampler.window(*schedule["last_window"])
        settled = sampler.window(*schedule["settled_window"]) if schedule["settled_window"] else None
        flat = {"first": first, "settled_after_first_cycle": settled, "last": last, "idle_held_rss_kib": self.idle_rss,
                "idle_before_load": idle_before, "idle_after_load": idle_after}
        if first and last:
            # The reference: the window after the first fault cycle when there is one (the same
            # phase as the last); else the first window, or the RSS reached while 2 x 2,000
            # idle connections were held, whichever is higher — the heap keeps that
            # high-water mark after they close (measured: repeating the idle phase does not
            # raise it further), which is retention, not growth.
            if settled:
                reference = settled["rss_kib"]
            else:
                reference = max([first["rss_kib"]] + self.idle_rss[:1])
            rss_limit = reference * (1 + args.rss_tolerance) + args.rss_slack_kib
            fd_limit = first["fds"] + max(args.fd_slack, 0.1 * first["fds"])
            flat["rss_reference_kib"], flat["rss_limit_kib"], flat["fd_limit"] = reference, rss_limit, fd_limit
            if last["rss_kib"] > rss_limit:
                self.fail(f"RSS grew: median {last['rss_kib']} KiB in the last steady window, over the limit {rss_limit:.0f} "
                          f"(reference {reference} KiB, first window {first['rss_kib']} KiB)")
            if last["fds"] > fd_limit:
                self.fail(f"fds grew: median {first['fds']} in the first steady window, {last['fds']} in the last "
                          f"(limit {fd_limit:.0f})")
        else:
            self.fail("not enough RSS/fd samples for the steady windows")
        if idle_after:
            # Idle keep-alive connections to the webhook receiver stay open (pooled, at most
            # 256): not a leak.
            leftover = idle_after["fds"] - idle_after["webhook_keepalive_connections"]
            if leftover > idle_before["fds"] + args.fd_slack:
                self.fail(f"fds not released: {idle_before['fds']} before the load, {idle_after['fds']} after it "
                          f"({idle_after['webhook_keepalive_connections']} of them webhook keep-alive connections)")

        lg = result
        if lg["lost"]:
            self.fail(f"{lg['lost']} stamped frame(s) lost by calls the caller ended")
        if lg["wrong_call"] or lg["duplicates"] or lg["corrupted"]:
            self.fail(f"echo errors: cross-talk {lg['wrong_call']}, duplicated {lg['duplicates']}, corrupted {lg['corrupted']}")
        if lg["wrong_kind"]:
            self.fail(f"{lg['wrong_kind']} message(s) from the server of a kind Asterisk would not play")
        if lg["jitter"]["p99_ms"] > args.max_jitter_p99:
            self.fail(f"jitter p99 {lg['jitter']['p99_ms']} ms over the bound {args.max_jitter_p99} ms")
        if lg["latency"]["p99_ms"] > args.max_echo_p99:
            self.fail(f"echo p99 {lg['latency']['p99_ms']} ms over the bound {args.max_echo_p99} ms")
        if lg["completed"] == 0:
            self.fail("no call completed")

        return {
            "ok": not self.violations, "violations": self.violations,
            "server": {"crashes": 1 if crashed else 0, "died_at_s": sampler.died_at, "died_status": sampler.status,
                       "exit_status_on_sigterm": server_status,
                       "rss_fds": flat, "emfile_log_lines": self.emfile_lines},
            "calls": {"placed": lg["started"], "completed": lg["completed"], "reached_server": lg["reached_server"],
                      "server_hangups": lg["server_hangups"], "closed_early": lg["closed_early"], "failed": lg["failed"],
                      "http_ok": lg["http_ok"], "http_failed": lg["http_failed"]},
            "audio": {"jitter_ms": lg["jitter"], "echo_ms": lg["latency"], "lost": lg["lost"],
                      "cut_frames_unanswered": lg["cut_frames_unanswered"], "cross_talk": lg["wrong_call"],
                      "corrupted": lg["corrupted"], "frames_sent": lg["frames_sent"], "echoed": lg["echoed"],
                      "slin16_frames_sent": lg["slin16_frames_sent"], "slin16_frames_heard": lg["slin16_frames_heard"],
                      "odd_size": lg["odd_size"], "stalls": lg["stalls"], "calls_stalled": lg["calls_stalled"],
                      "fault_affected": {"calls": lg["fault_affected_calls"], "unanswered_at_hangup": lg["fault_affected_unanswered"],
                                         "jitter_ms": lg["fault_affected_jitter"], "echo_ms": lg["fault_affected_latency"]}},
            "cpu_pct_of_a_core": self.cpu, "call_ended": cend, "recovery": recovery, "webhooks": stats, "schedule": schedule, "events": self.events,
            "samples_t_rss_fds_pool": sampler.samples, "loadgen": lg,
        }


def print_summary(s, args):
    f = s["server"]["rss_fds"]
    first, last = f["first"] or {}, f["last"] or {}
    a, c, e = s["audio"], s["calls"], s["call_ended"]
    print()
    print(f"soak: {args.duration:g} s, {args.calls} calls, churn mean {args.churn:g} s, codecs {args.codec}, "
          f"{s['schedule']['cycles']} fault cycle(s); load average {s['load_average']}")
    settled = f.get("settled_after_first_cycle") or {}
    print(f"  RSS KiB   first steady window {first.get('rss_kib')}, after cycle 1 {settled.get('rss_kib', '-')}, "
          f"last {last.get('rss_kib')} (limit {f.get('rss_limit_kib', 0):.0f}); with 2x{args.idle_connections} idle "
          f"connections held {f['idle_held_rss_kib'][:3]}; idle before load {f['idle_before_load']['rss_kib']}, after "
          f"{(f['idle_after_load'] or {}).get('rss_kib')}")
    print(f"  fds       first steady window {first.get('fds')}  last {last.get('fds')}  (limit {f.get('fd_limit', 0):.0f}); "
          f"idle before load {f['idle_before_load']['fds']}, after {(f['idle_after_load'] or {}).get('fds')} "
          f"({(f['idle_after_load'] or {}).get('webhook_keepalive_connections')} webhook keep-alive)")
    print(f"  calls     placed {c['placed']}, completed {c['completed']}, cut by the server {c['server_hangups']}, "
          f"closed early {c['closed_early']}, connect failed {c['failed']}")
    print(f"  jitter    p50 {a['jitter_ms']['p50_ms']} / p99 {a['jitter_ms']['p99_ms']} / max {a['jitter_ms']['max_ms']:.1f} ms")
    print(f"  echo      p50 {a['echo_ms']['p50_ms']} / p99 {a['echo_ms']['p99_ms']} / max {a['echo_ms']['max_ms']:.1f} ms")
    print(f"  frames    lost {a['lost']} (of {a['frames_sent'] - a['slin16_frames_sent']} stamped), cross-talk "
          f"{a['cross_talk']}, corrupted {a['corrupted']}; slin16 heard {a['slin16_frames_heard']}/{a['slin16_frames_sent']}")
    fa = a["fault_affected"]
    print(f"  EMFILE-backlogged calls (apart from the above): {fa['calls']}, echo p99 {fa['echo_ms']['p99_ms']} ms, "
          f"frames still queued at hangup {fa['unanswered_at_hangup']}")
    print(f"  call_ended {e['call_ended_distinct']} distinct for {e['calls_reached_server']} calls the server answered: "
          f"duplicates {e['duplicates']}, missing {e['missing']}, unknown {e['unknown_uuids']}; "
          f"{e['redeliveries']} redelivered after a timed-out attempt")
    cpu = s["cpu_pct_of_a_core"]
    print(f"  CPU       % of a core over the run: server {cpu.get('server')}, loadgen {cpu.get('loadgen')}, sts {cpu.get('sts')}; "
          f"loadgen send lateness p99 {s['loadgen']['send_lateness']['p99_ms']} ms")
    print(f"  recovery  " + "; ".join(f"{r['fault']}: {r['completed_after']} calls completed after" for r in s["recovery"]))
    print(f"  EMFILE log lines per phase {s['server']['emfile_log_lines']}; crashes {s['server']['crashes']}")
    print("  PASS" if s["ok"] else "  FAIL:\n    " + "\n    ".join(s["violations"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls")
    parser.add_argument("--churn", type=float, default=10.0, help="mean call length, seconds (exponential)")
    parser.add_argument("--ramp", type=float, default=0, help="calls started per second at the start")
    parser.add_argument("--codec", default="mix", help="slin|ulaw|alaw|slin16|mix")
    parser.add_argument("--content", default="tone", help="tone|noise|sawtooth|loud")
    parser.add_argument("--dtmf-every", type=float, default=7.0)
    parser.add_argument("--loops", type=int, default=1)
    parser.add_argument("--webhook-timeout", type=int, default=1000, help="WEBHOOK_TIMEOUT, ms")
    parser.add_argument("--webhook-retry", type=int, default=8, help="WEBHOOK_RETRY")
    parser.add_argument("--idle-connections", type=int, default=2000, help="per port")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed RSS growth, fraction of the first window")
    parser.add_argument("--rss-slack-kib", type=int, default=4096, help="plus this much")
    parser.add_argument("--fd-slack", type=int, default=16)
    parser.add_argument("--max-jitter-p99", type=float, default=20.0, help="ms; a gross-stall bound on a shared machine")
    parser.add_argument("--max-echo-p99", type=float, default=200.0, help="ms; likewise")
    parser.add_argument("--faults", default="sts-kill,hook-stall,idle,emfile", help="which faults to inject")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--scratch-path", default=os.environ.get("BENCH_SCRATCH"))
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()

    # 2 x 2,000 idle sockets held here.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * args.idle_connections + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if subprocess.run(["sh", "-c", "command -v prlimit"], capture_output=True).returncode != 0:
        raise SystemExit("soak: prlimit (util-linux) is needed")
    if args.no_build:
        cmd = ["swift", "build", "-c", "release", "--show-bin-path"] + (
            ["--scratch-path", args.scratch_path] if args.scratch_path else [])
        binpath = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    else:
        binpath = bench.build(args.scratch_path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join("/tmp", f"avr-soak-{stamp}-{os.getpid()}")
    os.makedirs(logdir, exist_ok=True)
    log(f"logs in {logdir}")
    load_start = os.getloadavg()
    summary = Soak(args, binpath, logdir).run()
    summary["load_average"] = {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]}
    summary.update(timestamp=stamp, command=" ".join(sys.argv), options=vars(args), machine=bench.machine(), logdir=logdir)
    print_summary(summary, args)
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, f"soak-{stamp}.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\nresults: {os.path.relpath(path, ROOT)}  logs: {logdir}")
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
