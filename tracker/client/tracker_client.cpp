#include "tracker/client/tracker_client.h"

#include <charconv>

#include "core/canonical_json.h"

namespace flotilla::tracker {
namespace {

constexpr size_t kMaxEnrolReplyBytes = 16 << 10;
constexpr size_t kMaxReportReplyBytes = 16 << 10;

}  // namespace

TrackerClient::TrackerClient(std::string base_url, http::ClientOptions options)
    : base_(std::move(base_url)), http_(std::move(options)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

Result<DeviceCredentials> TrackerClient::Enrol(const EnrolRequest& request) {
  auto send = [&](const EnrolRequest& r) {
    return http_.Fetch({.method = "POST",
                        .url = base_ + "/api/v1/enroll",
                        .body = EnrolRequestToJson(r).dump(),
                        .max_body_bytes = kMaxEnrolReplyBytes});
  };
  auto reply = send(request);
  // A tracker older than device keys refuses the member ("400 unknown
  // member public_key" from 0.1.0, "unknown key 'public_key'" later): the
  // device enrols without a key there, as a 0.1.0 node does.
  const auto names = [&](std::string_view what) {
    return reply.status().message().find(what) != std::string::npos;
  };
  if (!reply.ok() && reply.status().code() == StatusCode::kInvalidArgument &&
      !request.public_key.empty() && names("unknown") && names("public_key")) {
    EnrolRequest unkeyed = request;
    unkeyed.public_key.clear();
    unkeyed.signed_at_ms = 0;
    unkeyed.signature.clear();
    reply = send(unkeyed);
  }
  if (!reply.ok()) return reply.status();
  return ParseDeviceCredentials(reply->body).WithContext("enrolment answer");
}

Status TrackerClient::BindKey(const DeviceCredentials& device, const KeyBinding& binding) {
  return http_
      .Fetch({.method = "POST",
              .url = base_ + "/api/v1/devices/" + device.device_id + "/key",
              .headers = {{"Authorization", "Bearer " + device.credential}},
              .body = KeyBindingToJson(binding).dump(),
              .max_body_bytes = kMaxReportReplyBytes})
      .status();
}

Status TrackerClient::Report(const DeviceCredentials& device, const DeviceReport& report,
                             uint64_t* newest_log_request) {
  auto send = [&](const DeviceReport& r) -> Status {
    auto answer = http_.Fetch({.method = "POST",
                               .url = base_ + "/api/v1/devices/" + device.device_id + "/report",
                               .headers = {{"Authorization", "Bearer " + device.credential}},
                               .body = DeviceReportToJson(r).dump(),
                               .max_body_bytes = kMaxReportReplyBytes,
                               .response_headers = {"X-Flotilla-Logs"}});
    if (!answer.ok()) return answer.status();
    if (newest_log_request != nullptr) {
      *newest_log_request = 0;
      if (auto it = answer->headers.find("x-flotilla-logs"); it != answer->headers.end()) {
        const std::string& text = it->second;
        std::from_chars(text.data(), text.data() + text.size(), *newest_log_request);
      }
    }
    return Status::Ok();
  };
  // A 0.1.0 tracker refuses members it does not know ("400 unknown member
  // bad_peers", "... failure", "... seq", "... platform"), a newer one a
  // failure kind or platform it does not take ("failure: must be ..."): the
  // rest of the report still matters, so it goes without them (a failure
  // without its kind counts as a failure).
  DeviceReport sent = report;
  Status st = send(sent);
  auto names = [&](std::string_view what) { return st.message().find(what) != std::string::npos; };
  for (int retry = 0; retry < 4 && st.code() == StatusCode::kInvalidArgument; ++retry) {
    if (!sent.bad_peers.empty() && names("unknown member bad_peers")) {
      sent.bad_peers.clear();
    } else if (!sent.failure.empty() && (names("unknown member failure") || names("failure: "))) {
      sent.failure.clear();
    } else if (sent.seq != 0 && names("unknown member seq")) {
      sent.seq = 0;
    } else if (!sent.platform.empty() &&
               (names("unknown member platform") || names("platform: "))) {
      sent.platform.clear();
    } else {
      break;
    }
    st = send(sent);
  }
  return st;
}

Result<FleetSnapshot> TrackerClient::Fleet(size_t max_bytes) {
  ASSIGN_OR_RETURN(http::Response reply,
                   http_.Fetch({.url = base_ + "/api/v1/fleet", .max_body_bytes = max_bytes}));
  return ParseFleet(reply.body, max_bytes).WithContext("fleet answer");
}

std::string TrackerClient::MetadataUrl(std::string_view name) const {
  return base_ + "/metadata/" + std::string(name);
}

std::string TrackerClient::ArtifactUrl(std::string_view sha256_hex) const {
  return base_ + "/artifacts/" + std::string(sha256_hex);
}

std::string TrackerClient::TorrentUrl(std::string_view sha256_hex, std::string_view passkey) const {
  std::string url = base_ + "/torrents/" + std::string(sha256_hex) + ".torrent";
  if (!passkey.empty()) url += "?passkey=" + std::string(passkey);
  return url;
}

std::string TrackerClient::AnnounceUrl(std::string_view passkey) const {
  return base_ + "/announce/" + std::string(passkey);
}

Result<std::vector<TrackerClient::LogRequestInfo>> TrackerClient::PendingLogRequests(
    const DeviceCredentials& device) {
  ASSIGN_OR_RETURN(http::Response reply,
                   http_.Fetch({.url = base_ + "/api/v1/devices/" + device.device_id + "/logs",
                                .headers = {{"Authorization", "Bearer " + device.credential}},
                                .max_body_bytes = kMaxReportReplyBytes}));
  auto parsed = ParseJsonStrict(reply.body);
  if (!parsed.ok() || !parsed->is_object() || !(*parsed)["requests"].is_array()) {
    return InvalidArgument("log requests: not the expected JSON");
  }
  std::vector<LogRequestInfo> requests;
  for (const Json& r : (*parsed)["requests"]) {
    if (!r.is_object() || !r["id"].is_number_integer() || !r["app"].is_string() ||
        !r["since_s"].is_number_integer()) {
      return InvalidArgument("log requests: a request is not the expected JSON");
    }
    requests.push_back(
        {r["id"].get<int64_t>(), r["app"].get<std::string>(), r["since_s"].get<int64_t>()});
  }
  return requests;
}

Status TrackerClient::UploadLog(const DeviceCredentials& device, int64_t request_id,
                                std::string_view log) {
  return http_
      .Fetch({.method = "POST",
              .url = base_ + "/api/v1/devices/" + device.device_id + "/logs/" +
                     std::to_string(request_id),
              .headers = {{"Authorization", "Bearer " + device.credential}},
              .body = std::string(log),
              .content_type = "text/plain; charset=utf-8",
              .max_body_bytes = kMaxReportReplyBytes})
      .status();
}

}  // namespace flotilla::tracker
