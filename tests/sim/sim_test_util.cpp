#include "tests/sim/sim_test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "sim/netns.h"
#include "tests/support/test_util.h"

extern char** environ;

namespace flotilla::sim::testing {

Background::~Background() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

Background Background::Start(const std::vector<std::string>& argv, const std::string& log_path) {
  Background b;
  b.log_ = log_path;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (::posix_spawnp(&b.pid_, args[0], &actions, nullptr, args.data(), environ) != 0) b.pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  return b;
}

int Background::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Background::Output() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Background::WaitForOutput(const std::string& text, double seconds) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Output().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::vector<std::string> SimIn(const std::string& ns, std::vector<std::string> args) {
  std::vector<std::string> argv = {"ip", "netns", "exec", ns,
                                   flotilla::testing::BinaryPath("flotilla-sim")};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Json LastJson(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  Json last;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = ParseJsonStrict(line);
    if (j.ok()) last = *j;
  }
  return last;
}

std::vector<std::string> NetnsOf(const std::string& run_id) {
  std::vector<std::string> found;
  const std::vector<std::string> all = ListNetns().value();
  for (const std::string& ns : all) {
    if (ns.find(run_id) != std::string::npos) found.push_back(ns);
  }
  return found;
}

UdpProbeResult RunUdpProbe(const std::string& from_ns, const std::string& to_ns,
                           const std::string& to_address, int count, int interval_us, int size,
                           const std::string& log_dir, double timeout_s) {
  static int serial = 0;
  const std::string tag = log_dir + "/udp" + std::to_string(++serial);
  const std::string timeout = std::to_string(timeout_s);
  Background sink = Background::Start(
      SimIn(to_ns, {"probe", "udp-sink", "--port", "5000", "--timeout", timeout}), tag + ".sink");
  UdpProbeResult result;
  if (!sink.WaitForOutput("listening", 10)) return result;
  Background sender = Background::Start(
      SimIn(from_ns, {"probe", "udp-send", "--to", to_address + ":5000", "--count",
                      std::to_string(count), "--interval-us", std::to_string(interval_us), "--size",
                      std::to_string(size), "--timeout", std::to_string(timeout_s / 2)}),
      tag + ".send");
  result.sender_exit = sender.Wait();
  if (result.sender_exit != 0) ::kill(sink.pid(), SIGKILL);
  sink.Wait();
  result.sink = LastJson(sink.Output());
  return result;
}

TopologySpec OneSite(LinkShape wan_down, LinkShape wan_up, bool nat, int devices) {
  TopologySpec spec;
  SiteSpec site;
  site.name = "one";
  site.devices = devices;
  site.nat = nat;
  site.wan_down = wan_down;
  site.wan_up = wan_up;
  spec.sites.push_back(site);
  return spec;
}

}  // namespace flotilla::sim::testing
