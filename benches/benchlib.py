"""Shared helpers of the HTTP benchmarks (benches/occi_bench.py,
benches/ec2_vs_moto.py): start a release-built `cloudgate serve` on a temp
data dir, run wrk and parse its figures, read a process's memory and CPU.

Everything talks to 127.0.0.1 only. Figures are printed, never asserted.
"""

import base64
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("CLOUDGATE_BIN", os.path.join(REPO, "target", "release", "cloudgate"))
ADMIN_PASSWORD = "bench-admin-pw"


def proc_status(pid, field):
    """A /proc/PID/status field (VmRSS, VmHWM) in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu(pid):
    """CPU seconds of a process from /proc/PID/stat: (its own utime+stime,
    its reaped children's cutime+cstime), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The comm (field 2) may hold spaces and ')': fields resume after the
    # last ')', with field 3 (state) first, so fields 14-17 are [11:15].
    utime, stime, cutime, cstime = (int(x) for x in stat[stat.rindex(")") + 1:].split()[11:15])
    tick = os.sysconf("SC_CLK_TCK")
    return (utime + stime) / tick, (cutime + cstime) / tick


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


class Cloudgate:
    """`cloudgate serve` on a temp data dir; stop() on the way out."""

    def __init__(self, workdir, config_text, env=None):
        if not os.access(BINARY, os.X_OK):
            sys.exit(f"no {BINARY}: run `cargo build --release --bin cloudgate` first")
        self.dir = workdir
        config = os.path.join(workdir, "bench.conf")
        with open(config, "w") as f:
            f.write(config_text)
        self.log = open(os.path.join(workdir, "server.log"), "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["CLOUDGATE_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        full_env["CLOUDGATE_EXIT_WITH_PARENT"] = "1"
        full_env.setdefault("RUST_LOG", "warn")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--config", config, "--data-dir", os.path.join(workdir, "var"),
             "--listen", "127.0.0.1:0"],
            cwd=workdir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.pid = self.proc.pid
        self.url = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("cloudgate listening on "):
                self.url = line.strip().split(" ")[-1].rstrip("/")
                break
        if not self.url:
            self.stop()
            sys.exit(f"cloudgate did not start; see {self.log.name}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        parsed = urllib.parse.urlparse(self.url)
        self.host, self.port = parsed.hostname, parsed.port
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.request("GET", "/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)

    def hostport(self):
        return f"{self.host}:{self.port}"

    def request(self, method, path, body=None, auth=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = basic(*auth)
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def create_user(self, name, password):
        status, body = self.request(
            "POST", "/v1/users", json.dumps({"name": name, "password": password}),
            auth=("oneadmin", ADMIN_PASSWORD), headers={"Content-Type": "application/json"})
        if status >= 300:
            sys.exit(f"creating user {name}: {status} {body[:200]!r}")

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wrk(url, threads=2, connections=32, duration="10s", headers=(), script=None, timeout="30s"):
    """Runs wrk; returns {rps, p99_ms, requests, non2xx, errors, raw}."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency",
           f"--timeout={timeout}"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    result = {"raw": out, "rps": 0.0, "p99_ms": None, "requests": 0, "non2xx": 0, "errors": ""}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m:
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        result["p99_ms"] = float(m.group(1)) * scale
    m = re.search(r"(\d+) requests in", out)
    if m:
        result["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        result["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: (.*)", out)
    if m:
        result["errors"] = m.group(1).strip()
    return result


def fmt_wrk(r):
    p99 = "n/a" if r["p99_ms"] is None else f"{r['p99_ms']:.2f} ms"
    extra = ""
    if r["non2xx"]:
        extra += f", NON-2xx: {r['non2xx']}"
    if r["errors"]:
        extra += f", socket errors: {r['errors']}"
    return f"{r['rps']:.1f} req/s, p99 {p99} ({r['requests']} requests{extra})"
