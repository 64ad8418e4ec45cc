#!/usr/bin/env python3
"""The power-cut harness: a device in a qemu-system-x86_64 guest (TCG), its
data disk on a cache disk the harness owns (cache_disk.cpp, an nbdkit plugin
that loses unflushed writes at a cut), the tracker on this host.

docs/durability.md describes it; bench/power-cut and bench/sd-writes drive it.
Everything the guest says arrives on its serial console: the node's log
(phase markers below), and guest-init.sh's / guest-check.sh's lines
"POWERCUT <uptime> ...".
"""
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# An update's phases as the node's log shows them: (name, start, end). A cut
# is in a phase when it falls between one of the phase's start lines and the
# next end line after it (the innermost such phase when they nest: a state
# file write inside a fetch is "state").
PHASES = [
    ("refresh", r" node \S+ started: ", r"release \d+ is newer than"),
    ("fetch", r"layer\(s\) to get", r"every artifact complete"),
    ("resume", r"saving resume data of", r"resume data of \w+ written"),
    ("delta", r"rebuilding from the delta artifact", r": unpacking$"),
    ("unpack", r": unpacking$", r": promoting$"),
    ("promotion", r": promoting$", r": done$"),
    ("switch", r"deploying release", r"runs and is healthy|not deployed"),
    ("state", r"writing state\.json", r"state\.json written"),
    ("gc", r"collecting garbage", r"collected \d+ layer"),
]
PHASE_RE = [(name, re.compile(s), re.compile(e)) for name, s, e in PHASES]
CHECK_RE = re.compile(r"^POWERCUT ([0-9.]+) check layers=\d+ releases=\d+ containers=(\S*) status=(.*)$")
VERIFY_RE = re.compile(r"^POWERCUT ([0-9.]+) verify rc=(\S+)")
BOOT_RE = re.compile(r"^POWERCUT ([0-9.]+) boot ")
APP = "kiosk"
HEALTH_TIME_S = 3  # the app's exec check: interval 1 s + timeout 2 s


def log(msg):
    print(f"harness: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tracker:
    """flotilla-tracker: a repository, releases of the kiosk app, serve."""

    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.repo = os.path.join(work, "repo")
        self.port = free_port()
        self.guest_url = f"http://10.0.2.2:{self.port}"
        self.proc = None
        subprocess.run([binary, "init", self.repo, "--public-url", self.guest_url],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(work, "fleet-token"), "w") as f:
            f.write("fleet-token-for-the-power-cut-harness-01\n")
        os.chmod(os.path.join(work, "fleet-token"), 0o600)
        self.spec = os.path.join(work, "kiosk.json")
        with open(self.spec, "w") as f:
            json.dump({"name": APP, "command": ["/bin/sleep", "1000000"],
                       "restart": {"policy": "always", "backoff_initial_ms": 500,
                                   "backoff_max_ms": 5000},
                       "health": {"type": "exec", "command": ["/bin/cat", "/app/VERSION"],
                                  "interval_ms": 1000, "timeout_ms": 2000},
                       "stop_grace_ms": 2000}, f)

    def publish(self, image):
        subprocess.run([self.binary, "publish", "--repository", self.repo, "--app", APP,
                        "--spec", self.spec, "--zstd-level", "3", image],
                       check=True, stdout=subprocess.DEVNULL)

    def release(self, version):
        """The signed release: its layers (diff_id, length) and artifacts."""
        with open(os.path.join(self.repo, "metadata", "targets.json")) as f:
            targets = json.load(f)["signed"]["targets"]
        return targets[f"apps/{APP}/release-{version}.json"]["custom"]["flotilla"]

    def serve(self):
        log_file = open(os.path.join(self.work, "tracker.log"), "a")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--repository", self.repo, "--listen",
             f"127.0.0.1:{self.port}", "--fleet-token-file",
             os.path.join(self.work, "fleet-token"), "--log-level", "info"],
            stdout=log_file, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                self.served_bytes()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the tracker did not start: see tracker.log")

    def served_bytes(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("flotilla_artifact_bytes_served_total"))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()


