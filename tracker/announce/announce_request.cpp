#include "tracker/announce/announce_request.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/bytes.h"
#include "tracker/api/labels.h"

namespace flotilla::tracker {
namespace {

Result<uint64_t> ParseUnsigned(std::string_view name, std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument(std::string(name) + " is not an unsigned integer");
  }
  return value;
}

const std::string* Find(const std::map<std::string, std::string>& q, const std::string& key) {
  auto it = q.find(key);
  return it == q.end() ? nullptr : &it->second;
}

Result<AnnounceEvent> ParseEvent(const std::string* text) {
  if (text == nullptr || text->empty()) return AnnounceEvent::kNone;
  if (*text == "started") return AnnounceEvent::kStarted;
  if (*text == "completed") return AnnounceEvent::kCompleted;
  if (*text == "stopped") return AnnounceEvent::kStopped;
  if (*text == "paused") return AnnounceEvent::kPaused;
  return InvalidArgument("unknown event");
}

Status ParseIdentity(const std::map<std::string, std::string>& q, AnnounceRequest& r) {
  const std::string* hash = Find(q, "info_hash");
  if (hash == nullptr) return InvalidArgument("missing info_hash");
  if (hash->size() != r.info_hash.size()) return InvalidArgument("info_hash is not 20 bytes");
  std::memcpy(r.info_hash.data(), hash->data(), r.info_hash.size());
  const std::string* peer_id = Find(q, "peer_id");
  if (peer_id == nullptr) return InvalidArgument("missing peer_id");
  if (peer_id->size() != 20) return InvalidArgument("peer_id is not 20 bytes");
  r.peer_id = *peer_id;
  const std::string* port = Find(q, "port");
  if (port == nullptr) return InvalidArgument("missing port");
  ASSIGN_OR_RETURN(uint64_t port_value, ParseUnsigned("port", *port));
  if (port_value == 0 || port_value > 65535) return InvalidArgument("port out of range");
  r.port = static_cast<uint16_t>(port_value);
  return Status::Ok();
}

Status ParseCounters(const std::map<std::string, std::string>& q, AnnounceRequest& r) {
  if (const auto* v = Find(q, "uploaded")) {
    ASSIGN_OR_RETURN(r.uploaded, ParseUnsigned("uploaded", *v));
  }
  if (const auto* v = Find(q, "downloaded")) {
    ASSIGN_OR_RETURN(r.downloaded, ParseUnsigned("downloaded", *v));
  }
  if (const auto* v = Find(q, "left")) {
    ASSIGN_OR_RETURN(r.left, ParseUnsigned("left", *v));
  }
  if (const auto* v = Find(q, "numwant")) {
    ASSIGN_OR_RETURN(uint64_t n, ParseUnsigned("numwant", *v));
    r.numwant = static_cast<int>(std::min<uint64_t>(n, kMaxNumwant));
  }
  if (const auto* v = Find(q, "compact")) {
    if (*v != "0" && *v != "1") return InvalidArgument("compact must be 0 or 1");
    r.compact = *v == "1";
  }
  return Status::Ok();
}

Status ParseLocality(const std::map<std::string, std::string>& q, AnnounceRequest& r) {
  if (const auto* v = Find(q, "site")) {
    if (!IsValidLabel(*v)) return InvalidArgument("site is not a valid label");
    r.site = *v;
  }
  if (const auto* v = Find(q, "ip")) {
    auto ip = IpAddress::Parse(*v);
    if (!ip.ok()) return InvalidArgument("ip is not an IP address literal");
    r.lan_ip = *ip;
  }
  if (const auto* v = Find(q, "proxied")) {
    if (*v != "0" && *v != "1") return InvalidArgument("proxied must be 0 or 1");
    r.proxied = *v == "1";
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    ASSIGN_OR_RETURN(std::string key, PercentDecode(pair.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1)));
    }
    if (key.empty()) return InvalidArgument("empty query key");
    if (!out.emplace(std::move(key), std::move(value)).second) {
      return InvalidArgument("repeated query key");
    }
  }
  return out;
}

Result<AnnounceRequest> ParseAnnounce(const std::map<std::string, std::string>& query) {
  AnnounceRequest r;
  RETURN_IF_ERROR(ParseIdentity(query, r));
  RETURN_IF_ERROR(ParseCounters(query, r));
  ASSIGN_OR_RETURN(r.event, ParseEvent(Find(query, "event")));
  RETURN_IF_ERROR(ParseLocality(query, r));
  return r;
}

}  // namespace flotilla::tracker
