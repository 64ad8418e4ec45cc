#include "tracker/service/device_report_parser.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

const char* kGood =
    R"({"app":"web","release":"r1","state":"downloading","progress":{"done":5,"total":9},)"
    R"("bytes_from_peers":7,"bytes_from_origin":2,"health":"unknown","errors":["x"]})";

TEST(DeviceReport, ParsesAWellFormedReport) {
  auto r = ParseDeviceReport(kGood);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "downloading");
  EXPECT_EQ(r->progress_done, 5u);
  EXPECT_EQ(r->bytes_from_peers, 7u);
  EXPECT_EQ(r->errors, std::vector<std::string>{"x"});
}

TEST(DeviceReport, RefusesMalformedReports) {
  std::string good = kGood;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  for (const std::string& bad :
       {std::string("[]"), std::string("{"), with("\"downloading\"", "\"exploded\""),
        with("\"unknown\"", "\"meh\""), with("\"done\":5", "\"done\":50"),
        with("\"bytes_from_peers\":7", "\"bytes_from_peers\":-7"),
        with("\"bytes_from_peers\":7", "\"bytes_from_peers\":7.5"),
        with("\"app\":\"web\"", "\"app\":\"../x\""), with("\"errors\":[\"x\"]", "\"errors\":[1]"),
        with("\"errors\":[\"x\"]", "\"errors\":[\"x\"],\"extra\":1"), with("\"app\":\"web\",", ""),
        with("\"app\":\"web\"", "\"app\":\"web\",\"app\":\"w\""),
        with("\"bytes_from_origin\":2", "\"bytes_from_origin\":18446744073709551615")}) {
    EXPECT_FALSE(ParseDeviceReport(bad).ok()) << bad;
  }
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"e\"";
  EXPECT_FALSE(ParseDeviceReport(with("[\"x\"]", many + "]")).ok());
  EXPECT_FALSE(ParseDeviceReport(with("[\"x\"]", "[\"" + std::string(1025, 'a') + "\"]")).ok());
}

}  // namespace
}  // namespace flotilla::tracker
