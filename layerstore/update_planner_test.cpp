#include "layerstore/update_planner.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace flotilla::layerstore {
namespace {

Digest D(const std::string& name) { return Digest::Of(std::string_view(name)); }

PlannerArtifact Full(const std::string& layer, uint64_t length) {
  return {D("full-" + layer), D(layer), PlannerArtifactKind::kFull, {}, length};
}
PlannerArtifact Delta(const std::string& layer, std::vector<std::string> bases, uint64_t length,
                      const std::string& tag = "") {
  PlannerArtifact a{D("delta-" + layer + tag), D(layer), PlannerArtifactKind::kDelta, {}, length};
  for (const auto& b : bases) {
    a.id = D("delta-" + layer + "-" + b + tag + std::to_string(a.id.bytes()[0]));
    a.bases.push_back(D(b));
  }
  return a;
}

std::vector<Digest> Ids(const PlannedPath& path) {
  std::vector<Digest> ids;
  for (const auto& s : path.steps) ids.push_back(s.id);
  return ids;
}

TEST(UpdatePlannerTest, HeldLayersNeedNothing) {
  auto plan = PlanUpdate({D("a"), D("b")}, {D("a"), D("b")}, {Full("a", 10)});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->layers.empty());
  EXPECT_EQ(plan->total_bytes, 0u);
}

TEST(UpdatePlannerTest, DeltaBeatsFullAndFullIsTheFallback) {
  PlannerArtifact full = Full("v2", 1000), delta = Delta("v2", {"v1"}, 40);
  auto plan = PlanUpdate({D("v1")}, {D("v2")}, {full, delta});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->layers.size(), 1u);
  EXPECT_EQ(Ids(plan->layers[0].best), std::vector<Digest>{delta.id});
  EXPECT_EQ(plan->layers[0].best.bytes, 40u);
  ASSERT_TRUE(plan->layers[0].fallback);
  EXPECT_EQ(Ids(*plan->layers[0].fallback), std::vector<Digest>{full.id});
  EXPECT_EQ(plan->total_bytes, 40u);
}

TEST(UpdatePlannerTest, DeltaWithoutItsBaseIsNotUsable) {
  auto plan = PlanUpdate({D("v0")}, {D("v2")}, {Full("v2", 1000), Delta("v2", {"v1"}, 40)});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->layers[0].best.bytes, 1000u);
  EXPECT_FALSE(plan->layers[0].fallback);
}

TEST(UpdatePlannerTest, ChainOfDeltasWhenCheaper) {
  PlannerArtifact d12 = Delta("v2", {"v1"}, 30), d23 = Delta("v3", {"v2"}, 30);
  PlannerArtifact full3 = Full("v3", 1000), full2 = Full("v2", 900);
  auto plan = PlanUpdate({D("v1")}, {D("v3")}, {full3, full2, d23, d12});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Ids(plan->layers[0].best), (std::vector<Digest>{d12.id, d23.id}));
  EXPECT_EQ(plan->layers[0].best.bytes, 60u);
  ASSERT_TRUE(plan->layers[0].fallback);  // not using d12: full v3 (1000) < full v2 + d23 (930)? no
  EXPECT_EQ(Ids(*plan->layers[0].fallback), (std::vector<Digest>{full2.id, d23.id}));
  // A chain dearer than the full layer loses.
  PlannerArtifact big = Delta("v3", {"v2"}, 990, "big");
  auto dear = PlanUpdate({D("v1")}, {D("v3")}, {full3, Delta("v2", {"v1"}, 30), big});
  ASSERT_TRUE(dear.ok());
  EXPECT_EQ(Ids(dear->layers[0].best), std::vector<Digest>{full3.id});
}

TEST(UpdatePlannerTest, MultiBaseDeltaAndEarlierWantedLayersCount) {
  // Wanted bottom first: the new lower layer is produced first, then a delta
  // based on (held upper, new lower) is usable for the new upper layer.
  PlannerArtifact lower = Full("lower2", 500);
  PlannerArtifact upper = Delta("upper2", {"lower2", "upper1"}, 20);
  auto plan =
      PlanUpdate({D("upper1")}, {D("lower2"), D("upper2")}, {lower, upper, Full("upper2", 800)});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->layers.size(), 2u);
  EXPECT_EQ(Ids(plan->layers[1].best), std::vector<Digest>{upper.id});
  EXPECT_EQ(plan->total_bytes, 520u);
}

TEST(UpdatePlannerTest, TiesAreBrokenDeterministically) {
  PlannerArtifact a = Delta("v2", {"v1"}, 50, "a"), b = Delta("v2", {"v1"}, 50, "b");
  auto one = PlanUpdate({D("v1")}, {D("v2")}, {a, b});
  auto two = PlanUpdate({D("v1")}, {D("v2")}, {b, a});
  ASSERT_TRUE(one.ok() && two.ok());
  Digest smaller = std::min(a.id, b.id), larger = std::max(a.id, b.id);
  EXPECT_EQ(Ids(one->layers[0].best), std::vector<Digest>{smaller});
  EXPECT_EQ(Ids(two->layers[0].best), std::vector<Digest>{smaller});
  EXPECT_EQ(Ids(*one->layers[0].fallback), std::vector<Digest>{larger});
  // Equal bytes: fewer steps win.
  PlannerArtifact one_step = Delta("v3", {"v1"}, 60), s1 = Delta("v2", {"v1"}, 30, "s"),
                  s2 = Delta("v3", {"v2"}, 30, "s");
  auto steps = PlanUpdate({D("v1")}, {D("v3")}, {s1, s2, one_step});
  ASSERT_TRUE(steps.ok());
  EXPECT_EQ(Ids(steps->layers[0].best), std::vector<Digest>{one_step.id});
}

TEST(UpdatePlannerTest, MissingArtifactsNameTheLayer) {
  auto plan = PlanUpdate({}, {D("a"), D("b")}, {Full("a", 1)});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kNotFound);
  EXPECT_NE(plan.status().message().find(D("b").ToString()), std::string::npos);
}

TEST(UpdatePlannerTest, MalformedArtifactsAreRefused) {
  PlannerArtifact self = Delta("v2", {"v2"}, 1);
  EXPECT_EQ(PlanUpdate({}, {D("v2")}, {self}).status().code(), StatusCode::kInvalidArgument);
  PlannerArtifact no_bases{D("x"), D("v2"), PlannerArtifactKind::kDelta, {}, 1};
  EXPECT_EQ(PlanUpdate({}, {D("v2")}, {no_bases}).status().code(), StatusCode::kInvalidArgument);
  PlannerArtifact full_with_base{D("y"), D("v2"), PlannerArtifactKind::kFull, {D("v1")}, 1};
  EXPECT_EQ(PlanUpdate({}, {D("v2")}, {full_with_base}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flotilla::layerstore
