// The tracker API's JSON forms: what the tracker reads, and what the client
// library writes and reads back.
#include <gtest/gtest.h>

#include "tracker/api/device_report.h"
#include "tracker/api/enrolment.h"
#include "tracker/api/fleet.h"

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

TEST(DeviceReport, ANulInAnErrorMessageBecomesAReplacementCharacter) {
  std::string body = kGood;
  body.replace(body.find("[\"x\"]"), 5, R"(["a\u0000b\u0000"])");
  auto r = ParseDeviceReport(body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->errors, std::vector<std::string>{"a\xEF\xBF\xBD"
                                                "b\xEF\xBF\xBD"});
}

TEST(DeviceReport, WrittenFormIsReadBackTheSame) {
  DeviceReport report = ParseDeviceReport(kGood).value();
  auto again = ParseDeviceReport(DeviceReportToJson(report).dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(DeviceReportToJson(*again), DeviceReportToJson(report));
  EXPECT_EQ(again->progress_total, 9u);
  EXPECT_EQ(again->bytes_from_origin, 2u);
  EXPECT_EQ(again->health, "unknown");
}

TEST(DeviceReport, SequenceNumberIsOptionalAndPositive) {
  auto with_seq = [](const std::string& seq) {
    std::string s = kGood;
    return s.insert(s.size() - 1, ",\"seq\":" + seq);
  };
  EXPECT_EQ(ParseDeviceReport(kGood).value().seq, 0u) << "absent";
  EXPECT_FALSE(DeviceReportToJson(ParseDeviceReport(kGood).value()).contains("seq"))
      << "a report without a number is written as 0.1.0 wrote it";
  auto numbered = ParseDeviceReport(with_seq("42"));
  ASSERT_TRUE(numbered.ok()) << numbered.status().ToString();
  EXPECT_EQ(numbered->seq, 42u);
  EXPECT_EQ(ParseDeviceReport(DeviceReportToJson(*numbered).dump())->seq, 42u);
  for (const char* bad : {"0", "-1", "1.5", "\"7\"", "9223372036854775808"}) {
    EXPECT_FALSE(ParseDeviceReport(with_seq(bad)).ok()) << bad;
  }
}

// `failure` is optional, one of five kinds, and only with a state it can
// explain; an unknown kind is refused (naming the member first, so the
// client library sends the report again without it).
TEST(DeviceReport, FailureKindIsOptionalKnownAndOnlyForAFailure) {
  auto failed_with = [](const std::string& state, const std::string& member) {
    std::string s = kGood;
    s.replace(s.find("\"downloading\""), 13, "\"" + state + "\"");
    return member.empty() ? s : s.insert(s.size() - 1, ",\"failure\":" + member);
  };
  auto without = ParseDeviceReport(failed_with("failed", ""));
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_EQ(without->failure, "") << "a 0.1.0 node's failed report";
  EXPECT_FALSE(DeviceReportToJson(*without).contains("failure"))
      << "a report without a kind is written as 0.1.0 wrote it";
  for (const std::string& kind : ReportFailureKinds()) {
    for (const char* state : {"failed", "rolled_back"}) {
      auto r = ParseDeviceReport(failed_with(state, "\"" + kind + "\""));
      ASSERT_TRUE(r.ok()) << kind << " " << state << ": " << r.status().ToString();
      EXPECT_EQ(r->failure, kind);
      EXPECT_EQ(ParseDeviceReport(DeviceReportToJson(*r).dump())->failure, kind);
    }
  }
  EXPECT_EQ(ReportFailureKinds().size(), 6u);
  auto unknown = ParseDeviceReport(failed_with("failed", "\"overheated\""));
  EXPECT_EQ(unknown.status().message(),
            "failure: must be verification, deploy, health, transfer, disk or agent-probation");
  EXPECT_EQ(ParseDeviceReport(failed_with("running", "\"health\"")).status().message(),
            "failure: is only for a failed or rolled_back state");
  EXPECT_EQ(ParseDeviceReport(failed_with("downloading", "\"transfer\"")).status().message(),
            "failure: is only for a failed or rolled_back state");
  for (const char* bad : {"\"\"", "1", "[\"disk\"]", "\"Disk\""}) {
    EXPECT_FALSE(ParseDeviceReport(failed_with("failed", bad)).ok()) << bad;
  }
}

// `platform` is optional and an OCI platform whose tag is a label; a bad
// one is refused naming the member first (the client then drops it).
TEST(DeviceReport, PlatformIsOptionalAndMakesALabelTag) {
  auto with = [](const std::string& member) {
    std::string s = kGood;
    return s.insert(s.size() - 1, ",\"platform\":" + member);
  };
  auto without = ParseDeviceReport(kGood);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->platform, "");
  EXPECT_FALSE(DeviceReportToJson(*without).contains("platform"));
  for (const char* platform : {"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"}) {
    auto r = ParseDeviceReport(with("\"" + std::string(platform) + "\""));
    ASSERT_TRUE(r.ok()) << platform << ": " << r.status().ToString();
    EXPECT_EQ(r->platform, platform);
    EXPECT_EQ(ParseDeviceReport(DeviceReportToJson(*r).dump())->platform, platform);
  }
  EXPECT_EQ(PlatformTag("linux/arm/v7"), "platform.linux.arm.v7");
  EXPECT_EQ(PlatformTag("linux/amd64"), "platform.linux.amd64");
  for (const char* bad : {"\"\"", "\"linux\"", "\"linux/\"", "\"linux/arm/v7/x\"",
                          "\"Linux/amd64\"", "\"linux/a.b\"", "\"../etc\"", "7"}) {
    auto r = ParseDeviceReport(with(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("platform: ", 0), 0u) << r.status().message();
  }
  EXPECT_FALSE(ParseDeviceReport(with("\"linux/" + std::string(33, 'a') + "\"")).ok());
}

TEST(DeviceReport, BadPeersAreOptionalBoundedAndChecked) {
  const std::string swarm(40, 'a');
  auto with_peers = [&](const std::string& list) {
    std::string s = kGood;
    return s.insert(s.size() - 1, ",\"bad_peers\":" + list);
  };
  auto entry = [&](const std::string& ip, const std::string& port = "6881",
                   const std::string& failures = "3", const std::string& hash = "") {
    return R"({"swarm":")" + (hash.empty() ? swarm : hash) + R"(","ip":")" + ip + R"(","port":)" +
           port + R"(,"hash_failures":)" + failures + "}";
  };
  EXPECT_TRUE(ParseDeviceReport(kGood).value().bad_peers.empty());
  auto two = ParseDeviceReport(with_peers("[" + entry("10.0.0.9") + "," + entry("fe80::1") + "]"));
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  ASSERT_EQ(two->bad_peers.size(), 2u);
  EXPECT_EQ(two->bad_peers[0], (BadPeer{swarm, "10.0.0.9", 6881, 3}));
  EXPECT_EQ(two->bad_peers[1].ip, "fe80::1");
  auto again = ParseDeviceReport(DeviceReportToJson(*two).dump());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->bad_peers, two->bad_peers);
  // Without bad peers the written form has no such member.
  EXPECT_FALSE(DeviceReportToJson(ParseDeviceReport(kGood).value()).contains("bad_peers"));

  std::string many = "[";
  for (size_t i = 0; i <= kMaxReportBadPeers; ++i) many += (i ? "," : "") + entry("10.0.0.1");
  EXPECT_FALSE(ParseDeviceReport(with_peers(many + "]")).ok());
  for (const std::string& bad :
       {entry("10.0.0.300"), entry("host.example"), entry("10.0.0.1", "0"),
        entry("10.0.0.1", "65536"), entry("10.0.0.1", "1", "0"),
        entry("10.0.0.1", "1", "1", std::string(40, 'A')),
        entry("10.0.0.1", "1", "1", std::string(64, 'a')), std::string(R"({"ip":"10.0.0.1"})"),
        std::string("1"), entry("10.0.0.1").insert(1, R"("extra":1,)")}) {
    EXPECT_FALSE(ParseDeviceReport(with_peers("[" + bad + "]")).ok()) << bad;
  }
  EXPECT_FALSE(ParseDeviceReport(with_peers("{}")).ok());
}

