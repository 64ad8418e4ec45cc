// TrackerService: GET /api/v1/devices/<id>/notice (docs/tracker.md, "Notice").
//
// Behind the device's credential (as its fleet repository): the answer says
// whether the image repository's timestamp or the device's fleet timestamp
// moved past the versions the query names. Answered at once when they
// differ, else held by the NoticeBoard until they do or `wait` passes.
#include <charconv>

#include "tracker/announce/announce_request.h"
#include "tracker/service/tracker_service.h"

namespace flotilla::tracker {
namespace {

// A decimal member of the query; `fallback` when absent.
Result<uint64_t> QueryNumber(const std::map<std::string, std::string>& params,
                             const std::string& name, uint64_t fallback) {
  const auto it = params.find(name);
  if (it == params.end()) return fallback;
  uint64_t value = 0;
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(name + " must be a decimal number");
  }
  return value;
}

http::Reply NoticeError(http::status status, const std::string& message) {
  http::Reply reply =
      http::Reply::Typed(status, "application/json", Json{{"error", message}}.dump() + "\n");
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

}  // namespace

http::Reply TrackerService::Notice(std::string_view device_id, std::string_view query,
                                   const http::Request& request) {
  auto authenticated = AuthenticateDevice(request, device_id, "notice", "notice request");
  if (auto* refusal = std::get_if<http::Reply>(&authenticated)) return std::move(*refusal);
  const DeviceIdentity& device = std::get<DeviceIdentity>(authenticated);
  if (!request.body().empty()) return NoticeError(http::status::bad_request, "no body is read");
  const uint64_t max_wait_s =
      std::chrono::duration_cast<std::chrono::seconds>(notice_.limits().max_wait).count();
  auto params = ParseQuery(query);
  if (!params.ok()) return NoticeError(http::status::bad_request, "malformed query");
  auto image = QueryNumber(*params, "image", 0);
  auto fleet = QueryNumber(*params, "fleet", 0);
  auto wait = QueryNumber(*params, "wait", max_wait_s);
  for (const auto* parsed : {&image, &fleet, &wait}) {
    if (!parsed->ok()) return NoticeError(http::status::bad_request, parsed->status().message());
  }
  // `logs`: the device takes log requests (docs/logs.md) and names the
  // newest it has seen; a newer open one answers at once.
  const bool with_logs = params->contains("logs");
  auto logs = QueryNumber(*params, "logs", 0);
  if (!logs.ok()) return NoticeError(http::status::bad_request, logs.status().message());
  NoticeVersions seen{.image = *image, .fleet = *fleet, .logs = *logs};
  NoticeVersions now = notice_.Current(device.device_id);
  if (with_logs) now.logs = NewestLogRequest(device.device_id);
  const bool new_logs = with_logs && now.logs != 0 && now.logs != seen.logs;
  seen.logs = now.logs;
  const uint64_t wait_s = std::min(*wait, max_wait_s);
  if (now != seen || new_logs || wait_s == 0) {
    return NoticeReply(now != seen || new_logs, now, with_logs);
  }
  if (!notice_.HasRoomFor(device.device_id)) {
    refusals_.Refuse("notice_full", "notice request of device '" + device.name +
                                        "': " + std::to_string(notice_.held()) + " held, the cap");
    http::Reply reply = NoticeError(http::status::service_unavailable, "too many held requests");
    reply.headers.emplace_back("Retry-After", "60");
    return reply;
  }
  http::Reply held;
  held.later = [this, id = device.device_id, seen, wait_s, with_logs](NoticeBoard::Answer answer) {
    notice_.Hold(id, seen, std::chrono::seconds(wait_s), std::move(answer), with_logs);
  };
  return held;
}

}  // namespace flotilla::tracker
