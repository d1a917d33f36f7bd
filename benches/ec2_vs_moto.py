#!/usr/bin/env python3
"""EC2 Query front against moto's EC2 server (issue 5, "Speed"), side by
side in one run. Run through benches/run-ec2-vs-moto.sh (a python with boto3
and moto[server]).

Both servers run side by side (cloudgate release build on a temp data
dir; `moto_server` on a free 127.0.0.1 port):
  1. RunInstances sequential through boto3: BENCH_SEQ calls each, in
     BENCH_ROUNDS rounds that alternate between the servers, so both see
     the same machine (a shared 2-core VM's speed drifts by tens of per
     cent within minutes); the ratio is given overall and as the median of
     the rounds' ratios. A CPU line per server splits each call's CPU into
     the bench's own (boto3), the server's and its driver processes' (the
     scripts deploying cloudgate's VMs, counted until the server's CPU
     stops growing); the machine's CPUs over their sum bound the calls/s
     that server could take from boto3 clients here if nothing else ran.
Then for each server:
  2. RunInstances from 32 concurrent boto3 clients (threads; BENCH_CONC
     calls), then topped up (untimed) to 1,000 instances;
  3. the memory (VmRSS) of the server with 1,000 instances;
  4. DescribeInstances through boto3: by id, and unfiltered (1,000;
     MaxResults=1000 on both, since moto pages 100 reservations by default);
  5. SigV2-presigned DescribeInstances URLs (by id; unfiltered) under
     `wrk -t2 -c32 -d10s`. moto gets a dummy SigV4-style Authorization
     header (it routes a request without one to S3); cloudgate verifies the
     signature (over the host:port wrk sends, Expires an hour ahead).
Prints each figure and the ratios cloudgate/moto; asserts nothing.
BENCH_NO_DEPLOY=1 keeps cloudgate's VMs pending (no dummy driver scripts);
BENCH_TARGETS=cloudgate skips moto.
"""

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import boto3
import botocore.config

sys.dont_write_bytecode = True  # no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import fmt_wrk, mib, proc_cpu, proc_status, wrk  # noqa: E402

