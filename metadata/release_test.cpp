#include "metadata/release.h"

#include <gtest/gtest.h>

namespace flotilla::metadata {
namespace {

Digest D(char c) { return Digest::Of(std::string(1, c)); }

Release SampleRelease(uint64_t version = 3) {
  Release r;
  r.app = "kiosk";
  r.version = version;
  r.image.manifest = D('m');
  r.image.config = D('c');
  r.image.platform = "linux/arm64";
  r.image.layers = {{D('1'), 1000}, {D('2'), 2000}};
  Artifact full1{D('1'), ArtifactKind::kFull, {}, D('a'), 400, D('x').bytes(), "zstd"};
  Artifact full2{D('2'), ArtifactKind::kFull, {}, D('b'), 800, D('y').bytes(), "zstd"};
  Artifact delta2{D('2'), ArtifactKind::kDelta, {D('0')}, D('d'), 90, D('z').bytes(), "zstd"};
  r.artifacts = {full1, full2, delta2};
  r.app_spec = Json{{"command", {"/bin/kiosk", "--fullscreen"}}, {"restart", "always"}};
  return r;
}

TEST(Release, RoundTripsThroughCustomJson) {
  Release r = SampleRelease();
  Json custom = ReleaseToJson(r);
  auto parsed = ParseRelease(custom);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->app, "kiosk");
  EXPECT_EQ(parsed->version, 3u);
  ASSERT_EQ(parsed->artifacts.size(), 3u);
  EXPECT_EQ(parsed->artifacts[2].kind, ArtifactKind::kDelta);
  EXPECT_EQ(parsed->artifacts[2].bases, std::vector<Digest>{D('0')});
  EXPECT_EQ(parsed->app_spec, r.app_spec);
  EXPECT_EQ(CanonicalJson(ReleaseToJson(*parsed)).value(), CanonicalJson(custom).value());
}

TEST(Release, ValidationRefusesInconsistentReleases) {
  auto expect_invalid = [](Release r, std::string_view part) {
    Status st = ValidateRelease(r);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << part;
    EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
  };
  Release r = SampleRelease();
  r.app = "Kiosk";
  expect_invalid(r, "app name");
  r = SampleRelease();
  r.artifacts.erase(r.artifacts.begin());
  expect_invalid(r, "needs exactly one full artifact");
  r = SampleRelease();
  r.artifacts[2].bases = {D('2')};
  expect_invalid(r, "differ from its own layer");
  r = SampleRelease();
  r.artifacts[2].bases.clear();
  expect_invalid(r, "at least one base");
  r = SampleRelease();
  r.artifacts[1].info_hash = r.artifacts[0].info_hash;
  expect_invalid(r, "share an info-hash");
  r = SampleRelease();
  r.artifacts[0].layer = D('9');
  expect_invalid(r, "which the image does not have");
  r = SampleRelease();
  r.image.platform = "arm64";
  expect_invalid(r, "platform");
  r = SampleRelease();
  r.app_spec = Json::array();
  expect_invalid(r, "app_spec");
}

TEST(Release, ParseRefusesUnknownFieldsAndBadDigests) {
  Json custom = ReleaseToJson(SampleRelease());
  custom["flotilla"]["artifacts"][0]["url"] = "http://evil";
  EXPECT_FALSE(ParseRelease(custom).ok());
  custom = ReleaseToJson(SampleRelease());
  custom["flotilla"]["image"]["config"] = "sha256:XYZ";
  EXPECT_FALSE(ParseRelease(custom).ok());
  custom = ReleaseToJson(SampleRelease());
  custom["flotilla"]["schema"] = 2;
  EXPECT_FALSE(ParseRelease(custom).ok());
  custom = ReleaseToJson(SampleRelease());
  custom["flotilla"]["artifacts"][0]["infohash"] = std::string(40, 'a');  // v1 SHA-1 size
  EXPECT_FALSE(ParseRelease(custom).ok());
  // app_spec is carried verbatim, unknown fields included.
  custom = ReleaseToJson(SampleRelease());
  custom["flotilla"]["app_spec"]["future_field"] = {{"x", 1}};
  EXPECT_TRUE(ParseRelease(custom).ok());
}

// The image's source (a registry) sits beside custom.flotilla: it round-trips,
// a malformed one is refused, and other members beside flotilla are ignored.
TEST(Release, SourceRoundTripsBesideTheReleaseBody) {
  Release r = SampleRelease();
  r.source = ReleaseSource{"docker://127.0.0.1:5000/shop/kiosk:2", D('i')};
  Json custom = ReleaseToJson(r);
  ASSERT_TRUE(custom.contains("source"));
  EXPECT_FALSE(custom["flotilla"].contains("source"));
  auto parsed = ParseRelease(custom);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->source, r.source);
  EXPECT_FALSE(ParseRelease(ReleaseToJson(SampleRelease()))->source.has_value());

  Json bad = custom;
  bad["source"]["digest"] = "sha256:XYZ";
  EXPECT_FALSE(ParseRelease(bad).ok());
  bad = custom;
  bad["source"].erase("reference");
  EXPECT_FALSE(ParseRelease(bad).ok());
  Json extended = custom;
  extended["provenance"] = {{"builder", "ci"}};
  EXPECT_TRUE(ParseRelease(extended).ok());
}

TEST(Release, MonotonicPerApp) {
  TargetsMetadata older, newer;
  for (uint64_t v : {1, 2}) {
    Release r = SampleRelease(v);
    older.targets[ReleaseTargetName("kiosk", v)] =
        TargetFile{ReleaseTargetName("kiosk", v), 1, {{"sha256", D('q').Hex()}}, ReleaseToJson(r)};
  }
  newer = older;
  newer.targets.erase(ReleaseTargetName("kiosk", 2));
  Status st = CheckReleasesMonotonic(older, newer);
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("release rollback for app kiosk: 1 < trusted 2"), std::string::npos);
  EXPECT_TRUE(CheckReleasesMonotonic(newer, older).ok());
  // A target whose name disagrees with its release is refused.
  TargetsMetadata lying = older;
  lying.targets[ReleaseTargetName("kiosk", 9)] = older.targets[ReleaseTargetName("kiosk", 1)];
  EXPECT_EQ(LatestReleases(lying).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace flotilla::metadata
