#!/usr/bin/env python3
"""DNS benchmark driver for scripts/bench-dns.sh (run that, not this: it installs and builds).

Inside a network namespace of its own (nothing leaves it) it starts, side by side:
  - `vipd run` with a real configuration ([dns] only, default worker count),
  - knotd serving the same cluster names with the same number of UDP workers,
  - dnsdist forwarding to the same upstream as vipd, with a packet cache, one reuse-port
    listener per worker,
  - an upstream knotd (198.51.100.53:53, in a second namespace behind a veth pair) authoritative for upstream.test, which vipd reads from its
    resolv.conf and dnsdist from its configuration.
Then, in alternating order per round, dnsperf measures for each server:
  - CPU time per answered query at a fixed offered rate (the server's per-thread run time from
    /proc/PID/task/*/schedstat over the run, divided by the answers dnsperf counted), with
    p50/p99 latency and lost queries at that rate;
  - saturation qps (open loop, 256 outstanding).
Local answers: vipd vs Knot. Forwarded names: vipd vs dnsdist (both answer from their caches
once warm). Prints Markdown tables with every round and min/median/max of the ratios.

--baseline PATH adds a second `vipd run` (another build, e.g. before a change; own port and
control socket, same configuration) measured in every round in rotating order with the others,
and a table of CPU per query of vipd over the baseline: a before/after under the same load.

--scale (issue 13 point 4) measures vipd alone: one `vipd run` per --sizes entry (default 10,
1000 and 10000 [[dns.node]] records, generated), all started side by side in the namespace, and
per round, sizes in rotating order, CPU per answered query at the fixed rate for local names
(random existing node names plus api, api-int, *.apps), p50/p99, lost, and RSS/PSS from
smaps_rollup after the load; min/median/max over the rounds, CPU also as a ratio to the first
size in the same round. Neither Knot nor dnsdist is started (only the upstream knotd).

--instructions counts the user-space instructions vipd executes per query, which unlike time
do not depend on the machine's load: `vipd run` (same configuration) under
`valgrind --tool=callgrind --instr-atstart=no`, warmed up (forwarder cache filled), then for
local names and for forwarded names in turn, instrumentation on, dnsperf at --rate (default
2000 here: valgrind runs the daemon about 50x slower) for --duration seconds, instrumentation
off, a dump; instructions of every thread over the window divided by the answers dnsperf
counted. The count includes the daemon's other threads over the window (tokio's idle timer
wake-ups, a few hundred per query at 2000 qps) and depends a little on how many datagrams each
recvmmsg returns; A/B runs of one change agree within about 5 %.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CD = "ostest.test.metalkube.org"
VIPD_PORT, KNOT_PORT, DNSDIST_PORT, BASELINE_PORT = 5300, 5301, 5302, 5303
# In a namespace of its own: vipd skips resolv.conf entries that are loopback or its own node's
# addresses (they would loop back to itself).
UPSTREAM = "198.51.100.53"

LOCAL_QUERIES = f"""api.{CD} A
api-int.{CD} A
console-openshift-console.apps.{CD} A
oauth-openshift.apps.{CD} A
console-openshift-console.apps.{CD} AAAA
master-0.{CD} A
master-1.{CD} A
10.2.0.192.in-addr.arpa PTR
"""

FORWARDED_QUERIES = """www.upstream.test A
mail.upstream.test A
upstream.test MX
www.upstream.test AAAA
registry.upstream.test A
quay.upstream.test A
"""


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


class Lab:
    def __init__(self, work, netns):
        self.work = work
        self.netns = netns
        self.procs = []

    def ns(self, args):
        return ["ip", "netns", "exec", self.netns] + args

    def start(self, name, args):
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        p = subprocess.Popen(self.ns(args), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self):
        for _, p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def server_pid(wrapper_pid, comm):
    """`ip netns exec` execs the program, so the wrapper's pid is the server's; check by name."""
    with open(f"/proc/{wrapper_pid}/comm") as f:
        got = f.read().strip()
    if got != comm:
        sys.exit(f"bench-dns: expected process {comm} at pid {wrapper_pid}, found {got}")
    return wrapper_pid


def cpu_ns(pid):
    """Run time of every thread of `pid` so far (schedstat field 1, nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def memory_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Rss", 0), fields.get("Pss", 0), uss


def dnsperf(lab, port, qfile, seconds, rate=None, verbose=False):
    args = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(seconds),
            "-c", "4", "-T", "2", "-q", "256"]
    if rate:
        args += ["-Q", str(rate)]
    if verbose:
        args += ["-v"]
    out = subprocess.run(lab.ns(args), capture_output=True, text=True).stdout
    res = {"completed": 0, "lost": 0, "qps": 0.0, "lat": []}
    for line in out.splitlines():
        s = line.split()
        if line.startswith("> ") and verbose and len(s) >= 2:
            try:
                res["lat"].append(float(s[-1]))
            except ValueError:
                pass
        elif "Queries completed:" in line:
            res["completed"] = int(s[2])
        elif "Queries lost:" in line:
            res["lost"] = int(s[2])
        elif "Queries per second:" in line:
            res["qps"] = float(s[3])
    if res["completed"] == 0:
        sys.exit(f"bench-dns: dnsperf got no answers from port {port}:\n{out}")
    return res


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def measure(lab, pid, port, qfile, args):
    before = cpu_ns(pid)
    fixed = dnsperf(lab, port, qfile, args.duration, rate=args.rate, verbose=True)
    used = cpu_ns(pid) - before
    sat = dnsperf(lab, port, qfile, args.duration)
    return {
        "cpu_us": used / 1000 / fixed["completed"],
        "p50_us": pct(fixed["lat"], 0.50) * 1e6,
        "p99_us": pct(fixed["lat"], 0.99) * 1e6,
        "lost": fixed["lost"],
        "sent": fixed["completed"] + fixed["lost"],
        "sat_qps": sat["qps"],
        "sat_lost": sat["lost"],
    }


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def configs(work, workers):
    write(f"{work}/local", LOCAL_QUERIES)
    write(f"{work}/forwarded", FORWARDED_QUERIES)
    write(f"{work}/resolv.conf", f"nameserver {UPSTREAM}\n")
    nodes = "".join(
        f'\n[[dns.node]]\nname = "master-{i}"\naddresses = ["192.0.2.1{i}"]\n' for i in range(3))
    write(f"{work}/vipd.toml", f"""# DNS only, as on a worker: the cluster names answered, the rest forwarded.
cluster_name = "ostest"
base_domain = "test.metalkube.org"

[dns]
listen = ["127.0.0.1:{VIPD_PORT}"]
resolv_conf = "{work}/resolv.conf"
api_vips = ["192.0.2.5"]
ingress_vips = ["192.0.2.6"]
{nodes}""")
    write(f"{work}/cluster.zone", f"""$ORIGIN {CD}.
$TTL 30
@        SOA ns hostmaster 1 3600 600 86400 30
@        NS  ns
ns       A   192.0.2.5
api      A   192.0.2.5
api-int  A   192.0.2.5
*.apps   A   192.0.2.6
master-0 A   192.0.2.10
master-1 A   192.0.2.11
master-2 A   192.0.2.12
""")
    write(f"{work}/reverse.zone", f"""$ORIGIN 2.0.192.in-addr.arpa.
$TTL 30
@  SOA ns.{CD}. hostmaster.{CD}. 1 3600 600 86400 30
@  NS  ns.{CD}.
10 PTR master-0.{CD}.
11 PTR master-1.{CD}.
12 PTR master-2.{CD}.
""")
    write(f"{work}/upstream.zone", """$ORIGIN upstream.test.
$TTL 3600
@        SOA ns hostmaster 1 3600 600 86400 3600
@        NS  ns
@        MX  10 mail
ns       A   198.51.100.1
www      A   198.51.100.10
www      AAAA 2001:db8::10
mail     A   198.51.100.25
registry A   198.51.100.30
quay     A   198.51.100.31
""")

    def knot(name, listen, udp_workers, zones):
        os.makedirs(f"{work}/{name}", exist_ok=True)
        zs = "".join(f"  - domain: {d}\n    file: {f}\n" for d, f in zones)
        write(f"{work}/{name}.conf", f"""server:
    listen: {listen}
    udp-workers: {udp_workers}
    tcp-workers: 1
    background-workers: 1
    rundir: {work}/{name}
log:
  - target: stderr
    any: error
database:
    storage: {work}/{name}
template:
  - id: default
    storage: {work}/{name}
    journal-content: none
    zonefile-sync: -1
zone:
{zs}""")

    knot("knot", f"127.0.0.1@{KNOT_PORT}", workers,
         [(CD, f"{work}/cluster.zone"), ("2.0.192.in-addr.arpa", f"{work}/reverse.zone")])
    knot("upstream", f"{UPSTREAM}@53", 1, [("upstream.test", f"{work}/upstream.zone")])
    listeners = "".join(
        f"addLocal('127.0.0.1:{DNSDIST_PORT}', {{reusePort=true}})\n" for _ in range(workers - 1))
    write(f"{work}/dnsdist.conf", f"""-- Forwarder only, as vipd forwards: {workers} reuse-port listener(s), a packet cache.
setLocal('127.0.0.1:{DNSDIST_PORT}', {{reusePort=true}})
{listeners}newServer({{address='{UPSTREAM}:53'}})
pc = newPacketCache(10000)
getPool(''):setCache(pc)
setSecurityPollSuffix('')
""")


