#include "tracker/fleet/selector.h"

#include <gtest/gtest.h>

namespace flotilla::tracker {
namespace {

FleetDevice DeviceOnSite(std::string name, std::string site, std::set<std::string> tags) {
  return FleetDevice{"dev-" + name, std::move(name), std::move(site), std::move(tags)};
}

TEST(SelectorTest, TermsAreAndedAndCanonical) {
  auto s = Selector::Parse(" tag=window , site=shop-12,tag=outdoor");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ToString(), "site=shop-12,tag=outdoor,tag=window");
  EXPECT_TRUE(s->Matches(DeviceOnSite("a", "shop-12", {"window", "outdoor", "lobby"})));
  EXPECT_FALSE(s->Matches(DeviceOnSite("b", "shop-12", {"window"}))) << "every tag must be held";
  EXPECT_FALSE(s->Matches(DeviceOnSite("c", "shop-13", {"window", "outdoor"})))
      << "site must match";
  EXPECT_EQ(Selector::Parse(s->ToString())->ToString(), s->ToString());
}

TEST(SelectorTest, NameAllAndSite) {
  auto name = Selector::Parse("name=screen-7").value();
  EXPECT_TRUE(name.Matches(DeviceOnSite("screen-7", "", {})));
  EXPECT_FALSE(name.Matches(DeviceOnSite("screen-8", "", {})));
  auto all = Selector::Parse("all").value();
  EXPECT_TRUE(all.Matches(DeviceOnSite("x", "", {})));
  EXPECT_EQ(all.ToString(), "all");
  auto site = Selector::Parse("site=lab").value();
  EXPECT_FALSE(site.Matches(DeviceOnSite("x", "", {}))) << "a device without a site is in no site";
  EXPECT_EQ(Selector::Parse("site=lab,site=lab")->ToString(), "site=lab");
}

TEST(SelectorTest, BadInputIsRefusedWithTheReason) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c :
       {Case{"", "empty selector"}, Case{"  ", "empty selector"}, Case{"site=a,,tag=b", "empty"},
        Case{"window", "no '='"}, Case{"zone=1", "unknown key 'zone'"}, Case{"tag=", "1-64"},
        Case{"tag=a b", "1-64"}, Case{"site=shop/1", "1-64"}, Case{"all,tag=x", "stands alone"},
        Case{"site=a,site=b", "has one"}, Case{"name=a,name=b", "has one"},
        Case{"=x", "unknown key ''"}}) {
    auto s = Selector::Parse(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.text << ": " << s.status().message();
  }
}

}  // namespace
}  // namespace flotilla::tracker