class Console:
    """The guest's serial console: every line with the host time it arrived."""

    def __init__(self, stream, path, on_line=None):
        self.on_line = on_line  # called in the reader thread with each line
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.file = open(path, "w")
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            now = time.monotonic()
            self.file.write(f"{now:.3f} {line}\n")
            self.file.flush()
            if self.on_line:
                self.on_line(line)
            with self.cond:
                self.lines.append((now, line))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern, after=0, timeout=300.0):
        """(index, time, match) of the first line from `after` matching, or None."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = after
            while True:
                while i < len(self.lines):
                    m = regex.search(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))


class Boot:
    """One power-on of the device: the cache disk (nbdkit) and the VM."""

    def __init__(self, h, disk, tag, mode, seed, on_line=None):
        self.h, self.tag = h, tag
        self.sock = os.path.join(h.work, f"{tag}.sock")
        self.report = os.path.join(h.work, f"{tag}.disk.json")
        for path in (self.sock, self.report):
            if os.path.exists(path):
                os.unlink(path)
        args = ["nbdkit", "--foreground", "--unix", self.sock, h.plugin, f"file={disk}",
                f"mode={mode}", f"seed={seed}", f"report={self.report}"]
        if h.regions:
            args.append(f"regions={h.regions}")
        self.nbdkit = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{tag}: nbdkit did not start")
        self.started = time.monotonic()
        self.qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
             "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512",
             "-no-reboot", "-serial", "stdio", "-kernel", h.kernel, "-initrd", h.initrd,
             "-append", "console=ttyS0 quiet panic=-1 random.trust_cpu=on no_timer_check",
             "-drive", f"file=nbd+unix:///?socket={self.sock},if=virtio,format=raw,cache=writeback",
             "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
             "-device", "virtio-rng-pci"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.console = Console(self.qemu.stdout, os.path.join(h.work, f"{tag}.console"), on_line)

    def cut_reported(self):
        try:
            with open(self.report) as f:
                return json.load(f)["cut"]["mode"] != "none"
        except (OSError, ValueError, KeyError):
            return False

    def cut(self):
        """The power goes: the VM dies, the cache disk keeps what its mode keeps."""
        self.qemu.kill()
        cut_at = time.monotonic()
        self.qemu.wait()
        # nbdkit makes the cut when it sees the connection close; stopping
        # it before would lose the whole cache whatever the mode.
        for _ in range(100):
            if self.cut_reported():
                break
            time.sleep(0.05)
        self.nbdkit.terminate()
        self.nbdkit.wait()
        self.console.thread.join(5)
        with open(self.report) as f:
            self.disk = json.load(f)
        return cut_at


def phase_events(lines, t_end=None):
    """[(phase, start_time, end_time or None)] from a console's lines."""
    events, open_ = [], {}
    for t, line in lines:
        if t_end is not None and t > t_end:
            break
        for name, start, end in PHASE_RE:
            if name in open_ and end.search(line):
                events.append((name, open_.pop(name), t))
            if start.search(line) and name not in open_:
                open_[name] = t
    events.extend((name, t0, None) for name, t0 in open_.items())
    return events


def phase_at(events, t):
    """The innermost phase whose window holds time t, or "other"."""
    best = None
    for name, t0, t1 in events:
        if t0 <= t and (t1 is None or t < t1) and (best is None or t0 > best[1]):
            best = (name, t0)
    return best[0] if best else "other"


