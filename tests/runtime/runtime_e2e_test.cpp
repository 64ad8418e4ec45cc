// Containers as the app sees them: every assertion about isolation is made
// from inside, by the probe, in a real container started by flotilla-node.
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "appspec/app_spec.h"
#include "core/file_io.h"
#include "runtime/runtime.h"
#include "tests/runtime/runtime_fixture.h"

namespace flotilla::testing {
namespace {

uint64_t CapMask(const std::vector<std::string>& caps) {
  uint64_t mask = 0;
  for (const auto& c : caps) mask |= uint64_t{1} << *appspec::CapabilityNumber(c);
  return mask;
}

std::string Hex16(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

class RuntimeE2eTest : public RuntimeTest {};

TEST_F(RuntimeE2eTest, ContainerIsIsolatedAsSeenFromInside) {
  Json spec = BaseSpec("facts", {"/probe", "facts", sentinel_, "stay"});
  spec["hostname"] = "kiosk-7";
  spec["env"] = {"GREETING=hello"};
  spec["cwd"] = "/data";
  spec["capabilities"] = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  auto deployed = Deploy(spec, "r1");
  ASSERT_EQ(deployed.exit_code, 0) << deployed.output;
  ASSERT_TRUE(WaitForLog("facts", "pid1_exe=")) << Logs("facts");
  auto f = ParseFacts(Logs("facts"));
  // flotilla's init is PID 1, the app its child.
  EXPECT_EQ(f["pid"], "2");
  EXPECT_EQ(f["ppid"], "1");
  EXPECT_EQ(f["pid1_comm"], "flotilla-init");
  EXPECT_EQ(f["proc_pids"], "1,2");  // /proc shows the container only
  EXPECT_EQ(f["hostname"], "kiosk-7");
  EXPECT_EQ(f["sentinel_visible"], "0");  // the host's files are out of reach
  EXPECT_EQ(f["sys_mkdir"], "Read-only file system");
  EXPECT_EQ(f["dev"],
            "core,fd,full,mqueue,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,"
            "urandom,zero");
  const std::string caps = Hex16(CapMask({"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}));
  for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(f[set], caps) << set;
  }
  EXPECT_EQ(f["NoNewPrivs"], "1");
  EXPECT_EQ(f["Seccomp"], "2");
  EXPECT_EQ(f["mount"], "Operation not permitted");  // denied by seccomp and caps
  EXPECT_EQ(f["unshare_user"], "Operation not permitted");
  EXPECT_EQ(f["clone3"], "Function not implemented");  // not on the allow list: ENOSYS
  EXPECT_EQ(f["pid1_exe"], "Permission denied");       // init is not dumpable
  EXPECT_EQ(f["timer_list_bytes"], "0");               // masked
  EXPECT_EQ(f["proc_sys_write"], "Read-only file system");
  EXPECT_EQ(f["env_GREETING"], "hello");
  EXPECT_EQ(f["cwd"], "/data");
  EXPECT_EQ(f["Uid"], "0\t0\t0\t0");
}

// A container that cannot start reports its own reason, whether it fails
// while building its root filesystem or when exec'ing the app; nothing of
// it is left running.
TEST_F(RuntimeE2eTest, StartErrorsCarryTheContainersOwnReason) {
  Json bad_mount = BaseSpec("badmount", {"/probe", "exit", "0"});
  const std::string missing = "/nonexistent-flotilla-test/source";
  bad_mount["mounts"] = {{{"type", "bind"}, {"source", missing}, {"destination", "/data"}}};
  auto r = Deploy(bad_mount, "r1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("mount source " + missing + ": No such file"), std::string::npos)
      << r.output;
  auto e = Deploy(BaseSpec("badexec", {"/no/such/program"}), "r1");
  EXPECT_NE(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("exec /no/such/program: No such file"), std::string::npos) << e.output;
  for (const char* app : {"badmount", "badexec"}) {
    EXPECT_EQ(Ls()[app]["running_releases"], Json::array()) << app;
  }
}

// In a chroot into a plain directory `/` is not a mount point: no container
// can be set up there (its mounts could not be kept from the host's), and
// the error says so and what to do, instead of mount(2)'s EINVAL.
TEST_F(RuntimeE2eTest, ARootThatIsNotAMountPointIsAClearError) {
  namespace fs = std::filesystem;
  const std::string root = dir_ + "/plain-root";  // a directory of the test's tmp, not a mount
  for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/app"}) fs::create_directories(root + d);
  // flotilla-node's front end and the monitor are static: they run in any root.
  fs::copy_file(BinaryPath("flotilla-node"), root + "/bin/flotilla-node");
  fs::copy_file(FLOTILLA_MONITOR_BINARY, root + "/bin/flotilla-monitor");
  fs::copy(lower_, root + "/app/lower",
           fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  ASSERT_TRUE(
      WriteFileAtomic(root + "/app/spec.json", BaseSpec("plain", {"/probe", "exit", "0"}).dump())
          .ok());
  auto r = RunShell("unshare --mount --propagation private sh -c 'mount -t proc proc " + root +
                    "/proc && mount --rbind /sys " + root + "/sys && mount --rbind /dev " + root +
                    "/dev && FLOTILLA_MONITOR=/bin/flotilla-monitor chroot " + root +
                    " /bin/flotilla-node app deploy --spec /app/spec.json --lower /app/lower "
                    "--release r1 --state-dir /app/state' 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("/ is not a mount point"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mount --bind DIR DIR"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Invalid argument"), std::string::npos) << r.output;
}

TEST_F(RuntimeE2eTest, DefaultCapabilitiesAndNonRootUser) {
  Json spec = BaseSpec("user", {"/probe", "facts", sentinel_, "stay"});
  spec["user"] = {{"uid", 1000}, {"gid", 1001}, {"additional_gids", {44, 45}}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0);
  ASSERT_TRUE(WaitForLog("user", "pid1_exe=")) << Logs("user");
  auto f = ParseFacts(Logs("user"));
  EXPECT_EQ(f["Uid"], "1000\t1000\t1000\t1000");
  EXPECT_EQ(f["Gid"], "1001\t1001\t1001\t1001");
  EXPECT_EQ(f["Groups"], "44 45 ");  // as the kernel prints it
  const std::string caps = Hex16(CapMask(appspec::DefaultCapabilities()));
  for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(f[set], caps) << set;
  }
}

TEST_F(RuntimeE2eTest, MemoryLimitOomKillsAHog) {
  Json spec = BaseSpec("hog", {"/probe", "hog"});
  spec["resources"] = {{"memory_bytes", 32 << 20}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Ls()["hog"]["state"] == "exited"; }, 30)) << Logs("hog");
  auto app = Ls()["hog"];
  EXPECT_EQ(app["last_exit"], "killed by signal 9 (out of memory)") << app.dump();
  EXPECT_NE(Logs("hog").find("hog: 16 MiB"), std::string::npos);
  EXPECT_EQ(Logs("hog").find("malloc failed"), std::string::npos);
}

TEST_F(RuntimeE2eTest, PidsLimitStopsAForkBomb) {
  Json spec =
      BaseSpec("bomb", {"/bin/sh", "-c", "/probe forkbomb 200; exec /probe tick idle 1000"});
  spec["resources"] = {{"pids", 16}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0);
  ASSERT_TRUE(WaitForLog("bomb", "fork_error=")) << Logs("bomb");
  auto f = ParseFacts(Logs("bomb"));
  EXPECT_EQ(f["fork_error"], "Resource temporarily unavailable");
  // init, sh and the probe count too.
  EXPECT_LE(std::stoi(f["forked"]), 16 - 3);
  EXPECT_GE(std::stoi(f["forked"]), 8);
}

TEST_F(RuntimeE2eTest, GrantedDeviceUsableOthersRefused) {
  Json spec = BaseSpec("dev", {"/bin/sh", "-c",
                               "/probe open /dev/net/tun; /probe mknod /tmp/kmsg 1 11; "
                               "/probe mknod /tmp/tun2 10 200; exec /probe tick idle 1000"});
  spec["devices"] = {{{"path", "/dev/net/tun"}, {"access", "rw"}}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0) << Logs("dev");
  ASSERT_TRUE(WaitForLog("dev", "open /tmp/tun2=")) << Logs("dev");
  auto f = ParseFacts(Logs("dev"));
  EXPECT_EQ(f["open /dev/net/tun"], "none");  // granted
  EXPECT_EQ(f["mknod /tmp/kmsg"], "none");    // making a node is allowed (OCI default)...
  EXPECT_EQ(f["open /tmp/kmsg"], "Operation not permitted");  // ...using it is not
  EXPECT_EQ(f["open /tmp/tun2"], "none");  // the granted major:minor, by another name
}

// `app run` is one-shot, like `runc run`: the app's output, its exit code
// (128+signal when killed; 125 when it cannot start), and nothing of the
// container left afterwards: no monitor, no cgroup, no run directory.
TEST_F(RuntimeE2eTest, RunOncePrintsTheOutputReturnsTheExitCodeAndLeavesNothing) {
  auto write_spec = [&](const std::string& name, const Json& command) {
    const std::string path = dir_ + "/spec-" + name + ".json";
    EXPECT_TRUE(WriteFileAtomic(path, BaseSpec(name, command).dump()).ok());
    return path;
  };
  auto exited = App("run --spec " + write_spec("once", {"/bin/sh", "-c", "echo hi there; exit 7"}) +
                    " --lower " + lower_);
  EXPECT_EQ(exited.exit_code, 7) << exited.output;
  EXPECT_NE(exited.output.find("hi there"), std::string::npos) << exited.output;
  auto killed = App("run --spec " + write_spec("killed", {"/bin/sh", "-c", "kill -9 $$"}) +
                    " --lower " + lower_);
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;
  auto bad = App("run --spec " + write_spec("bad", {"/no/such/program"}) + " --lower " + lower_);
  EXPECT_EQ(bad.exit_code, 125) << bad.output;
  EXPECT_NE(bad.output.find("/no/such/program"), std::string::npos) << bad.output;

  EXPECT_EQ(RunShell("pgrep -f -- '[f]lotilla-monitor run " + state_ + "'").output, "");
  auto parent = runtime::CgroupParentFor(state_);
  ASSERT_TRUE(parent.ok());
  for (const char* ctrl : {"memory", "pids", "cpu", "devices"}) {
    // Not even the state dir's flotilla-<hash> parent.
    const std::string base = "/sys/fs/cgroup/" + std::string(ctrl) + "/" + *parent;
    EXPECT_FALSE(std::filesystem::exists(base)) << base;
  }
  EXPECT_TRUE(!std::filesystem::exists(state_ + "/run") ||
              std::filesystem::is_empty(state_ + "/run"));
}

// The cgroup entries of one /proc/<pid>/cgroup fact ("h:ctrl:path;..."),
// as controller list -> path.
std::map<std::string, std::string> CgroupPaths(const std::string& fact) {
  std::map<std::string, std::string> paths;
  std::stringstream lines(fact);
  std::string line;
  while (std::getline(lines, line, ';')) {
    size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    paths[line.substr(first + 1, second - first - 1)] = line.substr(second + 1);
  }
  return paths;
}

// On cgroup v1, PID 1 moves itself into the container's cgroups (through
// `tasks`, the fast path) before anything else: init and the app are in all
// four of them, and the limits hold (other tests).
TEST_F(RuntimeE2eTest, InitAndAppAreInTheContainersV1Cgroups) {
  if (!std::filesystem::exists("/sys/fs/cgroup/memory/tasks")) {
    GTEST_SKIP() << "no cgroup v1 memory hierarchy on this host";
  }
  ASSERT_EQ(
      Deploy(BaseSpec("cg", {"/bin/sh", "-c", "/probe cgroups; exec /probe tick idle 1000"}), "r1")
          .exit_code,
      0)
      << Logs("cg");
  ASSERT_TRUE(WaitForLog("cg", "cgroup_self=")) << Logs("cg");
  auto f = ParseFacts(Logs("cg"));
  for (const char* who : {"cgroup_1", "cgroup_self"}) {
    auto paths = CgroupPaths(f[who]);
    for (const char* ctrl : {"memory", "pids", "cpu", "devices"}) {
      EXPECT_NE(paths[ctrl].find("/flotilla-"), std::string::npos) << who << " " << ctrl;
      EXPECT_NE(paths[ctrl].find("cg"), std::string::npos) << who << " " << ctrl << f[who];
    }
  }
}

// On cgroup v2 the container's PID 1 is created inside its cgroup by
// clone3(CLONE_INTO_CGROUP). This hybrid host's cgroup2 mount has no
// controllers, but it is a real cgroup2 hierarchy: membership and the eBPF
// device filter work on it, which is what this test checks.
TEST_F(RuntimeE2eTest, OnCgroupV2TheContainerIsBornInItsCgroupAndDevicesAreFiltered) {
  std::string v2 = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")
                       ? "/sys/fs/cgroup"
                       : "/sys/fs/cgroup/unified";
  if (!std::filesystem::exists(v2 + "/cgroup.procs")) GTEST_SKIP() << "no cgroup2 mount";
  const std::string flags = " --cgroup-version 2 --cgroup-root " + v2;
  Json spec = BaseSpec("cg2", {"/bin/sh", "-c",
                               "/probe cgroups; /probe mknod /tmp/kmsg 1 11; "
                               "/probe open /dev/null; exec /probe tick idle 1000"});
  const std::string path = dir_ + "/spec-cg2.json";
  ASSERT_TRUE(WriteFileAtomic(path, spec.dump()).ok());
  auto deployed = App("deploy --spec " + path + " --lower " + lower_ + " --release r1" + flags);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.output;
  ASSERT_TRUE(WaitForLog("cg2", "open /dev/null=")) << Logs("cg2");
  auto f = ParseFacts(Logs("cg2"));
  std::string v2_path;
  for (const char* who : {"cgroup_1", "cgroup_self"}) {
    auto paths = CgroupPaths(f[who]);
    EXPECT_NE(paths[""].find("/flotilla-"), std::string::npos) << who << ": " << f[who];
    EXPECT_NE(paths[""].find("cg2"), std::string::npos) << who << ": " << f[who];
    v2_path = paths[""];
  }
  EXPECT_EQ(f["open /tmp/kmsg"], "Operation not permitted");  // the eBPF filter
  EXPECT_EQ(f["open /dev/null"], "none");
  // The cgroup is the one the runtime made, and goes with the app.
  EXPECT_TRUE(std::filesystem::exists(v2 + v2_path)) << v2 + v2_path;
  EXPECT_EQ(App("stop cg2" + flags).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(v2 + v2_path));
  std::filesystem::path parent = std::filesystem::path(v2 + v2_path).parent_path();
  while (parent.string().size() > v2.size() && ::rmdir(parent.c_str()) == 0) {
    parent = parent.parent_path();
  }
}

TEST_F(RuntimeE2eTest, TwoAppsCannotSeeEachOthersFilesProcessesOrIpc) {
  const int key = 0x7f10 + (::getpid() % 1000);
  Json a = BaseSpec(
      "alpha", {"/bin/sh", "-c",
                "echo secret > /tmp/alpha-secret; exec /probe shm create " + std::to_string(key)});
  ASSERT_EQ(Deploy(a, "r1").exit_code, 0);
  ASSERT_TRUE(WaitForLog("alpha", "shm_create=none")) << Logs("alpha");
  Json b = BaseSpec("beta", {"/bin/sh", "-c",
                             "ls /tmp; /probe shm find " + std::to_string(key) +
                                 "; echo procs=$(ls /proc | grep '^[0-9]' | tr '\\n' ' '); "
                                 "exec /probe tick idle 1000"});
  ASSERT_EQ(Deploy(b, "r1").exit_code, 0);
  ASSERT_TRUE(WaitForLog("beta", "procs=")) << Logs("beta");
  std::string seen = Logs("beta");
  EXPECT_EQ(seen.find("alpha-secret"), std::string::npos) << seen;
  EXPECT_NE(seen.find("shm_find=No such file or directory"), std::string::npos) << seen;
  // beta's /proc: its init, sh, and the short-lived ls/grep/tr: all small pids.
  auto procs = ParseFacts(seen)["procs"];
  for (size_t pos = 0; pos < procs.size();) {
    size_t end = procs.find(' ', pos);
    if (end == std::string::npos) end = procs.size();
    if (end > pos) {
      EXPECT_LT(std::stoi(procs.substr(pos, end - pos)), 20) << procs;
    }
    pos = end + 1;
  }
  // Nor does the host see alpha's IPC.
  EXPECT_LT(::shmget(key, 0, 0), 0);
  auto apps = Ls();
  EXPECT_NE(apps["alpha"]["pid"], apps["beta"]["pid"]);
}

TEST_F(RuntimeE2eTest, AppsSurviveNodeKillAndAreReadopted) {
  std::string node = "env FLOTILLA_MONITOR=" + std::string(FLOTILLA_MONITOR_BINARY) + " " +
                     BinaryPath("flotilla-node") + " app supervise --state-dir " + state_;
  Json ticker = BaseSpec("ticker", {"/probe", "tick", "line", "100"});
  ticker["restart"] = {{"policy", "on-failure"}, {"backoff_initial_ms", 100}};
  Json quitter = BaseSpec("quitter", {"/probe", "exit-when", "/data/stop", "7"});
  quitter["restart"] = {{"policy", "on-failure"}, {"backoff_initial_ms", 100}};
  quitter["mounts"] = {{{"type", "volume"}, {"name", "data"}, {"destination", "/data"}}};
  ASSERT_EQ(Deploy(ticker, "r1").exit_code, 0);
  ASSERT_EQ(Deploy(quitter, "r1").exit_code, 0);

  // The node: a supervisor process, then killed with SIGKILL.
  pid_t supervisor = ::fork();
  if (supervisor == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + node).c_str(), nullptr);
    ::_exit(127);
  }
  auto before = Ls();
  ASSERT_TRUE(WaitForLog("ticker", "line 3"));
  ::kill(supervisor, SIGKILL);
  ::waitpid(supervisor, nullptr, 0);

  // While no node runs: the ticker keeps writing, the quitter exits with 7.
  pid_t ticker_pid = before["ticker"]["pid"].get<pid_t>();
  std::ofstream(state_ + "/apps/quitter/volumes/data/stop") << "now\n";
  ASSERT_TRUE(WaitFor(
      [&] { return std::filesystem::exists(state_ + "/apps/quitter/releases/r1/exit.json"); }));
  std::string logs_then = Logs("ticker");
  int last_line = 0;
  for (size_t pos = 0; (pos = logs_then.find("line ", pos)) != std::string::npos; pos += 5) {
    last_line = std::atoi(logs_then.c_str() + pos + 5);
  }
  ASSERT_TRUE(WaitForLog("ticker", "line " + std::to_string(last_line + 3)));
  EXPECT_TRUE(Alive(ticker_pid));

  // The node comes back: same ticker PID, exit of the quitter known, and
  // the quitter restarted by its on-failure policy.
  std::filesystem::remove(state_ + "/apps/quitter/volumes/data/stop");
  supervisor = ::fork();
  if (supervisor == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + node).c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_TRUE(WaitFor([&] { return Ls()["quitter"]["restarts"] == 1; }));
  auto after = Ls();
  EXPECT_EQ(after["ticker"]["pid"], before["ticker"]["pid"]);
  EXPECT_EQ(after["ticker"]["state"], "running");
  EXPECT_EQ(after["quitter"]["last_exit"], "exited with code 7");
  ASSERT_TRUE(WaitFor([&] { return Ls()["quitter"]["state"] == "running"; }));
  EXPECT_NE(Ls()["quitter"]["pid"], before["quitter"]["pid"]);

  // A later crash (the app killed inside the container) is restarted too.
  pid_t app = AppPidUnder(ticker_pid);
  ASSERT_GT(app, 0);
  ::kill(app, SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    auto now = Ls()["ticker"];
    return now["restarts"] == 1 && now["state"] == "running";
  }));
  EXPECT_EQ(Ls()["ticker"]["last_exit"], "killed by signal 9");
  EXPECT_NE(Ls()["ticker"]["pid"], before["ticker"]["pid"]);
  ::kill(supervisor, SIGKILL);
  ::waitpid(supervisor, nullptr, 0);
}

TEST_F(RuntimeE2eTest, NetworkNoneHasOnlyLoopbackAndTheHttpCheckReachesIt) {
  const int port = 20000 + ::getpid() % 20000;
  Json spec = BaseSpec(
      "netless", {"/bin/sh", "-c",
                  "echo ifaces=$(ls /sys/class/net); exec /probe http " + std::to_string(port)});
  spec["network"] = "none";
  spec["health"] = {{"type", "http"}, {"port", port}, {"interval_ms", 50}};
  spec["switch"] = {{"healthy_deadline_ms", 5000}};
  // Healthy means the check entered the container's network namespace.
  auto r = Deploy(spec, "r1");
  ASSERT_EQ(r.exit_code, 0) << r.output << Logs("netless", "r1");
  EXPECT_NE(Logs("netless").find("ifaces=lo\n"), std::string::npos) << Logs("netless");
  // The host's loopback has no such listener.
  EXPECT_NE(RunShell("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + "'").exit_code,
            0);
}

TEST_F(RuntimeE2eTest, ExportsAnOciBundleThatRuncRuns) {
  Json spec = BaseSpec("exported", {"/probe", "facts", sentinel_, "stay"});
  spec["resources"] = {{"memory_bytes", 64 << 20}, {"pids", 32}};
  ASSERT_EQ(Deploy(spec, "r1").exit_code, 0);
  std::string bundle = dir_ + "/bundle";
  auto exported = App("export exported --out " + bundle);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  auto config = ParseJsonStrict(RunShell("cat " + bundle + "/config.json").output);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)["process"]["args"][0], "/probe");
  EXPECT_EQ((*config)["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_TRUE(std::filesystem::exists(bundle + "/rootfs/probe"));
  EXPECT_TRUE(std::filesystem::is_symlink(bundle + "/rootfs/bin/sh"));
  // runc runs the same bundle (without "stay" so that it ends).
  (*config)["process"]["args"] = {"/probe", "facts", sentinel_};
  std::ofstream(bundle + "/config.json") << config->dump();
  std::string id = "flotilla-test-" + std::to_string(::getpid());
  auto run = RunShell("cd " + bundle + " && runc --root " + dir_ + "/runc run " + id);
  auto f = ParseFacts(run.output);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(f["pid"], "1");      // runc runs the app as PID 1
  EXPECT_EQ(f["Seccomp"], "2");  // the exported profile, applied by runc
  EXPECT_EQ(f["clone3"], "Function not implemented");
  EXPECT_EQ(f["mount"], "Operation not permitted");
  EXPECT_EQ(f["sentinel_visible"], "0");
  RunShell("runc --root " + dir_ + "/runc delete -f " + id);
}

}  // namespace
}  // namespace flotilla::testing
