#!/usr/bin/env python3
"""OCCI front benchmark (issue 4, "Speed"). Run through benches/run-occi.sh.

Starts a release-built `cloudgate serve` on a temp data dir with a light
instance type and a dummy host big enough for every VM (DUMMY_TOTALCPU /
DUMMY_TOTALMEMORY in the server's environment reach the dummy probe), then:
  1. creates N VMs (10,000) owned by one user through POST /compute from 32
     client threads (the creation rate is printed);
  2. wrk at 32 connections: GET /compute and GET /compute/{id} (random ids):
     requests/s, p99 latency, and the server's RSS (VmRSS);
  3. wrk POST /compute for a few seconds: server-side creation throughput;
  4. a streamed multipart upload of a sparse file (1 GiB) through POST
     /storage with curl -F: throughput and the server's peak RSS increase
     (VmHWM reset before, RSS also sampled every 20 ms).
Prints figures, asserts nothing. Environment: BENCH_VMS (10000),
BENCH_UPLOAD_MIB (1024), BENCH_DURATION (10s).
"""

import concurrent.futures
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import basic, fmt_wrk, mib, wrk  # noqa: E402

VMS = int(os.environ.get("BENCH_VMS", "10000"))
UPLOAD_MIB = int(os.environ.get("BENCH_UPLOAD_MIB", "1024"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
USER, PASSWORD = "bench", "bench-pw"
COMPUTE = b"<COMPUTE><NAME>b</NAME><INSTANCE_TYPE>tiny</INSTANCE_TYPE></COMPUTE>"

CONFIG = """
OCCI_INSTANCE_TYPE = [ NAME = "tiny", CPU = 0.01, MEMORY = 8 ]
SCHED_INTERVAL = 1
MAX_VM = 5000
MAX_DISPATCH = 1000
MAX_HOST = 1000
UPLOAD_LIMIT = 4G
HOST_MONITORING_INTERVAL = 600
"""


def create_vms(server, count, threads=32, budget=600.0):
    """POSTs `count` COMPUTE documents from `threads` keep-alive clients."""
    auth = basic(USER, PASSWORD)
    ids, failures = [], []
    lock = threading.Lock()
    next_index = iter(range(count))
    deadline = time.time() + budget

    def worker():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        while time.time() < deadline:
            with lock:
                if next(next_index, None) is None:
                    break
            conn.request("POST", "/compute", body=COMPUTE,
                         headers={"Authorization": auth, "Content-Type": "application/xml"})
            resp = conn.getresponse()
            body = resp.read().decode()
            m = re.search(r"<ID>(\d+)</ID>", body)
            with lock:
                if resp.status == 201 and m:
                    ids.append(int(m.group(1)))
                else:
                    failures.append(f"{resp.status} {body[:120]}")
        conn.close()

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    return ids, failures, time.time() - start


def vm_states(server):
    status, body = server.request("GET", "/v1/vms", auth=(USER, PASSWORD))
    counts = {}
    for state in re.findall(rb'"state":"(\w+)"', body):
        counts[state.decode()] = counts.get(state.decode(), 0) + 1
    return counts


def settle(server, budget=240.0):
    """Waits (bounded) until no VM is pending or in a transition."""
    deadline = time.time() + budget
    counts = vm_states(server)
    while time.time() < deadline:
        busy = sum(n for s, n in counts.items() if s not in ("runn", "fail", "done"))
        if busy == 0:
            break
        time.sleep(5)
        counts = vm_states(server)
    return counts


def upload(server, work, size_mib):
    """Streams a sparse `size_mib` MiB file with curl -F; returns figures."""
    path = os.path.join(work, "big.img")
    with open(path, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    pid = server.pid
    reset = benchlib.reset_hwm(pid)
    before_rss = server.rss()
    before_hwm = benchlib.proc_status(pid, "VmHWM")
    peak = [before_rss or 0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rss = server.rss()
            if rss:
                peak[0] = max(peak[0], rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.time()
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"{USER}:{PASSWORD}",
         "--max-time", "300",
         "--form-string", "occixml=<DISK><NAME>big</NAME><URL>file:///big.img</URL></DISK>",
         "-F", f"file=@{path};type=application/octet-stream",
         f"{server.url}/storage"],
        capture_output=True, text=True, timeout=330)
    elapsed = time.time() - start
    stop.set()
    sampler.join()
    after_hwm = benchlib.proc_status(pid, "VmHWM")
    os.unlink(path)
    return {
        "status": out.stdout.strip() or out.stderr.strip(),
        "seconds": elapsed,
        "mib_s": size_mib / elapsed,
        "hwm_reset": reset,
        "before_rss": before_rss,
        "hwm_increase": None if after_hwm is None or before_hwm is None else after_hwm - before_hwm,
        "sampled_increase": peak[0] - (before_rss or 0),
    }


def main():
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        sys.exit("wrk is missing: apt-get install wrk")
    work = tempfile.mkdtemp(prefix="cloudgate-occi-bench-", dir=os.environ.get("TMPDIR"))
    server = benchlib.Cloudgate(work, CONFIG, env={
        "DUMMY_TOTALCPU": str(VMS * 10),          # CPU = 0.01 -> 1 unit per VM
        "DUMMY_TOTALMEMORY": str(VMS * 8 * 1024 * 4),  # 8 MB per VM, in KB
    })
    try:
        print(f"cloudgate {server.url} pid {server.pid}, data {work}, {os.cpu_count()} CPUs "
              f"(shared: figures are noisy)")
        server.create_user(USER, PASSWORD)
        print(f"RSS at start: {mib(server.rss())}")

        ids, failures, secs = create_vms(server, VMS)
        print(f"POST /compute x {len(ids)} from 32 Python threads: {secs:.1f} s, "
              f"{len(ids) / secs:.1f} VMs/s ({len(failures)} failed"
              + (f", first: {failures[0]}" if failures else "") + ")")
        counts = settle(server)
        print(f"VM states after settling (bounded 240 s): {counts}")
        print(f"RSS with {len(ids)} VMs: {mib(server.rss())}")

        auth_header = f"Authorization: {basic(USER, PASSWORD)}"
        r = wrk(f"{server.url}/compute", headers=[auth_header], duration=DURATION)
        print(f"GET /compute ({len(ids)} VMs, wrk -t2 -c32 -d{DURATION}): {fmt_wrk(r)}; "
              f"RSS after {mib(server.rss())}")
        status, body = server.request("GET", "/compute", auth=(USER, PASSWORD))
        print(f"  (one GET /compute: {status}, {len(body)} bytes, "
              f"{body.count(b'<COMPUTE ')} entries)")

        script = os.path.join(work, "ids.lua")
        sample_ids = ids[:: max(1, len(ids) // 1000)] or [0]
        with open(script, "w") as f:
            f.write("local ids = {" + ",".join(map(str, sample_ids)) + "}\n"
                    "request = function()\n"
                    "  return wrk.format('GET', '/compute/' .. ids[math.random(#ids)])\n"
                    "end\n")
        r = wrk(f"{server.url}/compute", headers=[auth_header], script=script,
                duration=DURATION)
        print(f"GET /compute/{{id}} (random of {len(sample_ids)} ids): {fmt_wrk(r)}; "
              f"RSS after {mib(server.rss())}")

        post = os.path.join(work, "post.lua")
        with open(post, "w") as f:
            f.write("wrk.method = 'POST'\n"
                    f"wrk.body = '{COMPUTE.decode()}'\n"
                    "wrk.headers['Content-Type'] = 'application/xml'\n")
        r = wrk(f"{server.url}/compute", headers=[auth_header], script=post, duration="5s")
        print(f"POST /compute (wrk -t2 -c32 -d5s, dummy driver): {fmt_wrk(r)}; "
              f"RSS after {mib(server.rss())}")

        # Let the POSTed VMs' deploys drain before the upload figure.
        settle(server, budget=120.0)
        u = upload(server, work, UPLOAD_MIB)
        print(f"POST /storage {UPLOAD_MIB} MiB multipart (curl -F, sparse file): HTTP "
              f"{u['status']}, {u['seconds']:.1f} s, {u['mib_s']:.0f} MiB/s; RSS before "
              f"{mib(u['before_rss'])}; peak RSS increase: VmHWM "
              f"{'reset' if u['hwm_reset'] else 'NOT reset'} -> +{mib(u['hwm_increase'])}, "
              f"sampled every 20 ms -> +{mib(u['sampled_increase'])} (target < 64 MiB)")
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