class Harness:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.plugin = args.plugin
        self.kernel = os.path.join(args.guest, "vmlinux")
        self.regions = None
        self.tracker = Tracker(args.tracker, self.work)
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()

    def make_initrd(self, down_kib, device, sync_checks=False, fast_writeback=False):
        """The base initramfs plus /etc for one device (its name: a device
        per starting disk, so one's enrolment never replaces another's
        credentials). Returns its path."""
        conf = os.path.join(self.work, "conf")
        shutil.rmtree(conf, ignore_errors=True)
        os.makedirs(os.path.join(conf, "etc", "flotilla"))
        shutil.copy(os.path.join(self.tracker.repo, "metadata", "1.root.json"),
                    os.path.join(conf, "etc", "flotilla", "root.json"))
        shutil.copy(os.path.join(self.work, "fleet-token"),
                    os.path.join(conf, "etc", "flotilla", "fleet-token"))
        node = {"tracker_url": self.tracker.guest_url,
                "enrolment_token_file": "/etc/flotilla/fleet-token",
                "device_name": device, "data_dir": "/var/lib/flotilla",
                "root_of_trust": "/etc/flotilla/root.json", "apps": [APP],
                "transfer_mode": "p2p", "listen": "0.0.0.0:6881",
                "bandwidth": {"down_kib_s": down_kib},
                "refresh_interval_s": 5, "report_interval_s": 30, "log_level": "debug",
                "lan": {"enabled": False}}
        with open(os.path.join(conf, "etc", "flotilla", "node.json"), "w") as f:
            json.dump(node, f)
        with open(os.path.join(conf, "etc", "powercut.conf"), "w") as f:
            f.write(f"SYNC_EACH_CHECK={1 if sync_checks else 0}\n"
                    f"FAST_WRITEBACK={1 if fast_writeback else 0}\n")
        initrd = os.path.join(self.work, f"initrd-{device}.cpio")
        listing = subprocess.run("find . | busybox cpio -o -H newc 2>/dev/null", shell=True,
                                 cwd=conf, check=True, stdout=subprocess.PIPE).stdout
        with open(initrd, "wb") as out, open(os.path.join(self.args.guest, "base.cpio"),
                                             "rb") as base:
            shutil.copyfileobj(base, out)
            out.write(listing)
        return initrd

    def empty_disk(self, path, mib):
        if os.path.exists(path):
            os.unlink(path)
        # Inode tables and journal written now: otherwise the first mount
        # zeroes them in the background (ext4lazyinit), 16 MiB of writes that
        # are no update's.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "flotilla", "-E",
                        "lazy_itable_init=0,lazy_journal_init=0", path, f"{mib}M"], check=True)

    def settle(self, boot, version, timeout):
        """Watches a boot until `version` of the app runs alone and the node is
        done with it. Returns the figures the checks need."""
        c = boot.console
        out = {"verify_rc": None, "verify_problems": [], "t_init": None,
               "first_healthy": None, "settled": None, "max_containers": 0, "last_check": ""}
        deadline = time.monotonic() + timeout
        i = 0
        while time.monotonic() < deadline:
            hit = c.wait_for(r".", after=i, timeout=deadline - time.monotonic())
            if hit is None:
                break
            i = hit[0] + 1
            line = hit[2].string
            if m := BOOT_RE.match(line):
                out["t_init"] = float(m.group(1))
            elif m := VERIFY_RE.match(line):
                out["verify_rc"] = m.group(2)
            elif line.startswith("POWERCUT-VERIFY problem"):
                out["verify_problems"].append(line)
            elif m := CHECK_RE.match(line):
                out["last_check"] = line
                t = float(m.group(1))
                containers = [x for x in m.group(2).split(",") if x]
                out["max_containers"] = max(out["max_containers"], len(containers))
                answered = [x for x in containers if not x.endswith(":-")]
                if out["first_healthy"] is None and len(containers) == 1 and answered:
                    out["first_healthy"] = t
                if self.is_settled(containers, m.group(3), version):
                    out["settled"] = t
                    return out
        return out

    @staticmethod
    def is_settled(containers, status_text, version):
        if containers != [f"{APP}/r{version}:{version}"]:
            return False
        try:
            status = json.loads(status_text)
        except ValueError:
            return False
        for app in status.get("apps", []):
            if app["name"] == APP:
                return (app["phase"] == "running" and app["running_release"] == version
                        and app["target_release"] == 0)
        return False

    def prepare(self, disk, version, tag):
        boot = Boot(self, disk, tag, "keep", 0)
        out = self.settle(boot, version, self.args.settle_timeout)
        boot.cut()
        if out["settled"] is None:
            raise RuntimeError(f"release {version} never settled; see {tag}.console")

    def prepare_fleet(self, device_prefix, **initrd_options):
        """Publishes releases 1 and 2, brings a device to release 2 (1 kept
        as the previous one) and publishes release 3. Returns the images
        directory, the install and upgrade initrds, an empty disk and the
        release-2 disk (both images to copy, never to boot in place)."""
        a = self.args
        images = os.path.join(self.work, "images")
        subprocess.run([os.path.join(HERE, "make-images.sh"), images, str(a.assets_mib)],
                       check=True, stdout=subprocess.DEVNULL)
        self.tracker.publish(os.path.join(images, "kiosk-v1.oci.tar"))
        self.tracker.serve()
        initrds = {name: self.make_initrd(a.down_kib, f"{device_prefix}-{name}", **initrd_options)
                   for name in ("install", "upgrade")}
        self.initrd = initrds["upgrade"]
        empty = os.path.join(self.work, "empty.img")
        self.empty_disk(empty, a.disk_mib)
        disk = os.path.join(self.work, "disk.img")
        shutil.copy(empty, disk)
        log("preparing the upgrade's device: release 1, then release 2")
        self.prepare(disk, 1, "prepare-r1")
        self.tracker.publish(os.path.join(images, "kiosk-v2.oci.tar"))
        self.prepare(disk, 2, "prepare-r2")
        release2 = os.path.join(self.work, "release2.img")
        shutil.copy(disk, release2)
        self.tracker.publish(os.path.join(images, "kiosk-v3.oci.tar"))
        return images, initrds, empty, release2


