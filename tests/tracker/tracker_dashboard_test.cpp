// The dashboard rendered by a real browser (headless Chromium): the DOM must
// show the devices and states the test created; a screenshot is kept for
// people to look at.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {
namespace {

tracker::DeviceReport Report(const std::string& state, uint64_t done, uint64_t total,
                             uint64_t peers, uint64_t origin, std::vector<std::string> errors) {
  return {"signage", "2026-11-28.1",   state, done, total, peers, origin,
          "unknown", std::move(errors)};
}

TEST(TrackerDashboardTest, ChromiumShowsDevicesStatesAndFailures) {
  const std::string dir = MakeTempDir("tracker-dashboard");
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir, dir + "/repo")) << tracker.Log();
  const std::vector<std::pair<std::string, tracker::DeviceReport>> fleet = {
      {"kiosk-lobby", Report("running", 100, 100, 900000, 100000, {})},
      {"kiosk-cafe", Report("downloading", 42, 100, 300000, 20000, {})},
      {"screen-bx", Report("failed", 100, 100, 0, 5000,
                           {"health check timed out", "<script>alert(1)</script>"})},
  };
  tracker::TrackerClient client(tracker.url());
  for (const auto& [name, report] : fleet) {
    auto d = EnrolDevice(tracker.port(), name, "shop-1");
    ASSERT_FALSE(d.device_id.empty());
    Status st = client.Report(d, report);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EnrolDevice(tracker.port(), "fresh-pi");

  const std::string chromium =
      "timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--disable-dev-shm-usage ";
  auto dom = RunShell(chromium + "--user-data-dir=" + dir + "/profile-dom --dump-dom " +
                      tracker.url() + "/ 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  const std::string& html = dom.output;
  EXPECT_NE(html.find("<title>flotilla fleet</title>"), std::string::npos) << html;
  for (const char* needle :
       {"data-device=\"kiosk-lobby\"", "data-device=\"kiosk-cafe\"", "data-device=\"screen-bx\"",
        "data-device=\"fresh-pi\"", "state-running\">running", "state-downloading\">downloading",
        "state-failed\">failed", "state-enrolled\">enrolled", ">42%<", "health check timed out",
        "2026-11-28.1", "signage"}) {
    EXPECT_NE(html.find(needle), std::string::npos) << needle << "\n" << html;
  }
  // Text from devices is escaped, never markup.
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script>alert(1)"), std::string::npos);
  // 1,200,000 of 1,325,000 bytes came from peers.
  EXPECT_NE(html.find("1.1 MiB</b>saved by peer sharing (90.6% of 1.3 MiB)"), std::string::npos)
      << html;

  const std::string png = dir + "/dashboard.png";
  auto shot = RunShell(chromium + "--user-data-dir=" + dir + "/profile-shot --hide-scrollbars " +
                       "--window-size=1280,800 --screenshot=" + png + " " + tracker.url() +
                       "/ 2>/dev/null");
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  auto bytes = ReadFileBounded(png, 20 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ASSERT_GT(bytes->size(), 1000u);
  EXPECT_EQ(std::string(bytes->begin() + 1, bytes->begin() + 4), "PNG");
  std::printf("dashboard screenshot: %s\n", png.c_str());
  // Keep the screenshot (under the test temp dir) and drop the rest.
  tracker.Stop();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path() != png) std::filesystem::remove_all(entry.path());
  }
}

}  // namespace
}  // namespace flotilla::testing
