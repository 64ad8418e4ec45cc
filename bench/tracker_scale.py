#!/usr/bin/env python3
"""Helpers of bench/tracker-scale (see its header).

  bulk ENGINE WHERE COUNT OUT                      write COUNT devices into the database
  enrol URL TOKEN_FILE CA_FILE FIRST COUNT WORKERS OUT   enrol COUNT devices through the real API
  usage PID...                                     CPU ms and bytes written of the process trees
  run SETUP.json                                   enrol, the mix, each kind alone; measured
  report WORK DURATION KIND_DURATION               the tables and the final JSON line
"""
import hashlib
import http.client
import sqlite3
import subprocess
import json
import multiprocessing
import os
import ssl
import sys
import time
import urllib.parse


def enrol_slice(job):
    url, token, ca_file, first, count, out = job
    parsed = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    conn = None
    lines = []
    k = first
    while k < first + count:
        if conn is None:
            conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context,
                                               timeout=30)
        body = json.dumps({"fleet_token": token, "name": "screen-%06d" % k,
                           "site": "shop-%d" % (k // 20)})
        try:
            conn.request("POST", "/api/v1/enroll", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = None  # the server closed a kept-alive connection: open another
            continue
        if reply.status != 200:
            sys.exit("enrolment of screen-%06d refused: %d %s" % (k, reply.status, data[:200]))
        answer = json.loads(data)
        lines.append("%s %s %s\n" % (answer["device_id"], answer["credential"], answer["passkey"]))
        k += 1
    with open(out, "w") as f:
        f.writelines(lines)
    return count


def enrol(url, token_file, ca_file, first, count, workers, out):
    token = open(token_file).read().split("\n")[0]
    per = (count + workers - 1) // workers
    jobs = [(url, token, ca_file, first + w * per, min(per, count - w * per), "%s.%d" % (out, w))
            for w in range(workers) if w * per < count]
    start = time.monotonic()
    with multiprocessing.Pool(len(jobs)) as pool:
        done = sum(pool.map(enrol_slice, jobs))
    seconds = time.monotonic() - start
    old = os.umask(0o077)
    with open(out, "a") as f:
        for job in jobs:
            f.write(open(job[5]).read())
            os.remove(job[5])
    os.umask(old)
    print(json.dumps({"enrolled": done, "seconds": round(seconds, 1)}))


def bulk(engine, where, count, out):
    """COUNT devices named screen-000000... written straight into the database,
    row for row what an enrolment writes (DeviceDb::Enroll: random 8-byte id,
    256-bit random credential and passkey stored as the SHA-256 hex of their
    hex form), their secrets into OUT for the load generator."""
    now = int(time.time())
    rows, lines = [], []
    for k in range(count):
        device_id = "dev-" + os.urandom(8).hex()
        credential, passkey = os.urandom(32).hex(), os.urandom(32).hex()
        rows.append((device_id, "screen-%06d" % k, "shop-%d" % (k // 20),
                     hashlib.sha256(credential.encode()).hexdigest(),
                     hashlib.sha256(passkey.encode()).hexdigest(), now))
        lines.append("%s %s %s\n" % (device_id, credential, passkey))
    start = time.monotonic()
    columns = "device_id, name, site, credential_sha256, passkey_sha256, enrolled_at"
    if engine == "sqlite":
        db = sqlite3.connect(where)
        with db:
            db.executemany("INSERT INTO devices(%s) VALUES(?, ?, ?, ?, ?, ?)" % columns, rows)
        db.close()
    else:
        csv_path = out + ".csv"
        with open(csv_path, "w") as f:
            f.writelines(",".join(str(c) for c in r) + "\n" for r in rows)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", where, "-c",
                        "\\copy devices(%s) FROM '%s' CSV" % (columns, csv_path)], check=True)
        os.remove(csv_path)
    old = os.umask(0o077)
    with open(out, "w") as f:
        f.writelines(lines)
    os.umask(old)
    print(json.dumps({"written": count, "seconds": round(time.monotonic() - start, 1)}))


def process_tree(roots):
    """The roots and every live descendant."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % entry).read()
        except OSError:
            continue
        parent[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    tree = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def usage(roots):
    """CPU ms (user + system, with the roots' reaped children) and bytes written by each tree."""
    tick = os.sysconf("SC_CLK_TCK")
    result = {}
    for root in roots:
        cpu_ticks, written = 0, 0
        for pid in process_tree([root]):
            try:
                fields = open("/proc/%d/stat" % pid).read()
                fields = fields[fields.rindex(")") + 2:].split()
                io = dict(l.split(": ") for l in open("/proc/%d/io" % pid).read().splitlines())
            except (OSError, ValueError):
                continue
            cpu_ticks += int(fields[11]) + int(fields[12])  # utime, stime
            if pid == root:
                cpu_ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
            written += int(io["write_bytes"])
        result[str(root)] = {"cpu_ms": cpu_ticks * 1000 // tick, "write_bytes": written}
    return result


class Database:
    """Counters of the setup's database: rows written, WAL bytes, reports stored, size."""

    def __init__(self, kind, where):
        self.kind, self.where = kind, where

    def query(self, sql):
        if self.kind == "sqlite":
            db = sqlite3.connect("file:%s?mode=ro" % self.where, uri=True, timeout=30)
            try:
                return db.execute(sql).fetchone()[0]
            finally:
                db.close()
        out = subprocess.run(["psql", "-X", "-Atq", "-d", self.where, "-c", sql], check=True,
                             capture_output=True, text=True).stdout
        return int(out.strip() or 0)

    def counters(self, seq_base):
        # Reports stored above seq_base: the bench numbers each device's reports
        # seq_base + 1, + 2... so this is the count of reports stored.
        stored = self.query("SELECT COALESCE(SUM(last_seq - %d), 0) FROM report_sequence "
                            "WHERE last_seq > %d" % (seq_base, seq_base))
        devices = self.query("SELECT COUNT(*) FROM devices")
        if self.kind == "sqlite":
            # SQLite keeps no count of rows written outside the writer's connection:
            # a stored report writes 2 rows (device_status, report_sequence), an
            # enrolment of a new name 1 (devices); stored reports are counted by
            # report_sequence (above).
            return {"stored_reports": stored, "devices": devices, "rows": 2 * stored + devices,
                    "wal_bytes": None}
        # PostgreSQL counts what every replica wrote (flushed by idle backends
        # within 10 s: the caller waits before reading).
        rows = self.query("SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
                          "WHERE datname = current_database()")
        wal = self.query("SELECT wal_bytes::bigint FROM pg_stat_wal")
        return {"stored_reports": stored, "devices": devices, "rows": rows, "wal_bytes": wal}

    def size(self):
        if self.kind == "sqlite":
            return sum(os.path.getsize(self.where + suffix) for suffix in ("", "-wal")
                       if os.path.exists(self.where + suffix))
        return self.query("SELECT pg_database_size(current_database())")


def run_wrk(setup, phase, kind, rate, seconds, seq_base):
    out = "%s/%s-%s-%s.out" % (setup["work"], setup["name"], phase, kind)
    conns = setup["connections"][kind]
    args = ["taskset", "-c", "0", "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
            "--timeout", "10s", "-s", setup["lua"], setup["url"], "--", kind, "%.3f" % rate,
            setup["devices_file"], str(seq_base), str(setup["torrents"])] + setup["hashes"]
    return subprocess.Popen(args, stdout=open(out, "w"), stderr=subprocess.STDOUT)


def measured(setup, db, body, seq_base=0):
    """Runs body(); returns CPU ms (per process role), bytes written and database deltas."""
    pids = setup["pids"]
    settle = 11 if db.kind == "postgresql" else 0
    before_db = db.counters(seq_base)
    before = usage(list(pids.values()))
    start = time.monotonic()
    result = body()
    seconds = time.monotonic() - start
    after = usage(list(pids.values()))
    time.sleep(settle)
    after_db = db.counters(seq_base)
    by_role = {role: after[str(pid)]["cpu_ms"] - before[str(pid)]["cpu_ms"]
               for role, pid in pids.items()}
    written = {role: after[str(pid)]["write_bytes"] - before[str(pid)]["write_bytes"]
               for role, pid in pids.items()}
    db_roles = setup["db_roles"]
    phase = {"seconds": round(seconds, 2), "cpu_ms": sum(by_role.values()),
             "cpu_by_process": by_role, "written_by_process": written,
             "db_bytes": sum(written[r] for r in db_roles),
             "rows": after_db["rows"] - before_db["rows"],
             "stored_reports": after_db["stored_reports"] - before_db["stored_reports"],
             "devices": after_db["devices"] - before_db["devices"],
             "wal_bytes": (after_db["wal_bytes"] - before_db["wal_bytes"]
                           if after_db["wal_bytes"] is not None else None)}
    return phase, result


def run_setup(path):
    setup = json.load(open(path))
    db = Database(setup["db_kind"], setup["db_where"])
    name, phases = setup["name"], {}
    print("tracker-scale: %s: %d devices in the database, enrolling %d through the API" % (
        name, setup["devices"] - setup["enrol_api"], setup["enrol_api"]), flush=True)

    def enrol_all():
        out = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "enrol",
                              setup["url"], setup["token_file"], setup["ca_file"],
                              str(setup["devices"] - setup["enrol_api"]),
                              str(setup["enrol_api"]), "8", setup["devices_file"]],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.splitlines()[-1])
    phases["enrol"], enrolment = measured(setup, db, enrol_all)
    print("tracker-scale: %s: %d enrolled in %.1f s" % (name, enrolment["enrolled"],
                                                       enrolment["seconds"]), flush=True)

    offered = setup["offered"]
    seq_base = 0

    def mix():
        procs = [run_wrk(setup, "mix", kind, offered[kind], setup["duration"], seq_base)
                 for kind in KINDS]
        for p in procs:
            p.wait()
    print("tracker-scale: %s: the mix for %d s" % (name, setup["duration"]), flush=True)
    phases["mix"], _ = measured(setup, db, mix)
    mix_reports = load_wrk("%s/%s-mix-report.out" % (setup["work"], name))["requests"]
    checked = {"reports_answered": mix_reports, "reports_stored": phases["mix"]["stored_reports"]}
    for kind in KINDS:
        seq_base = db.query("SELECT COALESCE(MAX(last_seq), 0) FROM report_sequence")
        print("tracker-scale: %s: %s alone for %d s" % (name, kind, setup["kind_duration"]),
              flush=True)
        phases["alone-" + kind], _ = measured(
            setup, db, lambda: run_wrk(setup, "alone", kind, offered[kind],
                                       setup["kind_duration"], seq_base).wait(), seq_base)
    entry = {"name": name, "servers": setup["servers"], "offered": offered,
             "bulk_devices": setup["devices"] - setup["enrol_api"],
             "enrolment": enrolment, "phases": phases, "db_size_bytes": db.size(),
             "stored_reports_checked": checked}
    setups_path = setup["work"] + "/setups.json"
    setups = json.load(open(setups_path)) if os.path.exists(setups_path) else []
    setups.append(entry)
    json.dump(setups, open(setups_path, "w"))


def load_wrk(path):
    line = [l for l in open(path) if l.startswith("{")][-1]
    r = json.loads(line)
    secs = r["duration_us"] / 1e6
    return {"rps": round(r["requests"] / secs, 1), "requests": r["requests"],
            "errors": r["socket_errors"] + r["unexpected"], "socket_errors": r["socket_errors"],
            "unexpected_answers": r["unexpected"], "failure_reasons": r["failure_reasons"],
            "p50_ms": round(r["p50_us"] / 1000, 3), "p99_ms": round(r["p99_us"] / 1000, 3),
            "max_ms": round(r["max_us"] / 1000, 3)}


KINDS = ["report", "timestamp", "root_probe", "announce"]


def ratio(a, b):
    return round(a / b, 3) if b else None


def report(work, duration, kind_duration):
    setups = json.load(open(work + "/setups.json"))
    names = [s["name"] for s in setups]
    results = {}
    for s in setups:
        name = s["name"]
        d = {"servers": s["servers"], "offered_rps": s["offered"],
             "devices_written_into_database": s["bulk_devices"],
             "enrolment": s["enrolment"], "mix": {}, "alone": {}}
        mix_requests = 0
        for kind in KINDS:
            d["mix"][kind] = load_wrk("%s/%s-mix-%s.out" % (work, name, kind))
            d["mix"][kind]["offered_rps"] = s["offered"][kind]
            mix_requests += d["mix"][kind]["requests"]
        m = s["phases"]["mix"]
        d["mix_total"] = {"requests": mix_requests,
                          "rps": round(mix_requests / duration, 1),
                          "offered_rps": round(sum(s["offered"].values()), 1),
                          "errors": sum(d["mix"][k]["errors"] for k in KINDS),
                          "cpu_ms_per_request": round(m["cpu_ms"] / mix_requests, 4),
                          "cpu_share_of_one_core": round(m["cpu_ms"] / 1000 / m["seconds"], 3),
                          "cpu_ms_by_process": m["cpu_by_process"],
                          "db_rows_written_per_request": round(m["rows"] / mix_requests, 4),
                          "db_bytes_written_per_request": round(m["db_bytes"] / mix_requests, 1),
                          "wal_bytes_per_request": (round(m["wal_bytes"] / mix_requests, 1)
                                                    if m.get("wal_bytes") is not None else None)}
        for kind in KINDS + ["enrol"]:
            if kind == "enrol":
                p, requests = s["phases"]["enrol"], s["enrolment"]["enrolled"]
                alone = {"requests": requests, "rps": round(requests / p["seconds"], 1)}
            else:
                p = s["phases"]["alone-" + kind]
                alone = load_wrk("%s/%s-alone-%s.out" % (work, name, kind))
                requests = alone["requests"]
            alone.update({"cpu_ms_per_request": round(p["cpu_ms"] / requests, 4),
                          "db_rows_written_per_request": round(p["rows"] / requests, 3),
                          "db_bytes_written_per_request": round(p["db_bytes"] / requests, 1),
                          "wal_bytes_per_request": (round(p["wal_bytes"] / requests, 1)
                                                    if p.get("wal_bytes") is not None else None)})
            d["alone"][kind] = alone
        d["db_size_bytes"] = s["db_size_bytes"]
        d["stored_reports_checked"] = s.get("stored_reports_checked")
        results[name] = d

    base, other = names[0], names[1] if len(names) > 1 else None
    print()
    print("Mix at the node's default intervals, %d s, keep-alive TLS:" % duration)
    print("%-9s %-10s %9s %9s %9s %9s %9s %7s" % ("setup", "kind", "offered", "req/s",
                                                  "p50 ms", "p99 ms", "max ms", "errors"))
    for name in names:
        for kind in KINDS:
            r = results[name]["mix"][kind]
            print("%-9s %-10s %9.1f %9.1f %9.3f %9.3f %9.3f %7d" % (
                name, kind, r["offered_rps"], r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"],
                r["errors"]))
        t = results[name]["mix_total"]
        print("%-9s %-10s %9.1f %9.1f   cpu %.3f ms/req (%.0f%% of one core), %.3f db rows/req"
              % (name, "total", t["offered_rps"], t["rps"], t["cpu_ms_per_request"],
                 100 * t["cpu_share_of_one_core"], t["db_rows_written_per_request"]))
    print()
    print("Each kind alone at its offered rate (%d s; enrolment: the whole enrolment):"
          % kind_duration)
    print("%-9s %-10s %9s %11s %11s %13s %11s" % ("setup", "kind", "req/s", "cpu ms/req",
                                                  "db rows/req", "db bytes/req", "wal B/req"))
    for name in names:
        for kind in KINDS + ["enrol"]:
            r = results[name]["alone"][kind]
            wal = r["wal_bytes_per_request"]
            print("%-9s %-10s %9.1f %11.4f %11.3f %13.1f %11s" % (
                name, kind, r["rps"], r["cpu_ms_per_request"], r["db_rows_written_per_request"],
                r["db_bytes_written_per_request"], "-" if wal is None else "%.1f" % wal))
    print()
    for name in names:
        e = results[name]["enrolment"]
        print("%-9s %d devices written into the database, then %d enrolled through the API in "
              "%.1f s (%.1f/s); database %.1f MB" % (
                  name, setups[names.index(name)]["bulk_devices"], e["enrolled"], e["seconds"],
                  e["enrolled"] / e["seconds"], results[name]["db_size_bytes"] / 1e6))

    ratios = {}
    if other:
        for kind in KINDS:
            a, b = results[other]["mix"][kind], results[base]["mix"][kind]
            ratios[kind] = {"rps": ratio(a["rps"], b["rps"]), "p50": ratio(a["p50_ms"], b["p50_ms"]),
                            "p99": ratio(a["p99_ms"], b["p99_ms"])}
        for kind in KINDS + ["enrol"]:
            a, b = results[other]["alone"][kind], results[base]["alone"][kind]
            ratios.setdefault(kind, {})["cpu_ms_per_request"] = ratio(
                a["cpu_ms_per_request"], b["cpu_ms_per_request"])
        a, b = results[other]["mix_total"], results[base]["mix_total"]
        ratios["total"] = {"rps": ratio(a["rps"], b["rps"]),
                           "cpu_ms_per_request": ratio(a["cpu_ms_per_request"],
                                                       b["cpu_ms_per_request"])}
        ratios["db_size"] = ratio(results[other]["db_size_bytes"], results[base]["db_size_bytes"])
        print("ratios %s / %s (mix): " % (other, base) + ", ".join(
            "%s req/s %.3f p99 %.3f" % (k, ratios[k]["rps"], ratios[k]["p99"] or 0) for k in KINDS))
        print("        cpu ms per request (mix) %.3f; database size %.3f" % (
            ratios["total"]["cpu_ms_per_request"], ratios["db_size"]))
    errors = sum(results[n]["mix_total"]["errors"] for n in names) + sum(
        results[n]["alone"][k].get("errors", 0) for n in names for k in KINDS)
    short = {n: [k for k in KINDS if results[n]["mix"][k]["rps"] < 0.95 * results[n]["mix"][k]["offered_rps"]]
             for n in names}
    print("errors over every phase and setup: %d (goal: errors == 0): %s" % (
        errors, "MET" if errors == 0 else "NOT MET"))
    for n in names:
        if short[n]:
            print("%s achieved under 95%% of the offered rate for: %s" % (n, ", ".join(short[n])))
    meta = json.load(open(work + "/meta.json"))
    print(json.dumps({"bench": "tracker-scale", "duration_s": duration,
                      "kind_duration_s": kind_duration, **meta, "setups": results,
                      "ratios_replicas_to_sqlite": ratios, "errors": errors,
                      "goal": "errors == 0", "goal_met": errors == 0,
                      "below_offered": short}, separators=(",", ":")))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "bulk":
        bulk(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif command == "enrol":
        enrol(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
              int(sys.argv[7]), sys.argv[8])
    elif command == "usage":
        print(json.dumps(usage([int(p) for p in sys.argv[2:]])))
    elif command == "run":
        run_setup(sys.argv[2])
    elif command == "report":
        sys.exit(report(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        sys.exit(__doc__)
