#include "core/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace flotilla {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgument("value " + std::to_string(v) + " is not positive");
  return v;
}

Result<int> Doubled(int v) {
  ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status Check(int v) {
  RETURN_IF_ERROR_CTX(ParsePositive(v).status(), "checking layer " + std::to_string(v));
  return Status::Ok();
}

TEST(StatusTest, ErrorsCarryCodeMessageAndContext) {
  EXPECT_TRUE(Status::Ok().ok());
  Status st = Check(-3);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "checking layer -3: value -3 is not positive");
  EXPECT_EQ(st.ToString(), "InvalidArgument: checking layer -3: value -3 is not positive");
  EXPECT_TRUE(Check(1).ok());
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, ResultPropagatesValuesAndErrors) {
  EXPECT_EQ(Doubled(4).value(), 8);
  auto bad = Doubled(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.value_or(-1), -1);
  auto with_ctx = Doubled(0).WithContext("outer");
  EXPECT_EQ(with_ctx.status().message(), "outer: value 0 is not positive");
}

TEST(StatusTest, ErrnoMessagesNameTheOperation) {
  Status st = IOErrorFromErrno("open /x", ENOENT);
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_EQ(st.message(), "open /x: No such file or directory");
}

}  // namespace
}  // namespace flotilla
