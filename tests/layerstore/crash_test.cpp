// SIGKILL during import, at least 50 times, landing in every phase (reading,
// unpacking, promoting, indexing; counted by the last progress line the
// killed process wrote). After each kill the store must open cleanly, pass
// `verify`, and a re-import must complete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

struct KillOutcome {
  bool killed = false;  // false: the import finished before the kill
  std::string phase;    // last phase it reported
};

// Starts `argv`, waits for a progress line of `target` phase, waits
// `delay`, SIGKILLs it, and reports the last phase it wrote.
KillOutcome RunAndKill(const std::vector<std::string>& argv, const std::string& target,
                       std::chrono::microseconds delay) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string output;
  KillOutcome outcome;
  bool sent = false;
  char buf[4096];
  for (;;) {
    if (!sent && output.find("phase=" + target) != std::string::npos) {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
      sent = true;
    }
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  outcome.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  size_t at = output.rfind("phase=");
  if (at != std::string::npos) {
    outcome.phase = output.substr(at + 6, output.find(' ', at) - at - 6);
  }
  return outcome;
}

TEST(LayerStoreCrashTest, SigkillInEveryPhaseLeavesAUsableStore) {
  const std::string dir = MakeTempDir("lscrash");
  ASSERT_FALSE(dir.empty());
  // A private tmpfs: SIGKILL loses nothing the page cache holds, so this
  // tests the same thing as a disk, without each import's syncfs waiting on
  // whatever else the machine is writing.
  ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=512m"), 0) << std::strerror(errno);
  auto made = RunShell("bash " + std::string(FLOTILLA_SOURCE_DIR) +
                       "/tests/layerstore/make_image.sh " + dir + " big");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string node = BinaryPath("flotilla-node");
  const std::string store = dir + "/store";
  const std::string cli = node + " store -q --store " + store;
  const std::vector<std::string> import = {node,     "store",          "--store", store,
                                           "import", dir + "/oci.tar", "--name",  "crash:1"};
  const std::vector<std::string> phases = {"reading", "unpacking", "promoting", "indexing"};
  std::map<std::string, int> kills;
  std::mt19937 rng(20261128);
  int total = 0, finished_first = 0;
  auto fewest = [&] {
    int least = 1 << 30;
    for (const auto& phase : phases) least = std::min(least, kills[phase]);
    return least;
  };
  // Short phases are targeted more often; the loop ends once there are 50
  // kills with at least 2 in each phase (or after 150 rounds).
  const std::vector<std::string> targets = {"reading", "unpacking", "promoting", "indexing",
                                            "promoting"};
  for (int round = 0; round < 150 && (total < 50 || fewest() < 2); ++round) {
    const std::string& target = targets[round % targets.size()];
    // Long phases get kills spread over them; short ones get killed at once.
    int max_us = target == "unpacking" ? 300000 : target == "reading" ? 20000 : 500;
    auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, max_us)(rng));
    KillOutcome outcome = RunAndKill(import, target, delay);
    if (outcome.killed && outcome.phase != "done") {
      ++kills[outcome.phase];
      ++total;
    } else {
      ++finished_first;
    }
    auto verify = RunShell(cli + " verify");
    ASSERT_EQ(verify.exit_code, 0) << "after a kill in " << outcome.phase << ": " << verify.output;
    auto again = RunShell(cli + " import " + dir + "/oci.tar --name crash:1");
    ASSERT_EQ(again.exit_code, 0) << "re-import after a kill in " << outcome.phase << ": "
                                  << again.output;
    auto rm = RunShell(cli + " rm crash:1 && " + cli + " gc");
    ASSERT_EQ(rm.exit_code, 0) << rm.output;
  }
  std::string summary;
  for (const auto& [phase, n] : kills) summary += phase + "=" + std::to_string(n) + " ";
  std::printf("SIGKILLs per phase: %s(total %d; %d imports finished before the kill)\n",
              summary.c_str(), total, finished_first);
  EXPECT_GE(total, 50) << summary;
  for (const auto& phase : phases) EXPECT_GE(kills[phase], 1) << phase << ": " << summary;
  // A final import and a full verify of what it left.
  auto last = RunShell(cli + " import " + dir + "/oci.tar --name crash:1 && " + cli + " verify");
  EXPECT_EQ(last.exit_code, 0) << last.output;
  ::umount2(dir.c_str(), MNT_DETACH);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
