// Fleet files carried by a notice answer (carried_fleet_files.h): a TUF
// refresh over CarriedRemote reads them instead of the network and verifies
// them exactly as fetched ones; a root above the carried root version is
// "not found" without a fetch, one at or below it is fetched.
#include "node/daemon/carried_fleet_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/file_io.h"
#include "metadata/test_repository.h"
#include "metadata/tuf_client.h"

namespace flotilla::node {
namespace {

namespace fs = std::filesystem;
using metadata::DirectoryRemote;
using metadata::TestRepository;
using metadata::TufClient;

// Counts what reaches it: the "network".
class CountingRemote final : public metadata::RemoteRepository {
 public:
  explicit CountingRemote(RemoteRepository& inner) : inner_(inner) {}
  Result<std::string> FetchMetadata(const std::string& name, uint64_t max_bytes) override {
    fetched.push_back(name);
    return inner_.FetchMetadata(name, max_bytes);
  }
  Status FetchTarget(const std::string& url_path, uint64_t max_bytes,
                     const std::string& dest_path) override {
    fetched.push_back(url_path);
    return inner_.FetchTarget(url_path, max_bytes, dest_path);
  }
  std::vector<std::string> fetched;

 private:
  RemoteRepository& inner_;
};

class CarriedFleetFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_ = fs::temp_directory_path() /
            ("flotilla-carried-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(temp_);
    repo_ = std::make_unique<TestRepository>(temp_ + "/repo", clock_.Now());
    ASSERT_TRUE(repo_->AddTarget("targets", "device.json", R"({"apps":{},"device":"d"})").ok());
    ASSERT_TRUE(repo_->Publish().ok());
    auto root = ReadTextFileBounded(repo_->metadata_dir() + "/1.root.json", 1 << 20);
    ASSERT_TRUE(TufClient::Initialize(ClientDir(), root.value()).ok());
    directory_ = std::make_unique<DirectoryRemote>(repo_->metadata_dir(), repo_->targets_dir());
    network_ = std::make_unique<CountingRemote>(*directory_);
  }
  void TearDown() override { fs::remove_all(temp_); }
  std::string ClientDir() const { return temp_ + "/client"; }

  // The files a tracker carries for the repository as published now.
  CarriedFleetFiles Carried() {
    CarriedFleetFiles carried{.root = repo_->root().common.version};
    const std::string meta = repo_->metadata_dir();
    for (const std::string& name :
         {std::string("timestamp.json"),
          std::to_string(repo_->snapshot().common.version) + ".snapshot.json",
          std::to_string(repo_->Role("targets").common.version) + ".targets.json"}) {
      carried.metadata[name] = ReadTextFileBounded(meta + "/" + name, 1 << 20).value();
    }
    for (const auto& entry : fs::directory_iterator(repo_->targets_dir())) {
      const std::string name = entry.path().filename();
      carried.targets[name] = ReadTextFileBounded(entry.path(), 1 << 20).value();
    }
    return carried;
  }
  // One refresh and the document's download through `remote`.
  Status RefreshAndDownload(metadata::RemoteRepository& remote) {
    ASSIGN_OR_RETURN(auto client, TufClient::Open(ClientDir(), remote, clock_));
    RETURN_IF_ERROR(client->Refresh());
    ASSIGN_OR_RETURN(auto info, client->GetTargetInfo("device.json"));
    return client->DownloadTarget(info, temp_ + "/downloads").status();
  }

  static inline int counter_ = 0;
  std::string temp_;
  FakeClock clock_;
  std::unique_ptr<TestRepository> repo_;
  std::unique_ptr<DirectoryRemote> directory_;
  std::unique_ptr<CountingRemote> network_;
};

TEST_F(CarriedFleetFilesTest, ARefreshReadsTheCarriedFilesAndFetchesNothing) {
  const CarriedFleetFiles carried = Carried();
  CarriedRemote remote(carried, *network_);
  Status done = RefreshAndDownload(remote);
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_TRUE(network_->fetched.empty()) << network_->fetched.front();
  EXPECT_EQ(remote.network_fetches(), 0);
  EXPECT_TRUE(fs::exists(ClientDir() + "/timestamp.json"));
}

TEST_F(CarriedFleetFilesTest, ANewerRootIsFetchedAndVerified) {
  ASSERT_TRUE(repo_->PublishRoot().ok());
  ASSERT_TRUE(repo_->Publish().ok());
  const CarriedFleetFiles carried = Carried();
  ASSERT_EQ(carried.root, 2u);
  CarriedRemote remote(carried, *network_);
  Status done = RefreshAndDownload(remote);
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_EQ(network_->fetched, std::vector<std::string>{"2.root.json"})
      << "3.root.json is above the carried root version: not asked for";
  auto client = TufClient::Open(ClientDir(), *network_, clock_);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->root().common.version, 2u);
}