TEST(Enrolment, RequestAndCredentialsRoundTripAndAreChecked) {
  EnrolRequest request{"token", "kiosk-1", "shop-7"};
  auto parsed = ParseEnrolRequest(EnrolRequestToJson(request).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->name, "kiosk-1");
  EXPECT_EQ(parsed->site, "shop-7");
  EXPECT_EQ(EnrolRequestToJson({"t", "n", ""}).dump(), R"({"fleet_token":"t","name":"n"})");
  EnrolRequest tagged{"token", "kiosk-1", "", {"portrait", "lobby"}};
  auto with_tags = ParseEnrolRequest(EnrolRequestToJson(tagged).dump());
  ASSERT_TRUE(with_tags.ok()) << with_tags.status().ToString();
  EXPECT_EQ(with_tags->tags, tagged.tags);
  std::string too_many = R"({"fleet_token":"t","name":"a","tags":[)";
  for (size_t i = 0; i <= kMaxEnrolTags; ++i)
    too_many += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  too_many += "]}";
  EXPECT_FALSE(ParseEnrolRequest(too_many).ok());
  for (const char* bad : {R"({"name":"a"})", R"({"fleet_token":"t","name":"a b"})",
                          R"({"fleet_token":"t","name":"a","site":"../x"})",
                          R"({"fleet_token":"t","name":"a","extra":"1"})",
                          R"({"fleet_token":"t","name":"a","tags":["a b"]})",
                          R"({"fleet_token":"t","name":"a","tags":"a"})",
                          R"({"fleet_token":"t","name":"a","tags":[1]})",
                          R"({"fleet_token":1,"name":"a"})", R"({"fleet_token":"","name":"a"})"}) {
    EXPECT_FALSE(ParseEnrolRequest(bad).ok()) << bad;
  }

  // A keyed request: the key, the time and the signature go together.
  EnrolRequest keyed{
      "token", "kiosk-1", "", {}, std::string(64, 'c'), 1796630400, std::string(128, 'd')};
  auto with_key = ParseEnrolRequest(EnrolRequestToJson(keyed).dump());
  ASSERT_TRUE(with_key.ok()) << with_key.status().ToString();
  EXPECT_EQ(with_key->public_key, keyed.public_key);
  EXPECT_EQ(with_key->signed_at_ms, 1796630400);
  EXPECT_EQ(with_key->signature, keyed.signature);
  const std::string key = std::string(64, 'c');
  for (const std::string& bad :
       {R"({"fleet_token":"t","name":"a","public_key":")" + key + R"("})",
        R"({"fleet_token":"t","name":"a","public_key":")" + key +
            R"(","signed_at_ms":5,"signature":"ab"})",
        R"({"fleet_token":"t","name":"a","public_key":"AB","signed_at_ms":5,"signature":")" +
            std::string(128, 'd') + R"("})",
        R"({"fleet_token":"t","name":"a","public_key":")" + key +
            R"(","signed_at_ms":-1,"signature":")" + std::string(128, 'd') + R"("})"}) {
    EXPECT_FALSE(ParseEnrolRequest(bad).ok()) << bad;
  }
  EXPECT_EQ(EnrolStatement("kiosk-1", "ab", 7),
            "flotilla-enrol-v1\nname=kiosk-1\npublic_key=ab\nsigned_at_ms=7\n");

  const std::string hex(64, 'a');
  DeviceCredentials creds{"dev-1", hex, std::string(64, 'b'), "http://t/announce/" + hex};
  auto back = ParseDeviceCredentials(DeviceCredentialsToJson(creds).dump());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->passkey, creds.passkey);
  EXPECT_EQ(back->announce_url, creds.announce_url);
  creds.credential = "short-SECRET";
  auto refused = ParseDeviceCredentials(DeviceCredentialsToJson(creds).dump());
  EXPECT_FALSE(refused.ok());
  // The message names the member, never its value.
  EXPECT_EQ(refused.status().message().find("SECRET"), std::string::npos);
}

