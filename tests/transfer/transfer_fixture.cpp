#include "tests/transfer/transfer_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/bytes.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {

std::string TestBinaryPath(const std::string& name) {
  return std::string(FLOTILLA_BINARY_DIR) + "/tests/transfer/" + name;
}

std::string TestArtifact::Arg() const {
  return request.sha256.ToString() + "," + std::to_string(request.length) + "," +
         HexEncode(ByteSpan(request.info_hash.data(), request.info_hash.size()));
}

bool FetchProcess::Start(const std::string& log_path, const std::vector<std::string>& args) {
  log_path_ = log_path;
  lines_before_start_ = Lines().size();
  std::vector<std::string> argv_strings = {TestBinaryPath("flotilla-fetch-test")};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  if (!process_.Start(argv_strings, log_path, log_path + ".err")) return false;
  for (int i = 0; i < 200; ++i) {
    auto lines = Lines();
    for (size_t j = lines_before_start_; j < lines.size(); ++j) {
      if (lines[j].value("event", "") == "listening") {
        port_ = lines[j].value("port", 0);
        return port_ > 0;
      }
    }
    if (Exited()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::vector<nlohmann::json> FetchProcess::Lines() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(log_path_);
  std::string line;
  while (std::getline(in, line)) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) out.push_back(std::move(parsed));
  }
  return out;
}

nlohmann::json FetchProcess::Last() const {
  auto lines = Lines();
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->value("event", "") == "progress") return *it;
  }
  return nullptr;
}

bool FetchProcess::WaitFor(const std::function<bool(const nlohmann::json&)>& done,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    nlohmann::json last = Last();
    if (!last.is_null() && done(last)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string FetchProcess::Log() const {
  std::ifstream out(log_path_), err(log_path_ + ".err");
  std::stringstream s;
  s << "--- stderr:\n" << err.rdbuf() << "--- last stdout line: " << Last().dump() << "\n";
  return s.str();
}

uint64_t ArtifactField(const nlohmann::json& line, const std::string& key) {
  if (!line.is_object() || !line.contains("artifacts") || line["artifacts"].empty()) return 0;
  return line["artifacts"][0].value(key, uint64_t{0});
}

std::string ArtifactState(const nlohmann::json& line) {
  if (!line.is_object() || !line.contains("artifacts") || line["artifacts"].empty()) return "";
  return line["artifacts"][0].value("state", "");
}

void TransferTest::SetUp() {
  dir_ = MakeTempDir("transfer");
  repo_ = dir_ + "/repo";
  ASSERT_TRUE(tracker_.Start(dir_, repo_)) << tracker_.Log();
}

void TransferTest::TearDown() {
  tracker_.Stop();
  std::filesystem::remove_all(dir_);
}

TestArtifact TransferTest::AddArtifact(size_t size, int piece_kib, uint32_t seed) {
  TestArtifact a;
  a.content.resize(size);
  uint32_t x = seed;
  for (auto& c : a.content) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  const std::string input = dir_ + "/input-" + std::to_string(seed);
  EXPECT_TRUE(WriteFileAtomic(input, a.content).ok());
  auto add = RunShell(BinaryPath("flotilla-tracker") + " artifact add --repository " + repo_ +
                      " --public-url " + tracker_.url() + " --piece-kib " +
                      std::to_string(piece_kib) + " " + input + " 2>&1");
  EXPECT_EQ(add.exit_code, 0) << add.output;
  auto made = nlohmann::json::parse(add.output, nullptr, false);
  EXPECT_FALSE(made.is_discarded()) << add.output;
  a.request.sha256 = Digest::Parse(made.value("sha256", "")).value_or(Digest());
  a.request.length = made.value("length", uint64_t{0});
  a.request.info_hash = Digest::ParseHex(made.value("info_hash_v2", "")).value_or(Digest()).bytes();
  a.hex = a.request.sha256.Hex();
  a.piece_size = piece_kib << 10;
  EXPECT_EQ(a.hex, Digest::Of(a.content).Hex());
  return a;
}

std::vector<std::string> TransferTest::NodeArgs(const std::string& name, const std::string& ip,
                                                const TestArtifact& artifact) {
  auto device = EnrolDevice(tracker_.port(), name, "lab");
  EXPECT_FALSE(device.passkey.empty());
  return {"--data",     DataDir(name),       "--listen",   ip + ":0",
          "--torrents", repo_ + "/torrents", "--tracker",  tracker_.url(),
          "--passkey",  device.passkey,      "--web-seed", tracker_.url(),
          "--artifact", artifact.Arg()};
}

uint64_t TransferTest::TrackerBytesServed(const std::string& hex) {
  const std::string body = HttpRequestTo(tracker_.port(), "GET", "/metrics").body;
  const std::string key = "flotilla_artifact_bytes_served_total{artifact=\"sha256:" + hex + "\"} ";
  const size_t at = body.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(body.c_str() + at + key.size(), nullptr, 10);
}

}  // namespace flotilla::testing
