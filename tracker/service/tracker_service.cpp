#include "tracker/service/tracker_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/bytes.h"
#include "http/byte_range.h"
#include "metadata/tuf_names.h"
#include "tracker/announce/announce_request.h"
#include "tracker/publish/torrent_maker.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kMaxTorrentFileBytes = 16 << 20;
// Metadata files up to this size are answered from memory (one pread), larger
// ones are streamed.
constexpr uint64_t kInlineFileBytes = 64 << 10;

struct OpenedFile {
  std::shared_ptr<UniqueFd> handle;
  uint64_t size = 0;
};

// Opens a regular file without following a symlink in its last component.
Result<OpenedFile> OpenRegularFile(const std::string& path) {
  auto handle = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!handle->valid()) return NotFound("no such file");
  struct stat st;
  if (::fstat(handle->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return NotFound("not a regular file");
  }
  return OpenedFile{std::move(handle), static_cast<uint64_t>(st.st_size)};
}

// Reads a whole regular file opened by OpenRegularFile, up to `max_bytes`.
Result<std::string> ReadOpenedFile(const OpenedFile& file, uint64_t max_bytes) {
  if (file.size > max_bytes) return ResourceExhausted("file too large");
  std::string out(file.size, '\0');
  RETURN_IF_ERROR(PreadExact(file.handle->get(),
                             std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0));
  return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return parts;
}

// BEP 3: a refusal is a normal reply that carries a failure reason, so a
// client shows the reason rather than an HTTP status.
http::Reply AnnounceFailure(const std::string& reason) {
  return http::Reply::Typed(http::status::ok, "text/plain", EncodeAnnounceFailure(reason));
}

http::Reply MethodNotAllowed(const char* allow) {
  http::Reply r = http::Reply::Text(http::status::method_not_allowed, "method not allowed");
  r.headers.emplace_back("Allow", allow);
  return r;
}

// The client's address as the swarm logic sees it (an IPv4-mapped IPv6
// address is its IPv4 address).
IpAddress RemoteAddress(const http::RequestContext& context) {
  return IpAddress::Parse(context.remote.to_string()).value_or(IpAddress{});
}

http::Reply NotFoundReply() { return http::Reply::Text(http::status::not_found, "not found"); }

}  // namespace

TrackerService::TrackerService(TrackerServiceOptions options, DeviceDb& db, const Clock& clock)
    : options_(std::move(options)),
      db_(db),
      clock_(clock),
      refusals_(clock, metrics_),
      reputation_(clock, options_.swarm.peer_ttl),
      swarms_(clock, options_.swarm, &reputation_),
      enrolments_(options_.enrolment.burst, options_.enrolment.per_minute / 60,
                  clock.MonotonicNow()),
      login_attempts_(options_.logins.burst, options_.logins.per_minute / 60, clock.MonotonicNow()),
      notice_(options_.notice, clock, options_.repo) {
  notice_.set_pending_logs([this] { return NewestLogRequests(); });
}

http::Reply TrackerService::Handle(const http::Request& request,
                                   const http::RequestContext& context) {
  std::string route = "other";
  authenticated_device_.clear();
  http::Reply reply = Route(request, context, route);
  reply.authenticated_as = std::move(authenticated_device_);
  const int code = static_cast<int>(reply.status);
  metrics_.CountRequest(route, code);
  // Only the route is logged: paths and queries may carry passkeys.
  if (code >= 500) {
    spdlog::warn("{} {} from {}: {}", std::string(request.method_string()), route,
                 RemoteAddress(context).ToString(), code);
  } else {
    spdlog::debug("{} {} from {}: {}", std::string(request.method_string()), route,
                  RemoteAddress(context).ToString(), code);
  }
  return reply;
}

