#include "tracker/service/metrics.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

TEST(TrackerMetrics, RendersEveryFamilyWithHelpAndType) {
  TrackerMetrics metrics;
  metrics.CountRequest("announce", 200);
  metrics.CountRequest("announce", 200);
  metrics.CountAnnounce("ok");
  *metrics.ArtifactBytesCounter("ab12") += 1000;
  metrics.SetSigningLease(true, 4);
  const std::string text = metrics.Render({{{"running", 3}}, 2, 5});
  for (const char* line :
       {"# TYPE flotilla_http_requests_total counter\n",
        "flotilla_http_requests_total{route=\"announce\",code=\"200\"} 2\n",
        "flotilla_announces_total{result=\"ok\"} 1\n",
        "flotilla_artifact_bytes_served_total{artifact=\"sha256:ab12\"} 1000\n",
        "# TYPE flotilla_devices gauge\n", "flotilla_devices{state=\"running\"} 3\n",
        "flotilla_swarms 2\n", "flotilla_swarm_peers 5\n", "flotilla_signing_lease_held 1\n",
        "flotilla_signing_lease_epoch 4\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " not in:\n" << text;
  }
}

TEST(TrackerMetrics, LabelValuesAreEscaped) {
  TrackerMetrics metrics;
  const std::string text = metrics.Render({{{"a\"b\\c\nd", 1}}, 0, 0});
  EXPECT_NE(text.find("flotilla_devices{state=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace flotilla::tracker
