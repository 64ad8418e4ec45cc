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

// Whether the request's Accept-Encoding names zstd with a weight above 0.
bool AcceptsZstd(const http::Request& request) {
  const auto field = request.find(http::field::accept_encoding);
  if (field == request.end()) return false;
  const std::string_view header = field->value();
  size_t start = 0;
  while (start <= header.size()) {
    size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view coding = header.substr(start, end - start);
    const size_t semicolon = coding.find(';');
    std::string_view params =
        semicolon == std::string_view::npos ? std::string_view() : coding.substr(semicolon + 1);
    coding = coding.substr(0, semicolon);
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
      return s;
    };
    coding = trim(coding);
    params = trim(params);
    const bool refused =
        params == "q=0" || params == "q=0.0" || params == "q=0.00" || params == "q=0.000";
    if (coding == "zstd" && !refused) return true;
    start = end + 1;
  }
  return false;
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
  // `files=1`: a fleet change carries the device's fleet files; zstd when accepted.
  auto files = QueryNumber(*params, "files", 0);
  if (!files.ok()) return NoticeError(http::status::bad_request, files.status().message());
  const NoticeAsk ask{.logs = with_logs, .fleet_files = *files == 1, .zstd = AcceptsZstd(request)};
  NoticeVersions seen{.image = *image, .fleet = *fleet, .logs = *logs};
  NoticeVersions now = notice_.Current(device.device_id);
  if (with_logs) now.logs = NewestLogRequest(device.device_id);
  const bool new_logs = with_logs && now.logs != 0 && now.logs != seen.logs;
  seen.logs = now.logs;
  const uint64_t wait_s = std::min(*wait, max_wait_s);
  if (now != seen || new_logs || wait_s == 0) {
    return NoticeAnswer(options_.repo, device.device_id, now != seen || new_logs,
                        {.image = *image, .fleet = *fleet}, now, ask);
  }
  if (!notice_.HasRoomFor(device.device_id)) {
    refusals_.Refuse("notice_full", "notice request of device '" + device.name +
                                        "': " + std::to_string(notice_.held()) + " held, the cap");
    http::Reply reply = NoticeError(http::status::service_unavailable, "too many held requests");
    reply.headers.emplace_back("Retry-After", "60");
    return reply;
  }
  http::Reply held;
  held.later = [this, id = device.device_id, seen, wait_s, ask](NoticeBoard::Answer answer) {
    notice_.Hold(id, seen, std::chrono::seconds(wait_s), std::move(answer), ask);
  };
  return held;
}

}  // namespace flotilla::tracker