TEST(Fleet, AnOlderTrackersAnswerReadsAsEveryDeviceAndNoRollout) {
  // What a tracker without desired releases, rollouts and pages sends.
  auto old = ParseFleet(
      R"({"bytes_from_origin":0,"bytes_from_peers":0,"failures":[],"releases":[],)"
      R"("devices":[{"device_id":"d1","enrolled_at":1,"last_seen":0,"name":"a","report":null,)"
      R"("site":""},{"device_id":"d2","enrolled_at":1,"last_seen":0,"name":"b","report":null,)"
      R"("site":""}]})",
      1 << 20);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->devices_total, 2u);
  EXPECT_EQ(old->devices_offset, 0u);
  EXPECT_TRUE(old->rollouts.empty());
  EXPECT_TRUE(old->devices[0].desired.empty());
}

TEST(Fleet, MembersANewerTrackerAddsAreIgnored) {
  auto newer = ParseFleet(
      R"({"bytes_from_origin":0,"bytes_from_peers":0,"failures":[],"releases":[],"later":1,)"
      R"("devices":[{"device_id":"d1","enrolled_at":1,"last_seen":0,"name":"a","report":null,)"
      R"("site":"","desired":[{"app":"k","release":3,"reason":"r","more":true}],"extra":{}}]})",
      1 << 20);
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  ASSERT_EQ(newer->devices.size(), 1u);
  EXPECT_EQ(newer->devices[0].desired[0].release, 3u);
  // What it knows is still checked.
  EXPECT_FALSE(ParseFleet(R"({"bytes_from_origin":-1,"bytes_from_peers":0,"failures":[],)"
                          R"("releases":[],"devices":[]})",
                          1 << 20)
                   .ok());
}

