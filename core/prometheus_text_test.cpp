#include "core/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace flotilla {
namespace {

TEST(PrometheusTextTest, FamilyHasHelpTypeAndOneLinePerSample) {
  std::string out;
  MetricFamily requests(out, "x_requests_total", "counter", "Requests, by route and code.");
  requests.Sample({{"route", "announce"}, {"code", "200"}}, uint64_t{17});
  requests.Sample({{"route", "artifact"}, {"code", "404"}}, 2);
  MetricFamily(out, "x_up", "gauge", "Always 1.").Sample({}, 1);
  EXPECT_EQ(out,
            "# HELP x_requests_total Requests, by route and code.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{route=\"announce\",code=\"200\"} 17\n"
            "x_requests_total{route=\"artifact\",code=\"404\"} 2\n"
            "# HELP x_up Always 1.\n"
            "# TYPE x_up gauge\n"
            "x_up 1\n");
}

TEST(PrometheusTextTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  std::string out;
  MetricFamily(out, "x", "gauge", "h").Sample({{"name", "x\"} 1\ny{a=\"\\"}}, 0);
  EXPECT_EQ(out.substr(out.rfind("x{")), "x{name=\"x\\\"} 1\\ny{a=\\\"\\\\\"} 0\n");
}

TEST(PrometheusTextTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  std::string out;
  MetricFamily(out, "x", "gauge", "a \"b\" c\\d\ne");
  EXPECT_EQ(out, "# HELP x a \"b\" c\\\\d\\ne\n# TYPE x gauge\n");
}

TEST(PrometheusTextTest, ValuesInTheFormatsSpelling) {
  std::string out;
  MetricFamily f(out, "v", "gauge", "h");
  f.Sample({}, -3);
  f.Sample({}, uint64_t{18446744073709551615u});
  f.Sample({}, 0.25);
  f.Sample({}, 3e9);
  f.Sample({}, std::nan(""));
  f.Sample({}, std::numeric_limits<double>::infinity());
  f.Sample({}, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(out.substr(out.find("v -3")),
            "v -3\nv 18446744073709551615\nv 0.25\nv 3e+09\nv NaN\nv +Inf\nv -Inf\n");
}

}  // namespace
}  // namespace flotilla
