// TrackerService: the fleet repository's files (docs/fleet.md, "Serving").
//
//   GET /targets/fleet/<sha256>.root.json            the fleet root, as the
//       image repository's target fleet/root.json (public: a node checks it
//       against the image repository's signed length and hashes)
//   GET /fleet/devices/<id>/metadata/<name>          a device's fleet metadata
//   GET /fleet/devices/<id>/targets/<sha256>.device.json   its fleet document
//
// A device's files are served only to that device: a request without a
// known credential is answered 401, a credential of another device 403.
// Names are checked against the exact forms the layout uses before a path
// is built, so nothing a request names leaves the device's directory.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/fd.h"
#include "tracker/service/tracker_service.h"
#include "tracker/storage/device_state.h"

namespace flotilla::tracker {
namespace {

constexpr uint64_t kMaxFleetFileBytes = 1 << 20;

http::Reply NotFoundHere() { return http::Reply::Text(http::status::not_found, "not found"); }

// A device id as the fleet repository names its directory: 1-64 of
// [A-Za-z0-9._-], not starting with '.'.
bool IsDeviceLabel(std::string_view id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool IsDecimal(std::string_view s) {
  return !s.empty() && s.size() <= 19 && s[0] != '0' &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The metadata names a device repository holds: timestamp.json and
// root.json, and N.ROLE.json for root, targets and snapshot (consistent
// snapshots: there are no unversioned targets or snapshot).
bool IsFleetMetadataName(std::string_view name) {
  constexpr std::string_view kRoles[] = {"root.json", "targets.json", "snapshot.json"};
  if (name == "timestamp.json" || name == "root.json") return true;
  for (std::string_view role : kRoles) {
    if (name.size() > role.size() + 1 && name.ends_with(role) &&
        name[name.size() - role.size() - 1] == '.' &&
        IsDecimal(name.substr(0, name.size() - role.size() - 1))) {
      return true;
    }
  }
  return false;
}

// "<64 hex>" + suffix: the hex, or empty.
std::string_view HexBefore(std::string_view name, std::string_view suffix) {
  if (!name.ends_with(suffix)) return {};
  const std::string_view hex = name.substr(0, name.size() - suffix.size());
  return IsArtifactHex(hex) ? hex : std::string_view();
}

// The whole regular file at `path` (no symlink in its last component), or NotFound.
Result<std::string> ReadRegularFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return NotFound("no such file");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return NotFound("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFleetFileBytes) {
    return ResourceExhausted("file too large");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadExact(fd.get(), std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0));
  return out;
}

http::Reply BytesReply(std::string bytes, const char* cache_control) {
  http::Reply reply = http::Reply::Typed(http::status::ok, "application/json", std::move(bytes));
  reply.headers.emplace_back("Cache-Control", cache_control);
  return reply;
}

http::Reply ReadError() {
  return http::Reply::Text(http::status::internal_server_error, "read error");
}

http::Reply FileReply(const std::string& path, const char* cache_control) {
  auto bytes = ReadRegularFile(path);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return NotFoundHere();
    return ReadError();
  }
  return BytesReply(std::move(*bytes), cache_control);
}

// Versioned names never change; timestamp.json and root.json must be asked
// for again each time.
const char* MetadataCacheControl(std::string_view name) {
  return name.find('.') != name.rfind('.') ? "private, max-age=86400" : "no-store";
}

}  // namespace

http::Reply TrackerService::ServeFleetRoot(std::string_view file) {
  const std::string_view hex = HexBefore(file, ".root.json");
  if (hex.empty()) return NotFoundHere();
  // Content-addressed: the name is the hash of the bytes the image repository signed.
  return FileReply(options_.repo.root + "/targets/fleet/" + std::string(hex) + ".root.json",
                   "public, max-age=86400");
}

http::Reply TrackerService::ServeFleetDevice(const std::vector<std::string_view>& parts,
                                             const http::Request& request) {
  // parts: fleet devices <id> (metadata <name> | targets <sha256>.device.json)
  if (parts.size() != 5 || parts[1] != "devices") return NotFoundHere();
  const std::string_view id = parts[2], kind = parts[3], name = parts[4];
  auto authenticated = AuthenticateDevice(request, id, "fleet", "fleet metadata request");
  if (auto* refusal = std::get_if<http::Reply>(&authenticated)) return std::move(*refusal);
  if (!IsDeviceLabel(id)) return NotFoundHere();
  if (kind == "metadata" ? !IsFleetMetadataName(name)
                         : kind != "targets" || HexBefore(name, ".device.json").empty()) {
    return NotFoundHere();
  }
  auto bytes = ReadDeviceRepositoryFile(options_.repo, id, kind, name);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return NotFoundHere();
    spdlog::error("fleet metadata of device {}: {}", id, bytes.status().ToString());
    return ReadError();
  }
  return BytesReply(std::move(*bytes),
                    kind == "metadata" ? MetadataCacheControl(name) : "private, max-age=86400");
}

}  // namespace flotilla::tracker
