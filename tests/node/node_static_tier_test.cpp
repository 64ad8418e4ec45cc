// The static tier (docs/tracker.md, "Static tier"): nginx serves the
// repository's metadata/, torrents/ and artifacts/ as plain files; a node
// whose content_url points there takes its signed metadata (an offline app
// role's percent-encoded file included), the torrent and the web seed's
// ranges from nginx, and talks to the tracker only to enrol, announce and
// report.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/file_io.h"
#include "tests/node/node_fixture.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_topology.h"

namespace flotilla::testing {
namespace {

using std::chrono::seconds;

std::string FileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NodeStaticTier, NodeTakesMetadataTorrentAndWebSeedFromNginx) {
  const std::string dir = MakeTempDir("node-static-tier-");
  const std::string repo = dir + "/repo";
  ASSERT_TRUE(InitOfflineRepository(dir, repo, "kiosk")) << FileText(dir + "/offline.log");
  ASSERT_TRUE(PublishImage(dir, repo, "kiosk", 256, "1", "1"));
  ASSERT_TRUE(SignRelease(dir, repo, "kiosk", 1)) << FileText(dir + "/offline.log");
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir, repo));
  const int port = FreePort();
  ASSERT_TRUE(WriteFileAtomic(dir + "/nginx.conf", StaticTierNginxConfig(dir, repo, port)).ok());
  ChildProcess nginx;
  ASSERT_TRUE(
      nginx.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-e", dir + "/nginx-error.log"},
                  dir + "/nginx.out", dir + "/nginx.err"));
  auto get = [&](const std::string& path) { return GetFrom("127.0.0.1", port, path); };
  ASSERT_TRUE(WaitFor([&] { return get("/metadata/timestamp.json").status == 200; }, seconds(10)))
      << FileText(dir + "/nginx.err") << FileText(dir + "/nginx-error.log");
  // Nothing but the three directories: not the database, not the keys.
  EXPECT_EQ(get("/tracker.db").status, 404);
  EXPECT_EQ(get("/keys/timestamp.key").status, 404);
  EXPECT_EQ(get("/metadata/../tracker.db").status, 404);
  EXPECT_EQ(get("/metadata/.tracker.db").status, 404);
  EXPECT_EQ(get("/metadata/1.apps%2Fkiosk.json").status, 200);
  EXPECT_EQ(get("/metadata/timestamp.json").headers["cache-control"], "no-cache");

  Json config = NodeConfigFor("kiosk-1", dir + "/node", tracker.url(),
                              repo + "/metadata/1.root.json", "kiosk");
  config["transfer_mode"] = "p2p";
  config["listen"] = "127.0.0.61:0";
  config["content_url"] = "http://127.0.0.1:" + std::to_string(port);
  NodeProcess node;
  ASSERT_TRUE(node.Start(dir, config));
  EXPECT_TRUE(
      WaitFor([&] { return AppState(dir + "/node", "kiosk")["ready_release"] == 1; }, seconds(90)))
      << node.Log();
  const std::string access = FileText(dir + "/nginx-access.log");
  EXPECT_NE(access.find("GET /metadata/timestamp.json"), std::string::npos) << access;
  EXPECT_NE(access.find("GET /metadata/1.apps%2Fkiosk.json"), std::string::npos) << access;
  EXPECT_NE(access.find(".torrent HTTP/1.1\" 200"), std::string::npos) << access;
  EXPECT_NE(access.find("\" 206 "), std::string::npos) << "web seed ranges: " << access;
  // The tracker served no metadata, torrent or artifact byte: it enrolled,
  // announced and took reports.
  const std::string metrics = HttpRequestTo(tracker.port(), "GET", "/metrics").body;
  for (const char* route : {"metadata", "torrent", "artifact"}) {
    EXPECT_EQ(metrics.find(std::string("route=\"") + route + "\""), std::string::npos)
        << route << "\n"
        << metrics;
  }
  EXPECT_NE(metrics.find("route=\"enroll\""), std::string::npos) << metrics;
  node.Stop();
  nginx.Stop(seconds(5));
  tracker.Stop();
  RunShell("rm -rf " + dir);
}

}  // namespace
}  // namespace flotilla::testing