TEST(Fleet, RolloutFormIsReadBackAndChecked) {
  RolloutRow r;
  r.id = 3;
  r.app = "kiosk";
  r.release = 8;
  r.state = "halted";
  r.reason = "wave 1: 1 of 1 devices failed";
  r.current_wave = 1;
  r.max_failures = "0%";
  r.created_at = 1764320000;
  r.wave_started_at = 1764320001;
  r.updated_at = 1764320002;
  r.waves = {{"10%", true, 1, 0, 0, 1, 0, 0}, {"100%", false, 9, 0, 0, 0, 9, 0}};
  r.failed_devices = {{"screen-1", 1, "health check failed on release 8"}};
  const Json json = RolloutToJson(r);
  EXPECT_EQ(json["created_at"], "2025-11-28T08:53:20Z");
  EXPECT_EQ(json["group"], nullptr);
  auto back = RolloutFromJson(json, "rollout");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RolloutToJson(*back), json);
  EXPECT_EQ(back->created_at, r.created_at);
  EXPECT_EQ(back->waves[1].pending, 9u);

  Json bad_time = json;
  bad_time["updated_at"] = "2025-11-28 08:53:20";
  EXPECT_NE(RolloutFromJson(bad_time, "rollout").status().message().find("rollout.updated_at"),
            std::string::npos);
  Json beyond = json;
  beyond["current_wave"] = 3;
  EXPECT_FALSE(RolloutFromJson(beyond, "rollout").ok());
  Json misnumbered = json;
  misnumbered["waves"][1]["wave"] = 1;
  EXPECT_FALSE(RolloutFromJson(misnumbered, "rollout").ok());
}

TEST(Fleet, WrittenFormIsReadBackTheSame) {
  FleetSnapshot fleet;
  DeviceRow quiet;
  quiet.identity = {"dev-1", "kiosk-1", ""};
  quiet.enrolled_at = 1700000000;
  DeviceRow busy;
  busy.identity = {"dev-2", "kiosk-2", "shop-7"};
  busy.reported = true;
  busy.last_seen = 1700000100;
  busy.report = ParseDeviceReport(kGood).value();
  busy.report.errors.clear();
  fleet.devices = {quiet, busy};
  fleet.releases = {{"web", "r1", 1700000050, 1}};
  fleet.failures = {{"kiosk-2", "web", "r1", "health check failed", 1700000090}};
  fleet.bytes_from_peers = 7;
  fleet.bytes_from_origin = 2;
  const std::string text = FleetToJson(fleet).dump();
  auto back = ParseFleet(text, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(FleetToJson(*back).dump(), text);
  ASSERT_EQ(back->devices.size(), 2u);
  EXPECT_FALSE(back->devices[0].reported);
  EXPECT_TRUE(back->devices[1].reported);
  EXPECT_EQ(back->devices[1].report.state, "downloading");
  EXPECT_EQ(back->failures[0].device_name, "kiosk-2");
  EXPECT_FALSE(ParseFleet(text, 64).ok());  // over the bound
  EXPECT_FALSE(ParseFleet(R"({"devices":[{"device_id":"d"}],"releases":[],"failures":[],)"
                          R"("bytes_from_peers":0,"bytes_from_origin":0})",
                          1 << 20)
                   .ok());
}

}  // namespace
}  // namespace flotilla::tracker