def wait_answer(lab, port, name, want):
    for _ in range(100):
        r = subprocess.run(lab.ns(["dig", "@127.0.0.1", "-p", str(port), "+time=1", "+tries=1",
                                   "+short", name, "A"]), capture_output=True, text=True)
        if want in r.stdout:
            return
        time.sleep(0.1)
    sys.exit(f"bench-dns: nothing on port {port} answers {name} {want}; logs in {lab.work}")


def ratio_row(label, values):
    return (f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} | "
            f"{max(values):.2f} |")


SCALE_BASE_PORT = 5310
# Node IPv4 addresses for --scale, reused round-robin (198.51.100.1 is this namespace's own
# veth address, .53 the upstream's).
SCALE_V4 = [f"192.0.2.{i}" for i in range(10, 255)] + [
    f"198.51.100.{i}" for i in range(2, 255) if i != 53]


def scale_configs(work, sizes, queries, seed):
    """One vipd configuration and one query file per cluster size (number of [[dns.node]])."""
    rng = random.Random(seed)
    write(f"{work}/resolv.conf", f"nameserver {UPSTREAM}\n")
    v4 = SCALE_V4
    for n, size in enumerate(sizes):
        # Every node: one IPv4 address (reused once the 492 of the documentation ranges run out)
        # and a distinct IPv6 address 2001:db8::<N>.
        nodes = "".join(
            f'\n[[dns.node]]\nname = "node-{i}"\naddresses = ["{v4[i % len(v4)]}", '
            f'"2001:db8::{i + 1:x}"]\n' for i in range(size))
        write(f"{work}/vipd-{size}.toml", f"""# DNS only, {size} node records.
cluster_name = "ostest"
base_domain = "test.metalkube.org"

[control]
socket = "{work}/vipd-{size}.sock"

[dns]
listen = ["127.0.0.1:{SCALE_BASE_PORT + n}"]
resolv_conf = "{work}/resolv.conf"
api_vips = ["192.0.2.5"]
ingress_vips = ["192.0.2.6"]
{nodes}""")
        # Local answers only: 80 % random existing node names (FQDN A, FQDN AAAA, short A),
        # 20 % api / api-int / *.apps. Same length and mix for every size.
        lines = []
        for _ in range(queries):
            x = rng.random()
            if x < 0.8:
                i = rng.randrange(size)
                y = rng.random()
                if y < 0.5:
                    lines.append(f"node-{i}.{CD} A")
                elif y < 0.8:
                    lines.append(f"node-{i}.{CD} AAAA")
                else:
                    lines.append(f"node-{i} A")
            elif x < 0.87:
                lines.append(f"api.{CD} A")
            elif x < 0.93:
                lines.append(f"api-int.{CD} A")
            else:
                lines.append(f"app{rng.randrange(1000)}.apps.{CD} A")
        write(f"{work}/scale-{size}", "\n".join(lines) + "\n")