// What a tracker (or anyone between) puts in an answer is refused exactly as
// the same bytes fetched would be, with the same reason, and nothing is trusted.
TEST_F(CarriedFleetFilesTest, ForgedFilesAreRefusedAsFetchedOnesAre) {
  const CarriedFleetFiles good = Carried();
  struct Forgery {
    const char* what;
    std::function<void(CarriedFleetFiles&)> forge;
  };
  const Forgery forgeries[] = {
      {"a timestamp whose signature is not the key's",
       [](CarriedFleetFiles& c) {
         std::string& t = c.metadata.at("timestamp.json");
         const size_t sig = t.find("\"sig\":\"") + 7;
         t[sig] = t[sig] == 'a' ? 'b' : 'a';
       }},
      {"a targets file other than the snapshot names",
       [](CarriedFleetFiles& c) {
         for (auto& [name, bytes] : c.metadata) {
           if (!name.ends_with(".targets.json")) continue;
           const size_t sig = bytes.find("\"sig\":\"") + 7;  // same length, other hash
           bytes[sig] = bytes[sig] == 'a' ? 'b' : 'a';
         }
       }},
      {"a document other than the targets names",
       [](CarriedFleetFiles& c) {
         std::string& d = c.targets.begin()->second;
         d.replace(d.find("\"d\""), 3, "\"e\"");
       }},
  };
  for (const Forgery& forgery : forgeries) {
    SCOPED_TRACE(forgery.what);
    CarriedFleetFiles forged = good;
    forgery.forge(forged);
    // The same forged bytes served by a repository directory.
    const std::string served = temp_ + "/served";
    fs::remove_all(served);
    fs::create_directories(served + "/metadata");
    fs::create_directories(served + "/targets");
    for (const auto& [name, bytes] : forged.metadata) {
      ASSERT_TRUE(WriteFileAtomic(served + "/metadata/" + name, bytes).ok());
    }
    for (const auto& [name, bytes] : forged.targets) {
      ASSERT_TRUE(WriteFileAtomic(served + "/targets/" + name, bytes).ok());
    }
    DirectoryRemote fetched(served + "/metadata", served + "/targets");
    const Status over_network = RefreshAndDownload(fetched);
    ASSERT_FALSE(over_network.ok());
    fs::remove_all(temp_ + "/downloads");

    CarriedRemote remote(forged, *network_);
    const Status carried = RefreshAndDownload(remote);
    ASSERT_FALSE(carried.ok());
    EXPECT_EQ(carried.ToString(), over_network.ToString());
  }
}

TEST(CarriedFleetFilesParseTest, ReadsTheAnswerMemberWithinItsBounds) {
  auto parsed = ParseCarriedFleetFiles(Json::parse(
      R"({"root":2,"metadata":{"timestamp.json":"{}"},"targets":{"ab.device.json":"{}"}})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->root, 2u);
  EXPECT_EQ(parsed->metadata.at("timestamp.json"), "{}");
  EXPECT_EQ(parsed->targets.at("ab.device.json"), "{}");

  for (const char* bad : {R"([])", R"({"metadata":{}})", R"({"root":-1})", R"({"root":"2"})",
                          R"({"root":1,"metadata":[]})", R"({"root":1,"metadata":{"a":1}})",
                          R"({"root":1,"targets":{"a":null}})"}) {
    EXPECT_FALSE(ParseCarriedFleetFiles(Json::parse(bad)).ok()) << bad;
  }
  Json big{{"root", 1u}, {"metadata", {{"timestamp.json", std::string(kMaxCarriedBytes, 'x')}}}};
  auto oversize = ParseCarriedFleetFiles(big);
  ASSERT_FALSE(oversize.ok());
  EXPECT_EQ(oversize.status().code(), StatusCode::kResourceExhausted);
  Json many{{"root", 1u}, {"metadata", Json::object()}};
  for (size_t i = 0; i <= kMaxCarriedFiles; ++i) many["metadata"][std::to_string(i)] = "{}";
  EXPECT_EQ(ParseCarriedFleetFiles(many).status().code(), StatusCode::kResourceExhausted);
}

TEST_F(CarriedFleetFilesTest, ACarriedFileLongerThanTheClientAllowsIsRefused) {
  const CarriedFleetFiles carried = Carried();
  CarriedRemote remote(carried, *network_);
  auto small = remote.FetchMetadata("timestamp.json", 16);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(network_->fetched.empty());
}

// An offline bundle's files (docs/bundle.md, "Fleet documents in a bundle"):
// with no network behind them, the fleet root versions it carries are walked;
// one it lacks fails naming the file; its wider bounds admit them.
TEST_F(CarriedFleetFilesTest, WithNoNetworkTheCarriedRootsAreWalkedAndAMissingOneIsNamed) {
  ASSERT_TRUE(repo_->PublishRoot().ok());
  ASSERT_TRUE(repo_->Publish().ok());
  CarriedFleetFiles carried = Carried();
  NoNetworkRemote no_network;
  {
    CarriedRemote remote(carried, no_network);
    const Status missing = RefreshAndDownload(remote);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.ToString().find("2.root.json is not carried, and there is no network here"),
              std::string::npos)
        << missing.ToString();
  }
  carried.metadata["2.root.json"] =
      ReadTextFileBounded(repo_->metadata_dir() + "/2.root.json", 1 << 20).value();
  CarriedRemote remote(carried, no_network);
  const Status walked = RefreshAndDownload(remote);
  ASSERT_TRUE(walked.ok()) << walked.ToString();
  EXPECT_EQ(remote.network_fetches(), 0);

  Json many{{"root", 1u}, {"metadata", Json::object()}};
  for (size_t i = 0; i <= kMaxCarriedFiles; ++i) many["metadata"][std::to_string(i)] = "{}";
  EXPECT_TRUE(ParseCarriedFleetFiles(many, 64, 1 << 20).ok());
}

}  // namespace
}  // namespace flotilla::node
