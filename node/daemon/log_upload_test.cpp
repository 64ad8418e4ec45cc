// Redaction of secret values and the upload bound of a log ring.
#include "node/daemon/log_upload.h"

#include <gtest/gtest.h>

#include <string>

namespace flotilla::node {
namespace {

TEST(LogUploadTest, RedactsEveryOccurrenceOfEverySecret) {
  const std::string log = "start token=s3cret\nuser pw hunter2 and s3cret again\n";
  const std::string out = RedactSecrets(log, {"s3cret", "hunter2"});
  EXPECT_EQ(out, "start token=[redacted]\nuser pw [redacted] and [redacted] again\n");
  EXPECT_EQ(out.find("s3cret"), std::string::npos);
  EXPECT_EQ(out.find("hunter2"), std::string::npos);
}

TEST(LogUploadTest, LongerOverlappingSecretLeavesNoTail) {
  // "abc" is a prefix of "abcdef": replacing "abc" first would leave "def".
  EXPECT_EQ(RedactSecrets("x abcdef y abc", {"abc", "abcdef"}), "x [redacted] y [redacted]");
}

TEST(LogUploadTest, NoSecretsOrEmptyValuesChangeNothing) {
  EXPECT_EQ(RedactSecrets("plain line\n", {}), "plain line\n");
  EXPECT_EQ(RedactSecrets("plain line\n", {""}), "plain line\n");
}

TEST(LogUploadTest, ShortLogIsSentWhole) { EXPECT_EQ(BoundLog("a\nb\n", 100), "a\nb\n"); }

TEST(LogUploadTest, LongLogKeepsNewestLinesBehindMarker) {
  std::string log;
  for (int i = 0; i < 1000; ++i) log += "line " + std::to_string(i) + "\n";
  const std::string out = BoundLog(log, 200);
  EXPECT_LE(out.size(), 200u);
  ASSERT_TRUE(out.starts_with("[flotilla: ")) << out;
  EXPECT_TRUE(out.ends_with("line 999\n"));
  // The marker's count is exactly what was left out, and the rest is whole lines.
  const size_t marker_end = out.find('\n') + 1;
  const std::string kept = out.substr(marker_end);
  EXPECT_TRUE(kept.starts_with("line "));
  EXPECT_EQ(out.substr(0, marker_end), "[flotilla: " + std::to_string(log.size() - kept.size()) +
                                           " earlier bytes not sent]\n");
  EXPECT_TRUE(log.ends_with(kept));
}

TEST(LogUploadTest, OneHugeLineIsCutToTheBound) {
  const std::string log(10'000, 'x');
  const std::string out = BoundLog(log, 100);
  EXPECT_LE(out.size(), 100u);
  EXPECT_TRUE(out.starts_with("[flotilla: "));
}

}  // namespace
}  // namespace flotilla::node
