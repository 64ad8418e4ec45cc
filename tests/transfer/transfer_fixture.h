// Support for the transfer tests: a real tracker serving artifacts, and
// flotilla-fetch-test processes (one TorrentFetcher each) that a test can
// start, stop, SIGKILL and read progress from.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node/transfer/artifact_fetcher.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/tracker_process.h"

namespace flotilla::testing {

// Path of a test-only helper built in tests/transfer/ (flotilla-fetch-test...).
std::string TestBinaryPath(const std::string& name);

struct TestArtifact {
  node::ArtifactRequest request;
  std::string hex;
  std::string content;
  int piece_size = 0;
  std::string Arg() const;  // sha256:HEX,LENGTH,INFOHASH for --artifact
};

// A flotilla-fetch-test process; its stdout (JSON lines) goes to a file.
class FetchProcess {
 public:
  // Starts the process and waits for its listening line.
  bool Start(const std::string& log_path, const std::vector<std::string>& args);
  void Stop() { process_.Stop(std::chrono::seconds(15)); }  // SIGTERM (clean shutdown), wait
  void Kill() { process_.Kill(); }
  bool running() const { return process_.running(); }
  bool Exited() { return process_.Exited(); }  // reaps the process if it has exited on its own
  int port() const { return port_; }

  // Every JSON line printed so far (across restarts that share the log).
  std::vector<nlohmann::json> Lines() const;
  // The last progress line, or null.
  nlohmann::json Last() const;
  // Polls Last() every 100 ms until `done(last)` or `timeout`.
  bool WaitFor(const std::function<bool(const nlohmann::json&)>& done,
               std::chrono::milliseconds timeout);
  std::string Log() const;

 private:
  ChildProcess process_;
  int port_ = 0;
  std::string log_path_;
  size_t lines_before_start_ = 0;
};

// Field `key` of the first artifact of a progress line (0 when absent).
uint64_t ArtifactField(const nlohmann::json& line, const std::string& key);
std::string ArtifactState(const nlohmann::json& line);
// Whether the first artifact of a progress line is complete.
inline bool ArtifactComplete(const nlohmann::json& line) {
  return ArtifactState(line) == "complete";
}

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Makes `size` pseudo-random bytes an artifact of the tracker's repository.
  TestArtifact AddArtifact(size_t size, int piece_kib, uint32_t seed);
  // Arguments of a node listening on `ip` (port 0) with its own data dir.
  std::vector<std::string> NodeArgs(const std::string& name, const std::string& ip,
                                    const TestArtifact& artifact);
  std::string DataDir(const std::string& name) const { return dir_ + "/node-" + name; }
  // Bytes the tracker served of `hex` (its /metrics).
  uint64_t TrackerBytesServed(const std::string& hex);

  std::string dir_;
  std::string repo_;
  TrackerProcess tracker_;
};

}  // namespace flotilla::testing