http::Reply TrackerService::Route(const http::Request& request, const http::RequestContext& context,
                                  std::string& route) {
  if (request.version() != 10 && request.version() != 11) {
    return http::Reply::Text(http::status::bad_request, "only HTTP/1.0 and HTTP/1.1");
  }
  const std::string_view target = request.target();
  if (target.empty() || target[0] != '/') {
    return http::Reply::Text(http::status::bad_request, "request target must be a path");
  }
  const size_t qmark = target.find('?');
  RequestTarget t;
  t.path = target.substr(0, qmark);
  t.query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  t.parts = SplitPath(t.path);
  if (auto reply = RouteContent(request, context, t, route)) return std::move(*reply);
  return RouteApiAndPages(request, context, t, route);
}

std::optional<http::Reply> TrackerService::RouteContent(const http::Request& request,
                                                        const http::RequestContext& context,
                                                        const RequestTarget& t,
                                                        std::string& route) {
  const auto& parts = t.parts;
  const std::string_view first = parts.empty() ? std::string_view() : parts[0];
  const bool get = request.method() == http::verb::get;
  if (first == "announce") {
    route = "announce";
    if (!get) return MethodNotAllowed("GET");
    if (parts.size() != 2) {
      metrics_.CountAnnounce("refused");
      refusals_.Refuse("announce_passkey", "announce without a passkey");
      return AnnounceFailure("passkey required");
    }
    return Announce(parts[1], t.query, context);
  }
  if (first == "artifacts") {
    route = "artifact";
    if (!get) return MethodNotAllowed("GET");
    const bool named = parts.size() == 3 && parts[2] == parts[1];
    if (parts.size() != 2 && !named) return NotFoundReply();
    return ServeArtifact(parts[1], request);
  }
  if (first == "fleet" || (first == "targets" && parts.size() == 3 && parts[1] == "fleet")) {
    route = "fleet_metadata";
    if (!get) return MethodNotAllowed("GET");
    return first == "fleet" ? ServeFleetDevice(parts, request) : ServeFleetRoot(parts[2]);
  }
  if (first == "metadata" || first == "torrents") {
    route = first == "metadata" ? "metadata" : "torrent";
    if (!get) return MethodNotAllowed("GET");
    if (parts.size() != 2) return NotFoundReply();
    return first == "metadata" ? ServeMetadata(parts[1]) : ServeTorrent(parts[1], t.query);
  }
  return std::nullopt;
}

http::Reply TrackerService::RouteApiAndPages(const http::Request& request,
                                             const http::RequestContext& context,
                                             const RequestTarget& t, std::string& route) {
  const auto& parts = t.parts;
  const bool get = request.method() == http::verb::get;
  const bool post = request.method() == http::verb::post;
  const bool api = parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1";
  if (api && parts.size() == 3 && parts[2] == "enroll") {
    route = "enroll";
    return post ? Enroll(request) : MethodNotAllowed("POST");
  }
  if (api && parts.size() == 5 && parts[2] == "devices" && parts[4] == "report") {
    route = "report";
    return post ? Report(parts[3], request, context) : MethodNotAllowed("POST");
  }
  if (api && parts.size() == 5 && parts[2] == "devices" && parts[4] == "key") {
    route = "key";
    return post ? BindKey(parts[3], request) : MethodNotAllowed("POST");
  }
  if (api && parts.size() == 5 && parts[2] == "devices" && parts[4] == "notice") {
    route = "notice";
    return get ? Notice(parts[3], t.query, request) : MethodNotAllowed("GET");
  }
  if (api && (parts.size() == 5 || parts.size() == 6) && parts[2] == "devices" &&
      parts[4] == "logs") {
    route = "logs";
    return DeviceLogs(parts, request);
  }
  if (api && (parts.size() == 4 || parts.size() == 5) && parts[2] == "operator" &&
      parts[3] == "logs" && options_.operators != nullptr) {
    route = "operator";
    return OperatorLogs(parts, request, context);
  }
  OperatorIdentity who;
  if (api && parts.size() == 3 && parts[2] == "fleet") {
    route = "fleet";
    if (!get) return MethodNotAllowed("GET");
    if (auto refusal = Authorize(request, context, "fleet.read", false, who)) return *refusal;
    return Fleet(t.query);
  }
  if (api && parts.size() >= 4 && parts[2] == "operator") {
    route = "operator";
    return OperatorApi(parts, t.query, request, context);
  }
  if (t.path == "/" || t.path == "/dashboard") {
    route = "dashboard";
    if (!get) return MethodNotAllowed("GET");
    if (auto refusal = Authorize(request, context, "dashboard", true, who)) return *refusal;
    return Dashboard(t.query, who, request);
  }
  if (t.path == "/logs" || t.path.starts_with("/logs/")) {
    route = "dashboard";
    return LogPages(t.path, t.query, request, context);
  }
  if (t.path == "/login" || t.path == "/logout") {
    route = "login";
    if (t.path == "/logout") return post ? Logout(request, context) : MethodNotAllowed("POST");
    if (get) return LoginPage(request, context);
    return post ? Login(request, context) : MethodNotAllowed("GET, POST");
  }
  if (t.path == "/metrics") {
    route = "metrics";
    if (!get) return MethodNotAllowed("GET");
    if (auto refusal = Authorize(request, context, "metrics", false, who)) return *refusal;
    return Metrics();
  }
  if (t.path == "/healthz") {
    route = "health";
    return get ? http::Reply::Text(http::status::ok, "ok") : MethodNotAllowed("GET");
  }
  if (t.path == "/readyz") {
    route = "health";
    return get ? Ready() : MethodNotAllowed("GET");
  }
  return NotFoundReply();
}