def spread(values, fmt):
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})")


def scale_main(args):
    """--scale: cost growth with the number of node records (vipd only, local answers)."""
    sizes = [int(x) for x in args.sizes.split(",")]
    if len(set(sizes)) != len(sizes) or min(sizes) < 1:
        sys.exit("bench-dns: --sizes wants distinct positive integers")
    base = sizes[0]
    work = tempfile.mkdtemp(prefix="bench-dns-scale.")
    netns = f"vbench{os.getpid()}"
    up_netns = f"vbup{os.getpid()}"
    sh(["ip", "netns", "add", netns])
    lab = Lab(work, netns)
    upstream = None
    try:
        sh(lab.ns(["ip", "link", "set", "lo", "up"]))
        # Same upstream as the default mode, so vipd has a forwarder; no query here is forwarded.
        sh(["ip", "netns", "add", up_netns])
        sh(["ip", "link", "add", "vb-bench", "netns", netns, "type", "veth", "peer", "name",
            "vb-up", "netns", up_netns])
        for ns, dev, addr in [(netns, "vb-bench", "198.51.100.1/24"),
                              (up_netns, "vb-up", f"{UPSTREAM}/24")]:
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        configs(work, args.workers)  # for upstream.conf
        scale_configs(work, sizes, args.queries, args.seed)
        upstream = Lab(work, up_netns)
        upstream.start("upstream", ["knotd", "-c", f"{work}/upstream.conf"])
        pids, ports = {}, {}
        for n, size in enumerate(sizes):
            p = lab.start(f"vipd-{size}", [args.vipd, "run", "--config", f"{work}/vipd-{size}.toml"])
            ports[size] = SCALE_BASE_PORT + n
            pids[size] = p.pid
        for size in sizes:
            wait_answer(lab, ports[size], f"api.{CD}", "192.0.2.5")
            wait_answer(lab, ports[size], f"node-{size - 1}.{CD}",
                        SCALE_V4[(size - 1) % len(SCALE_V4)])
            pids[size] = server_pid(pids[size], "vipd")
        mem_rest = {s: memory_kib(p) for s, p in pids.items()}
        results = {}
        deadline = time.monotonic() + args.rounds * len(sizes) * (args.duration + 30) + 60
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(sizes)
            order = sizes[k:] + sizes[:k]
            if rnd % 2 == 0:
                order = order[::-1]
            for size in order:
                if time.monotonic() > deadline:
                    sys.exit("bench-dns: --scale ran past its time bound")
                before = cpu_ns(pids[size])
                r = dnsperf(lab, ports[size], f"{work}/scale-{size}", args.duration,
                            rate=args.rate, verbose=True)
                used = cpu_ns(pids[size]) - before
                res = {
                    "cpu_us": used / 1000 / r["completed"],
                    "p50_us": pct(r["lat"], 0.50) * 1e6,
                    "p99_us": pct(r["lat"], 0.99) * 1e6,
                    "lost": r["lost"],
                    "sent": r["completed"] + r["lost"],
                    "mem": memory_kib(pids[size]),
                }
                results[(size, rnd)] = res
                print(f"round {rnd} {size} node records: {res['cpu_us']:.2f} us CPU/query at "
                      f"{args.rate} qps, p50 {res['p50_us']:.0f} us p99 {res['p99_us']:.0f} us, "
                      f"lost {res['lost']}/{res['sent']}, RSS {res['mem'][0]} KiB "
                      f"PSS {res['mem'][1]} KiB", file=sys.stderr, flush=True)
        for name, p in lab.procs:
            if p.poll() is not None:
                sys.exit(f"bench-dns: {name} exited during the run (logs in {work})")
        dnsperf_v = sh(["sh", "-c", "dnsperf -h 2>&1 | awk '/^Version/ {print $2}'"]).strip()
        vipd_v = sh([args.vipd, "--version"]).split()[-1]
        rounds = range(1, args.rounds + 1)
        print(f"\nvipd {vipd_v} (`vipd run`, release build, default workers), one process per "
              f"size, all running side by side; dnsperf {dnsperf_v}; {os.cpu_count()} CPUs; "
              f"{args.rounds} rounds (sizes in rotating order), {args.duration} s per "
              f"measurement at a fixed {args.rate} qps; dnsperf -c 4 -T 2 -q 256; query file "
              f"of {args.queries} random local names per size (80 % existing node names: "
              f"FQDN A / FQDN AAAA / short A = 50/30/20, 20 % api, api-int, *.apps); load "
              f"average at end {open('/proc/loadavg').read().split()[0]}\n")
        print("Median (min-max) over the rounds; ratio = CPU per query over that of "
              f"{base} records in the same round; memory from /proc/PID/smaps_rollup after "
              "each round's load.\n")
        print(f"| node records | CPU µs per query | ratio to {base} records | p50 µs | p99 µs | "
              "lost | RSS MiB | PSS MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for size in sizes:
            rs = [results[(size, r)] for r in rounds]
            ratio = [results[(size, r)]["cpu_us"] / results[(base, r)]["cpu_us"] for r in rounds]
            print(f"| {size} | {spread([x['cpu_us'] for x in rs], '{:.2f}')} | "
                  f"{spread(ratio, '{:.2f}')} | {spread([x['p50_us'] for x in rs], '{:.0f}')} | "
                  f"{spread([x['p99_us'] for x in rs], '{:.0f}')} | "
                  f"{spread([x['lost'] for x in rs], '{}')} of {rs[0]['sent']} | "
                  f"{spread([x['mem'][0] / 1024 for x in rs], '{:.1f}')} | "
                  f"{spread([x['mem'][1] / 1024 for x in rs], '{:.1f}')} |")
        print("\nEvery round:\n")
        print("| round | node records | CPU µs per query | p50/p99 µs | lost/sent | RSS/PSS MiB |")
        print("|---|---|---|---|---|---|")
        for r in rounds:
            for size in sizes:
                x = results[(size, r)]
                print(f"| {r} | {size} | {x['cpu_us']:.2f} | {x['p50_us']:.0f}/{x['p99_us']:.0f} "
                      f"| {x['lost']}/{x['sent']} | {x['mem'][0] / 1024:.1f}/"
                      f"{x['mem'][1] / 1024:.1f} |")
        print("\nAt rest, before the load (RSS/PSS MiB): " + ", ".join(
            f"{s} records {mem_rest[s][0] / 1024:.1f}/{mem_rest[s][1] / 1024:.1f}"
            for s in sizes))
    finally:
        lab.stop()
        if upstream:
            upstream.stop()
        for ns in (netns, up_netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def callgrind_totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit(f"bench-dns: no totals in {path}")


def instructions_main(args):
    """--instructions: callgrind instructions per query, local and forwarded names."""
    work = tempfile.mkdtemp(prefix="bench-dns-instr.")
    netns = f"vbench{os.getpid()}"
    up_netns = f"vbup{os.getpid()}"
    sh(["ip", "netns", "add", netns])
    lab = Lab(work, netns)
    upstream = None
    rate = args.rate if args.rate_given else 2000
    try:
        sh(lab.ns(["ip", "link", "set", "lo", "up"]))
        sh(["ip", "netns", "add", up_netns])
        sh(["ip", "link", "add", "vb-bench", "netns", netns, "type", "veth", "peer", "name",
            "vb-up", "netns", up_netns])
        for ns, dev, addr in [(netns, "vb-bench", "198.51.100.1/24"),
                              (up_netns, "vb-up", f"{UPSTREAM}/24")]:
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        configs(work, args.workers)
        upstream = Lab(work, up_netns)
        upstream.start("upstream", ["knotd", "-c", f"{work}/upstream.conf"])
        out = f"{work}/callgrind.out"
        vipd = lab.start("vipd", ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                  f"--callgrind-out-file={out}", args.vipd, "run",
                                  "--config", f"{work}/vipd.toml"])
        # wait_answer tries for 10 s or more: enough for start-up under valgrind.
        wait_answer(lab, VIPD_PORT, f"api.{CD}", "192.0.2.5")
        wait_answer(lab, VIPD_PORT, "www.upstream.test", "198.51.100.10")
        for kind in ("local", "forwarded"):
            dnsperf(lab, VIPD_PORT, f"{work}/{kind}", 2, rate=1000)
        results = {}
        for part, kind in enumerate(("local", "forwarded"), start=1):
            sh(["callgrind_control", "-i", "on", str(vipd.pid)])
            r = dnsperf(lab, VIPD_PORT, f"{work}/{kind}", args.duration, rate=rate)
            sh(["callgrind_control", "-i", "off", str(vipd.pid)])
            sh(["callgrind_control", "-d", str(vipd.pid)])
            time.sleep(1)
            total = callgrind_totals(f"{out}.{part}")
            results[kind] = (total, r["completed"], r["lost"])
            print(f"{kind}: {total} instructions over {r['completed']} answers, "
                  f"{total / r['completed']:.0f} per query", file=sys.stderr, flush=True)
        vipd_v = sh([args.vipd, "--version"]).split()[-1]
        print(f"\nvipd {vipd_v} (`vipd run`, release build, {args.workers} UDP workers) under "
              f"callgrind; {args.duration} s of dnsperf at {rate} qps per kind (-c 4 -T 2 -q 256) "
              f"after a warm-up; files {out}.1 (local), {out}.2 (forwarded)\n")
        print("| names | instructions per query | answers | lost |\n|---|---|---|---|")
        for kind, (total, completed, lost) in results.items():
            print(f"| {kind} | {total / completed:.0f} | {completed} | {lost} |")
    finally:
        lab.stop()
        if upstream:
            upstream.stop()
        for ns in (netns, up_netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vipd", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rate", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--scale", action="store_true",
                    help="cost growth with node records: vipd alone, one process per --sizes")
    ap.add_argument("--sizes", default="10,1000,10000",
                    help="--scale: node record counts, the first is the ratio's reference")
    ap.add_argument("--queries", type=int, default=20000,
                    help="--scale: lines in each size's query file")
    ap.add_argument("--seed", type=int, default=13, help="--scale: query file random seed")
    ap.add_argument("--baseline", default=None,
                    help="a second vipd binary measured in the same rounds (before/after)")
    ap.add_argument("--instructions", action="store_true",
                    help="callgrind instructions per query (local and forwarded), vipd alone")
    args = ap.parse_args()
    args.rate_given = args.rate is not None
    if args.rate is None:
        args.rate = 30000
    if args.instructions:
        instructions_main(args)
        return
    if args.scale:
        scale_main(args)
        return

    work = tempfile.mkdtemp(prefix="bench-dns.")
    netns = f"vbench{os.getpid()}"
    up_netns = f"vbup{os.getpid()}"
    sh(["ip", "netns", "add", netns])
    lab = Lab(work, netns)
    upstream = None
    try:
        sh(lab.ns(["ip", "link", "set", "lo", "up"]))
        # The upstream in a namespace of its own behind a veth pair: vipd refuses to forward to
        # an address of its own node (it would loop).
        sh(["ip", "netns", "add", up_netns])
        sh(["ip", "link", "add", "vb-bench", "netns", netns, "type", "veth", "peer", "name",
            "vb-up", "netns", up_netns])
        for ns, dev, addr in [(netns, "vb-bench", "198.51.100.1/24"),
                              (up_netns, "vb-up", f"{UPSTREAM}/24")]:
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        configs(work, args.workers)
        if args.baseline:
            with open(f"{work}/vipd.toml") as f:
                base = f.read().replace(f"127.0.0.1:{VIPD_PORT}", f"127.0.0.1:{BASELINE_PORT}")
            write(f"{work}/baseline.toml", base.replace(
                "[dns]", f'[control]\nsocket = "{work}/baseline.sock"\n\n[dns]', 1))
        upstream = Lab(work, up_netns)
        upstream.start("upstream", ["knotd", "-c", f"{work}/upstream.conf"])
        knot = lab.start("knot", ["knotd", "-c", f"{work}/knot.conf"])
        vipd = lab.start("vipd", [args.vipd, "run", "--config", f"{work}/vipd.toml"])
        dnsdist = lab.start("dnsdist", ["dnsdist", "--supervised", "--disable-syslog",
                                        "-C", f"{work}/dnsdist.conf"])
        wait_answer(lab, KNOT_PORT, f"api.{CD}", "192.0.2.5")
        wait_answer(lab, VIPD_PORT, f"api.{CD}", "192.0.2.5")
        wait_answer(lab, VIPD_PORT, "www.upstream.test", "198.51.100.10")
        wait_answer(lab, DNSDIST_PORT, "www.upstream.test", "198.51.100.10")
        pids = {
            "vipd": server_pid(vipd.pid, "vipd"),
            "knot": server_pid(knot.pid, "knotd"),
            "dnsdist": server_pid(dnsdist.pid, "dnsdist"),
        }
        ports = {"vipd": VIPD_PORT, "knot": KNOT_PORT, "dnsdist": DNSDIST_PORT}
        if args.baseline:
            baseline = lab.start("baseline", [args.baseline, "run", "--config",
                                              f"{work}/baseline.toml"])
            wait_answer(lab, BASELINE_PORT, f"api.{CD}", "192.0.2.5")
            wait_answer(lab, BASELINE_PORT, "www.upstream.test", "198.51.100.10")
            pids["baseline"] = server_pid(baseline.pid, os.path.basename(args.baseline)[:15])
            ports["baseline"] = BASELINE_PORT
        mem_rest = {s: memory_kib(p) for s, p in pids.items()}
        results = {}
        for rnd in range(1, args.rounds + 1):
            for kind, pair, qfile in [("local", ("vipd", "knot"), f"{work}/local"),
                                      ("forwarded", ("vipd", "dnsdist"), f"{work}/forwarded")]:
                order = pair if rnd % 2 else pair[::-1]
                if args.baseline:
                    pair += ("baseline",)
                    k = (rnd - 1) % 3
                    order = pair[k:] + pair[:k]
                for server in order:
                    r = measure(lab, pids[server], ports[server], qfile, args)
                    results[(kind, server, rnd)] = r
                    print(f"round {rnd} {kind} {server}: {r['cpu_us']:.2f} us CPU/query at "
                          f"{args.rate} qps, p50 {r['p50_us']:.0f} us p99 {r['p99_us']:.0f} us, "
                          f"lost {r['lost']}/{r['sent']}; saturation {r['sat_qps']:.0f} qps",
                          file=sys.stderr, flush=True)
        mem_load = {s: memory_kib(p) for s, p in pids.items()}
        for name, p in lab.procs:
            if p.poll() is not None:
                sys.exit(f"bench-dns: {name} exited during the run (logs in {work})")

        versions = {
            "dnsperf": sh(["sh", "-c", "dnsperf -h 2>&1 | awk '/^Version/ {print $2}'"]).strip(),
            "knotd": sh(["knotd", "--version"]).split()[-1],
            "dnsdist": sh(["dnsdist", "--version"]).split()[1],
            "vipd": sh([args.vipd, "--version"]).split()[-1],
        }
        print(f"\nvipd {versions['vipd']} (`vipd run`, release build), Knot {versions['knotd']}, "
              f"dnsdist {versions['dnsdist']}, dnsperf {versions['dnsperf']}; {os.cpu_count()} "
              f"CPUs, {args.workers} UDP worker(s) each; {args.rounds} rounds, {args.duration} s "
              f"per run; fixed rate {args.rate} qps; dnsperf -c 4 -T 2 -q 256; load average at "
              f"end {open('/proc/loadavg').read().split()[0]}\n")
        for kind, ref, ref_name in [("local", "knot", "Knot"),
                                    ("forwarded", "dnsdist", "dnsdist")]:
            print(f"{'Local answers (cluster names)' if kind == 'local' else 'Forwarded names (upstream.test, answered from each forwarder cache once warm)'}:\n")
            print(f"| round | vipd CPU/query (us) | {ref_name} CPU/query (us) | CPU ratio | "
                  f"vipd p50/p99 (us) | {ref_name} p50/p99 (us) | lost vipd/{ref_name} | "
                  f"vipd saturation (qps) | {ref_name} saturation (qps) | saturation ratio |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            cpu_r, sat_r, p99_r = [], [], []
            for rnd in range(1, args.rounds + 1):
                v, k = results[(kind, "vipd", rnd)], results[(kind, ref, rnd)]
                cpu_r.append(v["cpu_us"] / k["cpu_us"])
                sat_r.append(v["sat_qps"] / k["sat_qps"])
                p99_r.append(v["p99_us"] / k["p99_us"])
                print(f"| {rnd} | {v['cpu_us']:.2f} | {k['cpu_us']:.2f} | {cpu_r[-1]:.2f} | "
                      f"{v['p50_us']:.0f}/{v['p99_us']:.0f} | {k['p50_us']:.0f}/{k['p99_us']:.0f} | "
                      f"{v['lost']}/{k['lost']} | {v['sat_qps']:.0f} | {k['sat_qps']:.0f} | "
                      f"{sat_r[-1]:.2f} |")
            print(f"\n| vipd / {ref_name} | min | median | max |\n|---|---|---|---|")
            print(ratio_row("CPU per query", cpu_r))
            print(ratio_row(f"p99 at {args.rate} qps", p99_r))
            print(ratio_row("saturation qps", sat_r))
            print()
        if args.baseline:
            print(f"This build against the baseline ({args.baseline}), same rounds:\n")
            print("| round | local: vipd / baseline CPU per query (baseline us) | forwarded: vipd / "
                  "baseline CPU per query (baseline us) |\n|---|---|---|")
            rel = {"local": [], "forwarded": []}
            for rnd in range(1, args.rounds + 1):
                for kind in rel:
                    rel[kind].append(results[(kind, "vipd", rnd)]["cpu_us"]
                                     / results[(kind, "baseline", rnd)]["cpu_us"])
                print(f"| {rnd} | {rel['local'][-1]:.2f} "
                      f"({results[('local', 'baseline', rnd)]['cpu_us']:.2f} us) | "
                      f"{rel['forwarded'][-1]:.2f} "
                      f"({results[('forwarded', 'baseline', rnd)]['cpu_us']:.2f} us) |")
            print("\n| vipd / baseline | min | median | max |\n|---|---|---|---|")
            print(ratio_row("CPU per local answer", rel["local"]))
            print(ratio_row("CPU per forwarded answer", rel["forwarded"]))
            print()
        print("Memory (KiB, /proc/PID/smaps_rollup; USS = private clean + dirty):\n")
        print("| server | RSS at rest | PSS at rest | USS at rest | RSS after load | PSS after load | USS after load |")
        print("|---|---|---|---|---|---|---|")
        for s in pids:
            a, b = mem_rest[s], mem_load[s]
            print(f"| {s} | {a[0]} | {a[1]} | {a[2]} | {b[0]} | {b[1]} | {b[2]} |")
    finally:
        lab.stop()
        if upstream:
            upstream.stop()
        for ns in (netns, up_netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