class Scenario:
    """An update the device goes through: from a disk template to `version`."""

    def __init__(self, name, template, version, initrd):
        self.name, self.template, self.version, self.initrd = name, template, version, initrd
        self.windows = {}  # phase -> [(occurrence start offset, duration)]
        self.baseline_served = 0
        self.timing = {}


def count_layers_and_releases(line):
    m = re.search(r" layers=(\d+) releases=(\d+)", line or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


class PowerCuts(Harness):
    def timing_pass(self, sc, disk, tag):
        """One uncut update: the phases' windows, and the disk it leaves."""
        shutil.copy(sc.template, disk)
        self.initrd = sc.initrd
        served0 = self.tracker.served_bytes()
        boot = Boot(self, disk, tag, "keep", 0)
        out = self.settle(boot, sc.version, self.args.settle_timeout)
        boot.cut()
        if out["settled"] is None:
            raise RuntimeError(f"{tag}: version {sc.version} never settled; see {tag}.console")
        sc.baseline_served = self.tracker.served_bytes() - served0
        for name, t0, t1 in phase_events(boot.console.lines):
            if t1 is not None:
                sc.windows.setdefault(name, []).append((t0 - boot.started, t1 - t0))
        sc.timing = {n: {"occurrences": len(w), "median_s": round(statistics.median(d for _, d in w), 3)}
                     for n, w in sc.windows.items()}
        log(f"{tag}: settled at {out['settled']:.0f} s; windows: {sc.timing}")
        return boot

    def wait_occurrence(self, boot, phase, k, timeout):
        start = dict((n, s) for n, s, _ in PHASE_RE)[phase]
        i = 0
        for _ in range(k + 1):
            hit = boot.console.wait_for(start.pattern, after=i, timeout=timeout)
            if hit is None:
                return None
            i = hit[0] + 1
        return hit[1]

    def sample_served(self, stop, samples):
        while not stop.is_set():
            try:
                samples.append((time.monotonic(), self.tracker.served_bytes()))
            except OSError:
                pass
            stop.wait(0.25)

    def cut_run(self, sc, phase, n):
        occurrences = sc.windows[phase]
        k = self.rng.randrange(len(occurrences))
        u = self.rng.random()
        seed = self.rng.randrange(1 << 62)
        tag = f"{sc.name}-{n:03d}"
        disk = os.path.join(self.work, "disk.img")
        shutil.copy(sc.template, disk)
        self.initrd = sc.initrd
        served0 = self.tracker.served_bytes()
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=self.sample_served, args=(stop, samples), daemon=True)
        sampler.start()
        boot = Boot(self, disk, tag + "a", self.args.cut_mode, seed)
        t_start = self.wait_occurrence(boot, phase, k, self.args.settle_timeout)
        if t_start is not None:
            time.sleep(u * occurrences[k][1])
        cut_at = boot.cut()
        stop.set()
        sampler.join()
        events = phase_events(boot.console.lines, cut_at)
        landed = phase_at(events, cut_at) if t_start is not None else "missed"
        had_running = sc.name == "upgrade" or any(
            re.search(r"runs and is healthy", line) for t, line in boot.console.lines if t <= cut_at)
        checkpoints = [t for t, line in boot.console.lines
                       if t <= cut_at and re.search(PHASES[2][2], line)]
        served_at = lambda t: max([b for s, b in samples if s <= t] or [served0])
        since_checkpoint = (served_at(cut_at) - served_at(checkpoints[-1])) if checkpoints else None
        recovery = Boot(self, disk, tag + "b", "drop", 0)
        out = self.settle(recovery, sc.version, self.args.recovery_timeout)
        recovery.cut()
        served = self.tracker.served_bytes() - served0
        result = {
            "scenario": sc.name, "n": n, "target_phase": phase, "phase": landed,
            "occurrence": k, "fraction": round(u, 3), "seed": seed,
            "cut_mode": boot.disk["cut"]["mode"], "unflushed_pages": boot.disk["cut"]["pages"],
            "kept_pages": boot.disk["cut"]["kept_pages"],
            "verify_rc": out["verify_rc"], "verify_problems": out["verify_problems"],
            "had_running_release": had_running,
            "healthy_after_init_s": None if out["first_healthy"] is None or out["t_init"] is None
            else round(out["first_healthy"] - out["t_init"], 1),
            "settled_after_init_s": None if out["settled"] is None or out["t_init"] is None
            else round(out["settled"] - out["t_init"], 1),
            "max_containers": out["max_containers"],
            "layers_left": count_layers_and_releases(out["last_check"])[0],
            "release_dirs_left": count_layers_and_releases(out["last_check"])[1],
            "served_bytes": int(served), "redownloaded_bytes": int(max(0, served - sc.baseline_served)),
            "bytes_since_checkpoint": None if since_checkpoint is None else int(since_checkpoint),
        }
        result["store_ok"] = result["verify_rc"] in ("0", "none")
        result["up_in_time"] = (not had_running) or (
            result["healthy_after_init_s"] is not None
            and result["healthy_after_init_s"] <= 60 + HEALTH_TIME_S)
        result["settled"] = out["settled"] is not None
        result["ok"] = result["store_ok"] and result["up_in_time"] and result["settled"]
        log(f"{tag}: cut in {landed} (aimed at {phase} #{k} at {u:.2f}), "
            f"{result['kept_pages']}/{result['unflushed_pages']} unflushed pages kept "
            f"({result['cut_mode']}); verify {result['verify_rc']}, healthy "
            f"{result['healthy_after_init_s']} s, settled {result['settled_after_init_s']} s, "
            f"re-downloaded {result['redownloaded_bytes']} B: {'ok' if result['ok'] else 'FAILED'}")
        return result

    def run(self):
        """The device runs release 1, then release 2 (the upgrade's starting
        point: release 2 running, 1 kept as the previous one); the tracker
        then offers release 3, which a new device installs in full and the
        prepared one gets by deltas."""
        a = self.args
        images, initrds, empty, release2 = self.prepare_fleet("powercut", fast_writeback=True)
        disk = os.path.join(self.work, "disk.img")
        install = Scenario("install", empty, 3, initrds["install"])
        upgrade = Scenario("upgrade", release2, 3, initrds["upgrade"])
        log("timing passes: full install of release 3, delta upgrade from 2 to 3")
        self.timing_pass(install, disk, "install-timing")
        self.timing_pass(upgrade, disk, "upgrade-timing")
        plan = self.plan(install, upgrade)
        results = []
        stop_at = self.t0 + a.time_limit if a.time_limit else None
        with open(os.path.join(self.work, "results.jsonl"), "a") as each:
            for n, (sc, phase) in enumerate(plan):
                if stop_at is not None and time.monotonic() > stop_at:
                    log(f"time limit reached: {n} of {len(plan)} cuts made")
                    break
                results.append(self.cut_run(sc, phase, n))
                each.write(json.dumps(results[-1]) + "\n")
                each.flush()
        return install, upgrade, results

    def plan(self, install, upgrade):
        """(scenario, phase) for every cut: phases in turn, each phase's cuts
        split between the scenarios that have it."""
        a = self.args
        phases = [name for name, _, _ in PHASES
                  if not a.phases or name in a.phases.split(",")]
        per_phase = max(1, -(-a.cuts // len(phases)))
        plan = []
        for phase in phases:
            having = [sc for sc in (install, upgrade) if phase in sc.windows]
            for i in range(per_phase if having else 0):
                plan.append((having[i % len(having)], phase))
        self.rng.shuffle(plan)
        return plan


def image_files(archive):
    """{path: (size, sha256)} of the regular files of an oci-archive's image,
    its layers applied in order (whiteouts remove)."""
    import hashlib
    import tarfile
    files = {}
    with tarfile.open(archive) as outer:
        blob = lambda digest: outer.extractfile("blobs/sha256/" + digest.split(":")[1])
        index = json.load(outer.extractfile("index.json"))
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r:*") as tar:
                for m in tar:
                    name = os.path.normpath(m.name).lstrip("./")
                    base = os.path.basename(name)
                    if base.startswith(".wh."):
                        gone = os.path.join(os.path.dirname(name), base[4:])
                        files = {p: v for p, v in files.items()
                                 if p != gone and not p.startswith(gone + "/")}
                    elif m.isfile():
                        data = tar.extractfile(m).read()
                        files[name] = (len(data), hashlib.sha256(data).hexdigest())
    return files


class SdWrites(Harness):
    """Bytes written to the device's disk (the cache disk's counters) for a
    full install and a delta upgrade, against the new layers' size."""

    def journal_regions(self, disk):
        """The ext4 journal's byte ranges on the disk (debugfs), as a regions file."""
        out = subprocess.run(["debugfs", "-R", "stat <8>", disk], check=True, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        block = int(subprocess.run(["dumpe2fs", "-h", disk], check=True, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
                    .split("Block size:")[1].split()[0])
        path = os.path.join(self.work, "regions")
        with open(path, "w") as f:
            for first, last in re.findall(r"\(\d+(?:-\d+)?\):\s*(\d+)(?:-(\d+))?", out):
                f.write(f"journal {int(first) * block} {(int(last or first) + 1) * block}\n")
        self.regions = path

    def measure(self, template, version, tag):
        """Writes between the node's start and the settled release (both
        after a sync), and the node's view of what it fetched."""
        disk = os.path.join(self.work, "disk.img")
        shutil.copy(template, disk)
        self.journal_regions(disk)
        marks = {}
        report = os.path.join(self.work, f"{tag}.disk.json")

        def on_line(line):
            for key in ("node-starting", " check "):
                if line.startswith("POWERCUT ") and key in line:
                    with open(report) as f:
                        marks[key.strip()] = json.load(f)

        boot = Boot(self, disk, tag, "keep", 0, on_line)
        out = self.settle(boot, version, self.args.settle_timeout)
        boot.cut()
        if out["settled"] is None:
            raise RuntimeError(f"{tag}: release {version} never settled; see {tag}.console")
        start, end = marks["node-starting"], marks["check"]
        written = {"total": end["write_bytes"] - start["write_bytes"],
                   "journal": end["regions"].get("journal", 0) - start["regions"].get("journal", 0),
                   "flushes": end["flushes"] - start["flushes"]}
        return written, out

    def run(self):
        images, initrds, empty, release2 = self.prepare_fleet("sd", sync_checks=True)
        log("full install of release 3")
        self.initrd = initrds["install"]
        full, _ = self.measure(empty, 3, "sd-install")
        log("delta upgrade from release 2 to release 3")
        self.initrd = initrds["upgrade"]
        delta, _ = self.measure(release2, 3, "sd-upgrade")
        return self.report(images, full, delta)

    def report(self, images, full, delta):
        r3, r2 = self.tracker.release(3), self.tracker.release(2)
        layers3 = {l["diff_id"]: l["length"] for l in r3["image"]["layers"]}
        layers2 = {l["diff_id"] for l in r2["image"]["layers"]}
        new_in_upgrade = {d: n for d, n in layers3.items() if d not in layers2}
        arts = r3["artifacts"]
        full_artifacts = sum(x["length"] for x in arts if x["kind"] == "full")
        # The planner's choice for the upgrade: the deltas to release 3's new layers.
        delta_artifacts = sum(min((x["length"] for x in arts if x["layer"] == d), default=0)
                              for d in new_in_upgrade)
        f3, f2 = image_files(os.path.join(images, "kiosk-v3.oci.tar")), image_files(
            os.path.join(images, "kiosk-v2.oci.tar"))
        changed = sum(size for p, (size, sha) in f3.items() if f2.get(p, (0, ""))[1] != sha)
        rows = []
        for name, w, layer_bytes, artifact_bytes, temp_tar in (
                ("full install", full, sum(layers3.values()), full_artifacts, 0),
                ("delta upgrade", delta, sum(new_in_upgrade.values()), delta_artifacts,
                 sum(new_in_upgrade.values()))):
            other = w["total"] - w["journal"] - layer_bytes - artifact_bytes - temp_tar
            rows.append({"update": name, "written_bytes": w["total"], "new_layer_bytes": layer_bytes,
                         "ratio": round(w["total"] / layer_bytes, 3),
                         "breakdown": {"layer_trees": layer_bytes, "artifacts_kept": artifact_bytes,
                                       "delta_temp_tar": temp_tar, "ext4_journal": w["journal"],
                                       "other": other},
                         "flushes": w["flushes"]})
        rows[1]["changed_file_bytes"] = changed
        rows[1]["ratio_to_changed_files"] = round(delta["total"] / changed, 3)
        print(f"\nbytes written to the device's disk (the cache disk's counters), node start to settled")
        print(f"{'update':<14} {'written':>12} {'new layers':>12} {'ratio':>6} {'layer trees':>12} "
              f"{'artifacts':>10} {'delta tar':>10} {'journal':>10} {'other':>10} {'flushes':>8}")
        for r in rows:
            b = r["breakdown"]
            print(f"{r['update']:<14} {r['written_bytes']:>12} {r['new_layer_bytes']:>12} "
                  f"{r['ratio']:>6} {b['layer_trees']:>12} {b['artifacts_kept']:>10} "
                  f"{b['delta_temp_tar']:>10} {b['ext4_journal']:>10} {b['other']:>10} {r['flushes']:>8}")
        print(f"delta upgrade: files that changed {changed} bytes; written / changed = "
              f"{rows[1]['ratio_to_changed_files']}")
        goal_met = rows[0]["ratio"] <= 1.5
        print(json.dumps({"bench": "sd-writes", "assets_mib": self.args.assets_mib,
                          "baseline": "the new layers' uncompressed size (ratio)",
                          "full_install": rows[0], "delta_upgrade": rows[1],
                          "goal": "full install writes <= 1.5 x the new layers' uncompressed size",
                          "goal_ratio_max": 1.5, "goal_met": goal_met}, separators=(",", ":")))
        return goal_met


def piece_length(repo):
    """The torrents' piece length (the largest, if they differ)."""
    lengths = []
    tdir = os.path.join(repo, "torrents")
    for name in os.listdir(tdir) if os.path.isdir(tdir) else []:
        with open(os.path.join(tdir, name), "rb") as f:
            m = re.search(rb"12:piece lengthi(\d+)e", f.read())
        if m:
            lengths.append(int(m.group(1)))
    return max(lengths) if lengths else 0


def report_power_cuts(h, install, upgrade, results):
    piece = piece_length(h.tracker.repo)
    phases = [name for name, _, _ in PHASES] + ["other", "missed"]
    print(f"\npower cuts: {len(results)} (cache disk mode {h.args.cut_mode}; "
          f"down limit {h.args.down_kib} KiB/s; piece {piece} B; resume checkpoint every 2 s)")
    print(f"{'phase':<10} {'cuts':>5} {'install':>8} {'upgrade':>8} {'store ok':>9} "
          f"{'up<=63s':>8} {'settled':>8} {'max re-dl B':>12} {'median settle s':>16}")
    per_phase = {}
    for p in phases:
        rs = [r for r in results if r["phase"] == p]
        if not rs:
            continue
        row = {"cuts": len(rs),
               "install": sum(r["scenario"] == "install" for r in rs),
               "upgrade": sum(r["scenario"] == "upgrade" for r in rs),
               "store_ok": sum(r["store_ok"] for r in rs),
               "up_in_time": sum(r["up_in_time"] for r in rs),
               "settled": sum(r["settled"] for r in rs),
               "max_redownloaded_bytes": max(r["redownloaded_bytes"] for r in rs),
               "median_settle_s": round(statistics.median(
                   [r["settled_after_init_s"] for r in rs if r["settled_after_init_s"] is not None]
                   or [0]), 1)}
        per_phase[p] = row
        print(f"{p:<10} {row['cuts']:>5} {row['install']:>8} {row['upgrade']:>8} "
              f"{row['store_ok']:>9} {row['up_in_time']:>8} {row['settled']:>8} "
              f"{row['max_redownloaded_bytes']:>12} {row['median_settle_s']:>16}")
    landed = [r for r in results if r["phase"] != "missed"]
    corrupted = sum(not r["store_ok"] for r in landed)
    bricked = sum(not (r["up_in_time"] and r["settled"]) for r in landed)
    redl = [r["redownloaded_bytes"] for r in landed]
    uncut = {"install": install.baseline_served, "upgrade": upgrade.baseline_served}
    redl_ratio = [r["redownloaded_bytes"] / uncut[r["scenario"]] for r in landed
                  if uncut[r["scenario"]]]
    over_bound = [r for r in landed if r["bytes_since_checkpoint"] is not None
                  and r["redownloaded_bytes"] > r["bytes_since_checkpoint"] + piece]
    print(f"\ncorrupted stores: {corrupted}; devices without a healthy running release after "
          f"boot: {bricked}; re-downloaded bytes per cut: median {statistics.median(redl or [0]):.0f}"
          f", max {max(redl or [0])} (max {max(redl_ratio or [0]):.3f} x the uncut update's "
          f"{uncut}); over the resume bound (bytes since the last checkpoint + one "
          f"piece): {len(over_bound)}")
    for r in results:
        if not r["ok"]:
            print(f"FAILED: {json.dumps(r)}")
    goal_met = corrupted == 0 and bricked == 0 and len(landed) >= 100
    print(json.dumps({
        "bench": "power-cut", "cuts": len(landed), "missed": len(results) - len(landed),
        "cut_mode": h.args.cut_mode, "down_kib_s": h.args.down_kib, "assets_mib": h.args.assets_mib,
        "piece_bytes": piece, "resume_checkpoint_s": 2,
        "corrupted_stores": corrupted, "devices_without_healthy_release": bricked,
        "redownloaded_bytes": {"median": statistics.median(redl or [0]), "max": max(redl or [0]),
                               "per_cut": redl},
        "over_resume_bound": len(over_bound),
        "baseline": "the uncut update of the same scenario (bytes the tracker served)",
        "baseline_served_bytes": uncut,
        "redownloaded_ratio_to_baseline": {"median": round(statistics.median(redl_ratio or [0]), 4),
                                           "max": round(max(redl_ratio or [0]), 4)},
        "cuts_planned": h.args.cuts,
        "per_phase": per_phase,
        "timing": {"install": install.timing, "upgrade": upgrade.timing},
        "goal": "0 corrupted stores and 0 devices without a healthy running release after boot, "
                "over >= 100 cuts",
        "goal_value": 0, "goal_met": goal_met}, separators=(",", ":")))
    return goal_met


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("what", choices=["power-cut", "sd-writes"])
    p.add_argument("--work", required=True)
    p.add_argument("--guest", required=True, help="directory with vmlinux and base.cpio")
    p.add_argument("--plugin", required=True, help="flotilla-cache-disk.so")
    p.add_argument("--tracker", required=True, help="flotilla-tracker")
    p.add_argument("--cuts", type=int, default=108)
    p.add_argument("--cut-mode", default="random", choices=["random", "prefix", "subset", "drop"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--phases", default="",
                   help="comma-separated phases to aim at (default: every phase)")
    p.add_argument("--time-limit", type=float, default=0,
                   help="seconds after which no further cut starts (0: none)")
    p.add_argument("--assets-mib", type=int, default=8)
    p.add_argument("--down-kib", type=int, default=1024)
    p.add_argument("--disk-mib", type=int, default=1024)
    p.add_argument("--settle-timeout", type=float, default=600)
    p.add_argument("--recovery-timeout", type=float, default=300,
                   help="seconds a boot after a cut has to finish the update")
    a = p.parse_args()
    if a.what == "power-cut":
        h = PowerCuts(a)
        try:
            install, upgrade, results = h.run()
            with open(os.path.join(a.work, "results.json"), "w") as f:
                json.dump(results, f, indent=1)
            ok = report_power_cuts(h, install, upgrade, results)
        finally:
            h.tracker.stop()
        sys.exit(0 if ok else 1)
    else:
        h = SdWrites(a)
        try:
            ok = h.run()
        finally:
            h.tracker.stop()
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
