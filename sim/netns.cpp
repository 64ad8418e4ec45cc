#include "sim/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>

#include "core/clock.h"
#include "core/fd.h"
#include "sim/command.h"

namespace flotilla::sim {
namespace {

constexpr char kNetnsDir[] = "/run/netns";

bool NetnsExists(const std::string& name) {
  std::string path = std::string(kNetnsDir) + "/" + name;
  return ::access(path.c_str(), F_OK) == 0;
}

void SignalAll(const std::vector<pid_t>& pids, int sig) {
  for (pid_t pid : pids) ::kill(pid, sig);
}

// Waits (on pidfds, no polling loop) until every process of the namespace
// has exited or `deadline` passes; true when none is left.
Result<bool> WaitEmpty(const std::string& name, MonoTime deadline) {
  Clock& clock = SystemClock::Instance();
  for (int round = 0; round < 100; ++round) {
    ASSIGN_OR_RETURN(auto pids, NetnsPids(name));
    if (pids.empty()) return true;
    for (pid_t pid : pids) {
      int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) continue;  // already gone
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.MonotonicNow());
      pollfd pfd = {fd, POLLIN, 0};
      if (left.count() > 0) ::poll(&pfd, 1, static_cast<int>(left.count()));
      ::close(fd);
    }
    if (clock.MonotonicNow() >= deadline) {
      ASSIGN_OR_RETURN(pids, NetnsPids(name));
      return pids.empty();
    }
  }
  return false;
}

}  // namespace

Status CreateNetns(const std::string& name) {
  RETURN_IF_ERROR(RunChecked({"ip", "netns", "add", name}).status());
  RETURN_IF_ERROR(RunChecked({"ip", "-n", name, "link", "set", "dev", "lo", "up"}).status());
  RETURN_IF_ERROR(SetSysctl(name, "net.ipv6.conf.all.disable_ipv6", "1"));
  return SetSysctl(name, "net.ipv6.conf.default.disable_ipv6", "1");
}

Status DestroyNetns(const std::string& name, int grace_ms) {
  if (!NetnsExists(name)) return Status::Ok();
  Clock& clock = SystemClock::Instance();
  ASSIGN_OR_RETURN(auto pids, NetnsPids(name));
  if (!pids.empty()) {
    SignalAll(pids, SIGTERM);
    ASSIGN_OR_RETURN(bool empty,
                     WaitEmpty(name, clock.MonotonicNow() + std::chrono::milliseconds(grace_ms)));
    if (!empty) {
      ASSIGN_OR_RETURN(pids, NetnsPids(name));
      SignalAll(pids, SIGKILL);
      ASSIGN_OR_RETURN(empty, WaitEmpty(name, clock.MonotonicNow() + std::chrono::seconds(5)));
      if (!empty) return FailedPrecondition("processes in namespace " + name + " survive SIGKILL");
    }
  }
  return RunChecked({"ip", "netns", "del", name}).status().WithContext("delete namespace");
}

Result<std::vector<std::string>> ListNetns() {
  std::vector<std::string> names;
  DIR* dir = ::opendir(kNetnsDir);
  if (dir == nullptr) {
    if (errno == ENOENT) return names;
    return IOErrorFromErrno(kNetnsDir, errno);
  }
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  return names;
}

Result<std::vector<pid_t>> NetnsPids(const std::string& name) {
  std::vector<pid_t> pids;
  if (!NetnsExists(name)) return pids;
  ASSIGN_OR_RETURN(std::string out, RunChecked({"ip", "netns", "pids", name}));
  std::istringstream in(out);
  long pid;
  while (in >> pid) {
    if (pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

Status SetSysctl(const std::string& ns, const std::string& key, const std::string& value) {
  return RunChecked(InNetns(ns, {"sysctl", "-q", "-w", key + "=" + value})).status();
}

Result<InterfaceCounters> ReadInterfaceCounters(const std::string& ns, const std::string& ifname) {
  ASSIGN_OR_RETURN(std::string text, ReadNetDevOf(ns));
  return ParseNetDev(text, ifname);
}

Result<InterfaceCounters> ParseNetDev(const std::string& text, const std::string& ifname) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t start = line.find_first_not_of(' ');
    if (line.compare(start, colon - start, ifname) != 0 || colon - start != ifname.size()) continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v[10] = {};
    for (uint64_t& x : v) fields >> x;
    if (!fields) return Corruption("short /proc/net/dev line for " + ifname);
    return InterfaceCounters{v[0], v[8], v[1], v[9]};
  }
  return NotFound("no interface " + ifname + " in /proc/net/dev");
}

Status RunInNetns(const std::string& ns, const std::function<void()>& f) {
  UniqueFd target(::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) return IOErrorFromErrno("open namespace " + ns, errno);
  UniqueFd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!own.valid()) return IOErrorFromErrno("open own namespace", errno);
  if (::setns(target.get(), CLONE_NEWNET) != 0) return IOErrorFromErrno("enter " + ns, errno);
  f();
  if (::setns(own.get(), CLONE_NEWNET) != 0) {
    return Internal("could not return to the caller's network namespace");
  }
  return Status::Ok();
}

Result<std::string> ReadNetDevOf(const std::string& ns) {
  // /proc/thread-self/net/dev is bound to the network namespace the thread
  // is in when it is opened: step in, open, step back. No process is spawned,
  // so a counter is read in microseconds (rates are measured with it).
  UniqueFd file;
  int err = 0;
  RETURN_IF_ERROR(RunInNetns(ns, [&] {
    file.Reset(::open("/proc/thread-self/net/dev", O_RDONLY | O_CLOEXEC));
    err = errno;
  }));
  if (!file.valid()) return IOErrorFromErrno("read counters of " + ns, err);
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(file.get(), buf, sizeof buf)) > 0 && text.size() < (1 << 20)) {
    text.append(buf, n);
  }
  return text;
}

}  // namespace flotilla::sim