http::Reply TrackerService::ServeMetadata(std::string_view name) {
  // Files are named by the percent-encoded role (docs/metadata.md, Names):
  // the request's name, decoded, is encoded again, so it is one safe segment.
  auto decoded = PercentDecode(name);
  if (!decoded.ok()) return NotFoundReply();
  const std::string file_name = metadata::PercentEncode(*decoded);
  if (file_name.size() > 512 || file_name.empty() || file_name[0] == '.') return NotFoundReply();
  auto file = OpenRegularFile(options_.repo.metadata_dir() + "/" + file_name);
  if (!file.ok()) return NotFoundReply();
  http::Reply reply;
  reply.content_type = name.ends_with(".json") ? "application/json" : "application/octet-stream";
  reply.headers.emplace_back("Cache-Control", "no-cache");
  if (file->size <= kInlineFileBytes) {
    auto bytes = ReadOpenedFile(*file, kInlineFileBytes);
    if (!bytes.ok()) return http::Reply::Text(http::status::internal_server_error, "read error");
    reply.body = std::move(*bytes);
    return reply;
  }
  reply.file = http::FileRangeBody::value_type{file->handle, 0, file->size, nullptr};
  return reply;
}

http::Reply TrackerService::ServeArtifact(std::string_view hex, const http::Request& request) {
  if (!IsArtifactHex(hex)) return NotFoundReply();
  auto file = OpenRegularFile(options_.repo.artifact_path(hex));
  if (!file.ok()) return NotFoundReply();
  std::optional<std::string_view> range_header;
  if (auto it = request.find(http::field::range); it != request.end()) range_header = it->value();
  auto range = http::ResolveRange(range_header, file->size);
  if (!range.ok()) {
    http::Reply r = http::Reply::Text(http::status::range_not_satisfiable, "range not satisfiable");
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(file->size));
    return r;
  }
  http::Reply reply;
  reply.content_type = "application/octet-stream";
  reply.headers.emplace_back("Accept-Ranges", "bytes");
  const http::ByteRange slice = range->value_or(http::ByteRange{0, file->size});
  if (range->has_value()) {
    reply.status = http::status::partial_content;
    reply.headers.emplace_back("Content-Range",
                               "bytes " + std::to_string(slice.offset) + "-" +
                                   std::to_string(slice.offset + slice.length - 1) + "/" +
                                   std::to_string(file->size));
  }
  reply.file = http::FileRangeBody::value_type{file->handle, slice.offset, slice.length,
                                               metrics_.ArtifactBytesCounter(std::string(hex))};
  return reply;
}