SEQ = int(os.environ.get("BENCH_SEQ", "200"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
CONC = int(os.environ.get("BENCH_CONC", "640"))
TOTAL = 1000
DESCRIBE_BY_ID = int(os.environ.get("BENCH_DESCRIBE_BY_ID", "300"))
DESCRIBE_ALL = int(os.environ.get("BENCH_DESCRIBE_ALL", "20"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
# BENCH_NO_DEPLOY=1 disables cloudgate's dummy host: VMs stay pending, so
# no driver script runs and the figures are the front and core alone.
NO_DEPLOY = os.environ.get("BENCH_NO_DEPLOY") == "1"
TARGETS = os.environ.get("BENCH_TARGETS", "cloudgate,moto").split(",")
STEP_BUDGET = 90.0  # seconds any one timed loop may run
VERSION = "2016-11-15"
USER, PASSWORD = "bench", "bench-pw"

CONFIG = """
EC2_INSTANCE_TYPE = [ NAME = "m1.small", CPU = 0.01, VCPU = 1, MEMORY = 8 ]
EC2_DEFAULT_INSTANCE_TYPE = "m1.small"
SCHED_INTERVAL = 1
MAX_DISPATCH = 1000
MAX_HOST = 1000
HOST_MONITORING_INTERVAL = 600
"""


class Target:
    """One server under test: how to reach it, sign for it, measure it."""

    def __init__(self, name, url, pid, access, secret, moto):
        self.name, self.url, self.pid = name, url, pid
        self.access, self.secret, self.moto = access, secret, moto
        self.hostport = urllib.parse.urlparse(url).netloc
        self.ami = None
        self.ids = []
        self.results = {}

    def client(self):
        return boto3.client(
            "ec2", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=self.access, aws_secret_access_key=self.secret,
            config=botocore.config.Config(retries={"max_attempts": 1},
                                          max_pool_connections=4))

    def rss(self):
        """RSS of the server process and its children (moto forks none)."""
        total = proc_status(self.pid, "VmRSS") or 0
        try:
            kids = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True,
                                  text=True).stdout.split()
        except OSError:
            kids = []
        for kid in kids:
            total += proc_status(int(kid), "VmRSS") or 0
        return total

    def presign(self, extra):
        """A SigV2 (HmacSHA256) presigned DescribeInstances path."""
        params = {
            "Action": "DescribeInstances", "Version": VERSION,
            "AWSAccessKeyId": self.access, "SignatureVersion": "2",
            "SignatureMethod": "HmacSHA256",
            "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
        }
        params.update(extra)
        q = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
        to_sign = f"GET\n{self.hostport.lower()}\n/\n{q}"
        sig = base64.b64encode(hmac.new(self.secret.encode(), to_sign.encode(),
                                        hashlib.sha256).digest()).decode()
        return f"/?{q}&Signature={enc(sig)}"

    def wrk_headers(self):
        if not self.moto:
            return []
        # moto routes by the credential scope's service; it does not verify.
        return ["Authorization: AWS4-HMAC-SHA256 Credential="
                f"{self.access}/20250101/us-east-1/ec2/aws4_request, "
                "SignedHeaders=host, Signature=" + "0" * 64]


def enc(text):
    return urllib.parse.quote(text, safe="-_.~")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(count, fn):
    """Calls fn(i) up to count times within STEP_BUDGET; (done, seconds)."""
    start = time.time()
    done = 0
    for i in range(count):
        if time.time() - start > STEP_BUDGET:
            break
        fn(i)
        done += 1
    return done, time.time() - start


def settle_cpu(pid):
    """Waits until the process's CPU (own and reaped children's) stops
    growing: readings 0.5 s apart that differ by < 0.02 s, or 30 s.
    Returns the last reading, as proc_cpu does."""
    last = proc_cpu(pid)
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(0.5)
        now = proc_cpu(pid)
        if now is None or last is None or sum(now) - sum(last) < 0.02:
            return now
        last = now
    return last


def run_sequential(targets):
    """RunInstances one after the other through boto3, in rounds that
    alternate between the targets (each round's order reversed from the
    last), into each target's results: overall rate and per-round rates,
    and the CPU each call cost the bench, the server and its drivers."""
    calls = {}
    for t in targets:
        ec2 = t.client()

        def one(_, ec2=ec2, t=t):
            r = ec2.run_instances(ImageId=t.ami, MinCount=1, MaxCount=1,
                                  InstanceType="m1.small")
            t.ids.extend(i["InstanceId"] for i in r["Instances"])

        one(0)  # warm-up: connection, endpoint resolution
        calls[t.name] = one
        t.results["run_rounds"] = []
    per_round = max(1, SEQ // ROUNDS)
    # Settle first too, so the warm-up's VM deploying is not charged to
    # the rounds. Each server is idle during the other's rounds (but for
    # work it caused itself), so one span over all rounds is fair.
    cpu_start = {t.name: settle_cpu(t.pid) for t in targets}
    client_cpu = dict.fromkeys(calls, 0.0)
    done = dict.fromkeys(calls, 0)
    for r in range(ROUNDS):
        for t in (targets if r % 2 == 0 else targets[::-1]):
            # The bench is single-threaded here: its CPU (user+system) is
            # boto3's cost. process_time, not os.times: the latter counts in
            # 10 ms clock ticks, a fifth of a short round.
            before = time.process_time()
            n, secs = timed(per_round, calls[t.name])
            client_cpu[t.name] += time.process_time() - before
            done[t.name] += n
            t.results["run_rounds"].append(n / secs)
    # Cloudgate deploys the VMs it accepted with driver scripts after
    # answering; wait for them, so their cost is counted.
    cpu_end = {t.name: settle_cpu(t.pid) for t in targets}
    for t in targets:
        rates = t.results["run_rounds"]
        # Every round makes the same number of calls (unless one ran out
        # of its time budget): the overall rate is their harmonic mean.
        t.results["run_seq"] = len(rates) / sum(1 / x for x in rates)
        print(f"  [{t.name}] RunInstances sequential (boto3): {ROUNDS} rounds of {per_round} "
              f"calls, {t.results['run_seq']:.1f} calls/s "
              f"({1000 / t.results['run_seq']:.2f} ms/call); rounds: "
              + ", ".join(f"{x:.0f}" for x in rates))
    for t in targets:
        (own0, kids0), (own1, kids1) = cpu_start[t.name], cpu_end[t.name]
        n = done[t.name]
        cpu = {"client": client_cpu[t.name] / n, "server": (own1 - own0) / n,
               "drivers": (kids1 - kids0) / n}
        for key, secs in cpu.items():
            t.results[f"cpu_{key}_ms"] = 1000 * secs
        total = sum(cpu.values())
        t.results["cpu_bound"] = os.cpu_count() / total
        print(f"  [{t.name}] CPU per sequential call: client {1000 * cpu['client']:.2f} ms, "
              f"server {1000 * cpu['server']:.2f} ms, driver processes "
              f"{1000 * cpu['drivers']:.2f} ms; total {1000 * total:.2f} ms -> at most "
              f"{t.results['cpu_bound']:.0f} calls/s on {os.cpu_count()} CPUs "
              "(if nothing else ran)")


def client_floor(t, work):
    """What a sequential boto3 RunInstances could reach at best on this
    machine: the rate of a call the server answers from memory
    (DescribeAvailabilityZones, same client, same rounds), slowed by the
    one durable commit a launch needs before it is answered (the median
    4 KiB write + fdatasync in the bench's data directory)."""
    ec2 = t.client()
    ec2.describe_availability_zones()
    per_round = max(1, SEQ // ROUNDS)
    rates = []
    for _ in range(ROUNDS):
        n, secs = timed(per_round, lambda _: ec2.describe_availability_zones())
        rates.append(n / secs)
    floor = len(rates) / sum(1 / x for x in rates)
    path = os.path.join(work, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    syncs = []
    try:
        for _ in range(100):
            start = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            syncs.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    sync = statistics.median(syncs)
    t.results["floor"] = floor
    t.results["fsync_ms"] = 1000 * sync
    t.results["launch_ceiling"] = 1 / (1 / floor + sync)
    print(f"  [{t.name}] boto3 floor: DescribeAvailabilityZones (from memory) {floor:.1f} "
          f"calls/s; one durable commit (write + fdatasync) {1000 * sync:.2f} ms -> a "
          f"RunInstances reaches at most {t.results['launch_ceiling']:.0f} calls/s here")


def run_instances(t):
    ec2 = t.client()
    ids = t.ids

    clients = [t.client() for _ in range(32)]
    counter = iter(range(CONC))
    lock = threading.Lock()
    errors = []
    deadline = time.time() + STEP_BUDGET

    def worker(k):
        c = clients[k]
        done = 0
        while time.time() < deadline:
            with lock:
                if next(counter, None) is None:
                    break
            try:
                r = c.run_instances(ImageId=t.ami, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")
                with lock:
                    ids.extend(i["InstanceId"] for i in r["Instances"])
                done += 1
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(repr(e)[:160])
        return done

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        n = sum(pool.map(worker, range(32)))
    secs = time.time() - start
    t.results["run_conc"] = n / secs
    print(f"  [{t.name}] RunInstances, 32 concurrent boto3 clients (threads): {n} calls in "
          f"{secs:.1f} s, {n / secs:.1f} calls/s ({len(errors)} errors"
          + (f", first {errors[0]}" if errors else "") + ")")

    # Untimed top-up to exactly TOTAL instances.
    while len(ids) < TOTAL:
        k = min(100, TOTAL - len(ids))
        r = ec2.run_instances(ImageId=t.ami, MinCount=k, MaxCount=k, InstanceType="m1.small")
        ids.extend(i["InstanceId"] for i in r["Instances"])
    return ids


def describe(t, ids):
    ec2 = t.client()
    listed = sum(len(r["Instances"])
                 for r in ec2.describe_instances(MaxResults=1000)["Reservations"])
    t.results["listed"] = listed
    t.results["rss"] = t.rss()
    print(f"  [{t.name}] instances listed: {listed}; server RSS with them: {mib(t.results['rss'])}")

    n, secs = timed(DESCRIBE_BY_ID, lambda i: ec2.describe_instances(
        InstanceIds=[ids[i % len(ids)]]))
    t.results["desc_id"] = n / secs
    print(f"  [{t.name}] DescribeInstances by id (boto3): {n / secs:.1f} calls/s "
          f"({1000 * secs / n:.2f} ms/call, {n} calls)")
    n, secs = timed(DESCRIBE_ALL, lambda i: ec2.describe_instances(MaxResults=1000))
    t.results["desc_all"] = n / secs
    print(f"  [{t.name}] DescribeInstances unfiltered, {listed} instances (boto3): "
          f"{n / secs:.2f} calls/s ({1000 * secs / n:.1f} ms/call, {n} calls)")


def presigned(t, ids):
    for key, extra, label in (("wrk_id", {"InstanceId.1": ids[0]}, "by id"),
                              ("wrk_all", {"MaxResults": "1000"}, "unfiltered (1,000)")):
        path = t.presign(extra)
        check = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", "--max-time", "120"]
            + sum((["-H", h] for h in t.wrk_headers()), []) + [t.url + path],
            capture_output=True, text=True).stdout
        status = f"{check.rsplit(chr(10), 1)[-1]}, {check.count('<instanceId>')} instances"
        one = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "--max-time", "120"]
            + sum((["-H", h] for h in t.wrk_headers()), []) + [t.url + path],
            capture_output=True, text=True).stdout
        print(f"  [{t.name}] one presigned DescribeInstances {label} alone (curl): "
              f"{1000 * float(one or 'nan'):.1f} ms")
        r = wrk(t.url + path, headers=t.wrk_headers(), duration=DURATION, timeout="30s")
        t.results[key] = r["rps"]
        note = ""
        if r["requests"] == 0 and one:
            # Nothing finished within the run (moto over 1,000 instances):
            # its sustained rate is at best one request per lone request's
            # time (CPython serialises its threads).
            t.results[key] = 1 / float(one)
            note = (f"; none finished in {DURATION}: sustained rate taken as 1/lone request "
                    f"= {t.results[key]:.2f} req/s (an upper bound)")
        print(f"  [{t.name}] SigV2-presigned DescribeInstances {label} (curl check HTTP "
              f"{status}), wrk -t2 -c32 -d{DURATION}: {fmt_wrk(r)}{note}")


def start_moto(work):
    moto_bin = os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = free_port()
    log = open(os.path.join(work, "moto.log"), "w")
    proc = subprocess.Popen([moto_bin, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    return proc, url


def ratio(a, b):
    return "n/a" if not b else f"{a / b:.1f}x"


def main():
    work = tempfile.mkdtemp(prefix="cloudgate-ec2-bench-")
    cg = benchlib.Cloudgate(work, CONFIG, env={
        "DUMMY_TOTALCPU": "100000", "DUMMY_TOTALMEMORY": str(64 * 1024 * 1024 * 4)})
    moto_proc, moto_url = start_moto(work)
    try:
        cg.create_user(USER, PASSWORD)
        status, body = cg.request("POST", "/v1/images?name=bench&type=OS", body=b"\0" * 4096,
                                  auth=(USER, PASSWORD),
                                  headers={"Content-Type": "application/octet-stream"})
        if status >= 300:
            sys.exit(f"image upload: {status} {body[:200]!r}")
        image_id = json.loads(body)["id"]
        if NO_DEPLOY:
            status, body = cg.request("POST", "/v1/hosts/localhost/disable",
                                      auth=("oneadmin", benchlib.ADMIN_PASSWORD))
            print(f"cloudgate host localhost disabled (BENCH_NO_DEPLOY=1): HTTP {status}")
        secret = hashlib.sha1(PASSWORD.encode()).hexdigest()
        tcg = Target("cloudgate", cg.url, cg.pid, USER, secret, moto=False)
        tcg.ami = tcg.client().register_image(
            Name="bench", ImageLocation=f"ami-{image_id:08d}")["ImageId"]
        tmoto = Target("moto", moto_url, moto_proc.pid, "testing", "testing", moto=True)
        tmoto.ami = tmoto.client().describe_images()["Images"][0]["ImageId"]
        print(f"cloudgate {cg.url} (pid {cg.pid}, AMI {tcg.ami}); moto {moto_url} "
              f"(pid {moto_proc.pid}, AMI {tmoto.ami}); {os.cpu_count()} shared CPUs: "
              "figures are noisy")
        targets = [x for x in (tcg, tmoto) if x.name in TARGETS]
        for t in targets:
            print(f"{t.name}: RSS at start {mib(t.rss())}")
        run_sequential(targets)
        if tcg in targets:
            client_floor(tcg, work)
        for t in targets:
            print(f"{t.name}:")
            ids = run_instances(t)
            describe(t, ids)
            presigned(t, ids)
        c, m = tcg.results, tmoto.results
        if not (c and m):
            return
        print("ratios cloudgate/moto:")
        for key, label in (("run_seq", "RunInstances sequential (boto3)"),
                           ("run_conc", "RunInstances 32 concurrent (boto3)"),
                           ("desc_id", "DescribeInstances by id (boto3)"),
                           ("desc_all", "DescribeInstances unfiltered 1,000 (boto3)"),
                           ("wrk_id", "presigned by id (wrk)"),
                           ("wrk_all", "presigned unfiltered 1,000 (wrk)")):
            print(f"  {label}: {c.get(key, 0):.1f} vs {m.get(key, 0):.1f} -> "
                  f"{ratio(c.get(key, 0), m.get(key, 0))}")
            if key == "run_seq":
                rounds = sorted(a / b for a, b in zip(c["run_rounds"], m["run_rounds"]))
                print(f"    per round: {', '.join(f'{x:.1f}x' for x in rounds)}; "
                      f"median {statistics.median(rounds):.1f}x")
                print(f"    CPU bound for cloudgate on this machine: {c['cpu_bound']:.0f} "
                      f"calls/s = {ratio(c['cpu_bound'], m['run_seq'])} moto's measured rate")
                print(f"    boto3 and one durable commit allow cloudgate at most "
                      f"{c['launch_ceiling']:.0f} calls/s = "
                      f"{ratio(c['launch_ceiling'], m['run_seq'])} moto's measured rate")
        print(f"  memory with 1,000 instances: cloudgate {mib(c.get('rss'))}, "
              f"moto {mib(m.get('rss'))}")
    finally:
        cg.stop()
        if moto_proc.poll() is None:
            moto_proc.terminate()
            try:
                moto_proc.wait(10)
            except subprocess.TimeoutExpired:
                moto_proc.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
