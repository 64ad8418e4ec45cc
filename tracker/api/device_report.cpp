#include "tracker/api/device_report.h"

#include <arpa/inet.h>

#include <algorithm>

#include "core/json_object_reader.h"
#include "tracker/api/labels.h"

namespace flotilla::tracker {
namespace {

// Stored as SQLite INTEGER (signed 64-bit).
constexpr uint64_t kMaxCount = INT64_MAX;

void ReadLabels(JsonObjectReader& r, DeviceReport& report) {
  r.String("app", report.app);
  r.String("release", report.release);
  r.String("state", report.state);
  r.String("health", report.health);
  r.Check(report.app.empty() || IsValidLabel(report.app), "app", "is not a valid label");
  r.Check(report.release.empty() || IsValidLabel(report.release), "release",
          "is not a valid label");
  const auto& states = ReportStates();
  r.Check(std::find(states.begin(), states.end(), report.state) != states.end(), "state",
          "is not a known state");
  r.Check(report.health == "healthy" || report.health == "unhealthy" || report.health == "unknown",
          "health", "must be healthy, unhealthy or unknown");
}

// Returns the verdict on the nested progress object.
Status ReadCounts(JsonObjectReader& r, DeviceReport& report) {
  r.Unsigned("bytes_from_peers", report.bytes_from_peers, 0, kMaxCount);
  r.Unsigned("bytes_from_origin", report.bytes_from_origin, 0, kMaxCount);
  const Json* progress = r.Object("progress");
  if (progress == nullptr) return Status::Ok();  // r holds the error
  JsonObjectReader p(*progress, r.PathOf("progress"));
  p.Require({"done", "total"});
  p.Unsigned("done", report.progress_done, 0, kMaxCount);
  p.Unsigned("total", report.progress_total, 0, kMaxCount);
  p.Check(report.progress_done <= report.progress_total, "done", "exceeds total");
  return p.Finish();
}

// A message is text for people: a NUL in it (which PostgreSQL's text cannot
// hold, and which no reader wants) becomes U+FFFD rather than failing the
// whole report, which the device would otherwise retry forever.
void ReadErrors(JsonObjectReader& r, DeviceReport& report) {
  r.Strings("errors", report.errors);
  r.Check(report.errors.size() <= kMaxReportErrors, "errors", "has too many entries");
  for (auto& e : report.errors) {
    r.Check(!e.empty() && e.size() <= kMaxReportErrorBytes, "errors",
            "holds an empty or too long message");
    for (size_t at = e.find('\0'); at != std::string::npos; at = e.find('\0', at + 3)) {
      e.replace(at, 1, "\xEF\xBF\xBD");
    }
  }
}

bool IsLowerHex(std::string_view s, size_t size) {
  return s.size() == size && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsIpLiteral(const std::string& ip) {
  unsigned char buf[16];
  return inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

void ReadBadPeers(JsonObjectReader& r, DeviceReport& report) {
  const Json* list = r.Find("bad_peers");
  r.Check(list == nullptr || !list->is_array() || list->size() <= kMaxReportBadPeers, "bad_peers",
          "has too many entries");
  r.Objects("bad_peers", [&](JsonObjectReader& e) {
    BadPeer peer;
    e.Require({"swarm", "ip", "port", "hash_failures"});
    e.String("swarm", peer.swarm);
    e.String("ip", peer.ip);
    e.Unsigned("port", peer.port, 1, 65535);
    e.Unsigned("hash_failures", peer.hash_failures, 1);
    e.Check(IsLowerHex(peer.swarm, 40), "swarm", "must be 40 lowercase hex digits");
    e.Check(IsIpLiteral(peer.ip), "ip", "must be an IPv4 or IPv6 address");
    report.bad_peers.push_back(std::move(peer));
  });
}

// A refusal names the member first ("failure: ..."), so a client can tell
// it from the report's other faults and send the report without it.
void ReadFailure(JsonObjectReader& r, DeviceReport& report) {
  r.String("failure", report.failure);
  if (r.Find("failure") == nullptr) return;
  const auto& kinds = ReportFailureKinds();
  r.Check(std::find(kinds.begin(), kinds.end(), report.failure) != kinds.end(), "failure",
          "must be verification, deploy, health, transfer, disk or agent-probation");
  r.Check(report.state == "failed" || report.state == "rolled_back", "failure",
          "is only for a failed or rolled_back state");
}

// "os/arch[/variant]", each part 1-32 of [a-z0-9_-], so that its tag is a label.
bool IsPlatform(std::string_view text) {
  size_t parts = 0;
  while (true) {
    const size_t slash = text.find('/');
    const std::string_view part = text.substr(0, slash);
    if (part.empty() || part.size() > 32 || !std::all_of(part.begin(), part.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        })) {
      return false;
    }
    ++parts;
    if (slash == std::string_view::npos) break;
    text.remove_prefix(slash + 1);
  }
  return parts == 2 || parts == 3;
}

void ReadPlatform(JsonObjectReader& r, DeviceReport& report) {
  r.String("platform", report.platform);
  r.Check(r.Find("platform") == nullptr || IsPlatform(report.platform), "platform",
          "must be os/arch[/variant] of [a-z0-9_-]");
}

}  // namespace

std::string PlatformTag(std::string_view platform) {
  std::string tag(kPlatformTagPrefix);
  tag += platform;
  std::replace(tag.begin() + kPlatformTagPrefix.size(), tag.end(), '/', '.');
  return tag;
}

Result<DeviceReport> DeviceReportFromJson(const Json& json, const std::string& path) {
  JsonObjectReader r(json, path);
  r.Require({"app", "release", "state", "progress", "bytes_from_peers", "bytes_from_origin",
             "health", "errors"});
  DeviceReport report;
  ReadLabels(r, report);
  Status progress = ReadCounts(r, report);
  ReadErrors(r, report);
  ReadBadPeers(r, report);
  r.Unsigned("seq", report.seq, 1, kMaxCount);
  ReadFailure(r, report);
  ReadPlatform(r, report);
  RETURN_IF_ERROR(r.Finish());
  RETURN_IF_ERROR(progress);
  return report;
}

Result<DeviceReport> ParseDeviceReport(std::string_view body) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, JsonLimits{.max_bytes = 64 << 10, .max_depth = 4}));
  return DeviceReportFromJson(json, "");
}

Json DeviceReportToJson(const DeviceReport& report) {
  Json json{{"app", report.app},
            {"release", report.release},
            {"state", report.state},
            {"progress", {{"done", report.progress_done}, {"total", report.progress_total}}},
            {"bytes_from_peers", report.bytes_from_peers},
            {"bytes_from_origin", report.bytes_from_origin},
            {"health", report.health},
            {"errors", report.errors}};
  if (!report.bad_peers.empty()) {
    Json& peers = json["bad_peers"] = Json::array();
    for (const BadPeer& p : report.bad_peers) {
      peers.push_back(
          {{"swarm", p.swarm}, {"ip", p.ip}, {"port", p.port}, {"hash_failures", p.hash_failures}});
    }
  }
  if (report.seq != 0) json["seq"] = report.seq;
  if (!report.failure.empty()) json["failure"] = report.failure;
  if (!report.platform.empty()) json["platform"] = report.platform;
  return json;
}

}  // namespace flotilla::tracker
