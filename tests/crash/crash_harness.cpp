#include "tests/crash/crash_harness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

namespace flotilla::testing {
namespace {

namespace fs = std::filesystem;

// tmpfs when there is one: this Env, not the disk, decides what a power cut keeps.
std::string ScratchDir() {
  return fs::is_directory("/dev/shm") ? "/dev/shm" : fs::canonical(::testing::TempDir()).string();
}

enum class Fault {
  kNone,
  kKillAtBoundary,
  kKillAtWrite,
  kCrashAtBoundary,
  kCrashAtWrite,
  kFailWrite,
  kFailSync
};

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return "none";
    case Fault::kKillAtBoundary:
      return "killed at boundary";
    case Fault::kKillAtWrite:
      return "killed at write";
    case Fault::kCrashAtBoundary:
      return "power cut at boundary";
    case Fault::kCrashAtWrite:
      return "power cut at write";
    case Fault::kFailWrite:
      return "failed write";
    case Fault::kFailSync:
      return "failed fsync";
  }
  return "?";
}

struct RunResult {
  size_t done = 0;
  uint64_t boundaries = 0;
  uint64_t writes = 0;
  uint64_t syncs = 0;
};

// One run in a fresh directory; returns how far the steps got.
RunResult RunOnce(const std::function<std::unique_ptr<CrashScenario>()>& make, Fault fault,
                  uint64_t n) {
  const std::string dir = ScratchDir() + "/crash-" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir + "/root");
  RunResult result;
  {
    FaultInjectionEnv env(dir + "/stash");
    std::unique_ptr<CrashScenario> scenario = make();
    const std::string root = dir + "/root";
    scenario->SetUp(env, root);
    EXPECT_TRUE(env.SyncFilesystem(root).ok());
    env.Reset();
    if (fault == Fault::kCrashAtBoundary || fault == Fault::kKillAtBoundary) {
      env.CrashAtBoundary(n);
    }
    if (fault == Fault::kCrashAtWrite || fault == Fault::kKillAtWrite) env.CrashAtWrite(n);
    if (fault == Fault::kFailWrite) env.FailWriteAt(n);
    if (fault == Fault::kFailSync) env.FailSyncAt(n);
    const bool transient = fault == Fault::kFailWrite || fault == Fault::kFailSync;
    for (; result.done < scenario->steps(); ++result.done) {
      Status st = scenario->RunStep(env, root, result.done);
      if (!st.ok() && transient) st = scenario->RunStep(env, root, result.done);  // fired once
      if (!st.ok()) break;
    }
    result.boundaries = env.boundaries();
    result.writes = env.writes();
    result.syncs = env.syncs();
    scenario->Close();
    if (fault == Fault::kCrashAtBoundary || fault == Fault::kCrashAtWrite) {
      Status cut = env.PowerCut();
      EXPECT_TRUE(cut.ok()) << cut.ToString();
    }
    env.Reset();
    if (transient) EXPECT_EQ(result.done, scenario->steps()) << "a retried step failed again";
    scenario->Check(env, root, result.done);
  }
  fs::remove_all(dir);
  return result;
}

std::vector<uint64_t> Sample(uint64_t count, size_t samples, std::mt19937_64& rng) {
  std::vector<uint64_t> all(count);
  for (uint64_t i = 0; i < count; ++i) all[i] = i + 1;
  if (count <= samples) return all;
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(samples);
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace

void RunCrashMatrix(const std::function<std::unique_ptr<CrashScenario>()>& make,
                    const CrashMatrix& matrix) {
  const RunResult full = RunOnce(make, Fault::kNone, 0);
  ASSERT_FALSE(::testing::Test::HasFailure()) << "the scenario fails without faults";
  std::mt19937_64 rng(matrix.seed);
  std::vector<std::pair<Fault, uint64_t>> runs;
  for (uint64_t b = 1; b <= full.boundaries; ++b) {
    runs.emplace_back(Fault::kKillAtBoundary, b);
    runs.emplace_back(Fault::kCrashAtBoundary, b);
  }
  for (uint64_t w : Sample(full.writes, matrix.write_samples, rng)) {
    runs.emplace_back(Fault::kCrashAtWrite, w);
  }
  for (uint64_t w : Sample(full.writes, matrix.kill_samples, rng)) {
    runs.emplace_back(Fault::kKillAtWrite, w);
  }
  for (uint64_t w : Sample(full.writes, matrix.transient_samples, rng)) {
    runs.emplace_back(Fault::kFailWrite, w);
  }
  for (uint64_t s : Sample(full.syncs, matrix.transient_samples, rng)) {
    runs.emplace_back(Fault::kFailSync, s);
  }
  std::map<size_t, int> interrupted_in;  // step -> crash runs that stopped there
  for (const auto& [fault, n] : runs) {
    SCOPED_TRACE(std::string(FaultName(fault)) + " " + std::to_string(n));
    RunResult r = RunOnce(make, fault, n);
    if (fault != Fault::kFailWrite && fault != Fault::kFailSync) ++interrupted_in[r.done];
    if (::testing::Test::HasFailure()) return;  // the first failing run says it all
  }
  std::string spread;
  for (const auto& [step, count] : interrupted_in) {
    spread += " step" + std::to_string(step) + "=" + std::to_string(count);
  }
  ::testing::Test::RecordProperty("boundaries", static_cast<int>(full.boundaries));
  ::testing::Test::RecordProperty("writes", static_cast<int>(full.writes));
  ::testing::Test::RecordProperty("interrupted", spread);
  std::printf("%llu boundaries, %llu writes, %zu runs; crashes interrupted:%s\n",
              static_cast<unsigned long long>(full.boundaries),
              static_cast<unsigned long long>(full.writes), runs.size(), spread.c_str());
}

}  // namespace flotilla::testing