http::Reply TrackerService::ServeTorrent(std::string_view file, std::string_view query) {
  constexpr std::string_view kSuffix = ".torrent";
  if (!file.ends_with(kSuffix)) return NotFoundReply();
  const std::string_view hex = file.substr(0, file.size() - kSuffix.size());
  if (!IsArtifactHex(hex)) return NotFoundReply();
  auto opened = OpenRegularFile(options_.repo.torrent_path(hex));
  if (!opened.ok()) return NotFoundReply();
  auto bytes = ReadOpenedFile(*opened, kMaxTorrentFileBytes);
  if (!bytes.ok()) return http::Reply::Text(http::status::internal_server_error, "read error");
  auto params = ParseQuery(query);
  if (!params.ok()) return http::Reply::Text(http::status::bad_request, "malformed query");
  std::string torrent = std::move(*bytes);
  if (auto it = params->find("passkey"); it != params->end()) {
    auto device = db_.AuthenticatePasskey(it->second);
    if (!device.ok()) return http::Reply::Text(http::status::forbidden, "unknown passkey");
    authenticated_device_ = device->device_id;
    auto personal =
        PersonalizeTorrent(torrent, AnnounceUrl(options_.public_url) + "/" + it->second);
    if (!personal.ok())
      return http::Reply::Text(http::status::internal_server_error, "bad torrent");
    torrent = std::move(*personal);
  }
  return http::Reply::Typed(http::status::ok, "application/x-bittorrent", std::move(torrent));
}

bool TrackerService::WithinBudget(const DeviceIdentity& device) {
  const MonoTime now = clock_.MonotonicNow();
  auto it = device_budgets_.find(device.device_id);
  if (it == device_budgets_.end()) {
    it = device_budgets_
             .emplace(device.device_id, TokenBucket(options_.device_requests.burst,
                                                    options_.device_requests.per_minute / 60, now))
             .first;
  }
  return it->second.Take(now);
}

http::Reply TrackerService::Announce(std::string_view passkey, std::string_view query,
                                     const http::RequestContext& context) {
  const std::string from = RemoteAddress(context).ToString();
  auto device = db_.AuthenticatePasskey(passkey);
  if (!device.ok()) {
    metrics_.CountAnnounce("refused");
    refusals_.Refuse("announce_passkey", "announce with an unknown passkey from " + from);
    return AnnounceFailure("unknown passkey");
  }
  authenticated_device_ = device->device_id;
  if (!WithinBudget(*device)) {
    metrics_.CountAnnounce("rate_limited");
    refusals_.Refuse("announce_device_rate", "announces of device '" + device->name + "'");
    return AnnounceFailure("too many announces from this device, retry later");
  }
  auto params = ParseQuery(query);
  auto request = params.ok() ? ParseAnnounce(*params) : Result<AnnounceRequest>(params.status());
  if (!request.ok()) {
    metrics_.CountAnnounce("malformed");
    refusals_.Refuse("announce_malformed", "malformed announce from device '" + device->name +
                                               "': " + request.status().message());
    return AnnounceFailure(request.status().message());
  }
  AnnouncerIdentity who{device->device_id, RemoteAddress(context),
                        request->site.empty() ? device->site : request->site};
  auto result = swarms_.Announce(who, *request);
  if (!result.ok()) {
    const bool full = result.status().code() == StatusCode::kUnavailable;
    metrics_.CountAnnounce(full ? "full" : "device_limit");
    refusals_.Refuse(full ? "announce_tracker_full" : "announce_device_peers",
                     "announce of device '" + device->name + "': " + result.status().message());
    return AnnounceFailure(full ? "tracker is full, retry later"
                                : "this device announces too many peers; stop some first");
  }
  metrics_.CountAnnounce("ok");
  return http::Reply::Typed(http::status::ok, "text/plain",
                            EncodeAnnounceResponse(*result, request->compact, options_.timing));
}

}  // namespace flotilla::tracker
