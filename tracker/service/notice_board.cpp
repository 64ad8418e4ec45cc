#include "tracker/service/notice_board.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/canonical_json.h"
#include "core/fd.h"
#include "core/zstd_stream.h"
#include "tracker/storage/device_state.h"

namespace flotilla::tracker {
namespace {

// A signed timestamp is a few hundred bytes; anything much larger is not one.
constexpr size_t kMaxTimestampBytes = 64 << 10;

// signed.version of the timestamp document in `fd` (0: none readable).
uint64_t VersionIn(int fd, off_t size) {
  if (size <= 0 || static_cast<size_t>(size) > kMaxTimestampBytes) return 0;
  std::string text(static_cast<size_t>(size), '\0');
  if (!PreadExact(fd, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()), 0).ok()) {
    return 0;
  }
  auto json = ParseJsonStrict(text, {.max_bytes = kMaxTimestampBytes, .max_depth = 8});
  if (!json.ok() || !json->is_object()) return 0;
  const auto signed_part = json->find("signed");
  if (signed_part == json->end() || !signed_part->is_object()) return 0;
  const auto version = signed_part->find("version");
  if (version == signed_part->end() || !version->is_number_unsigned()) return 0;
  return version->get<uint64_t>();
}

}  // namespace

uint64_t VersionProbe::Read(const std::string& path, const std::function<uint64_t()>& read) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    seen_ = false;
    version_ = 0;
    return 0;
  }
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (seen_ && path == path_ && st.st_dev == dev_ && st.st_ino == ino_ && st.st_size == size_ &&
      mtime_ns == mtime_ns_) {
    return version_;
  }
  // Files are replaced by rename, never rewritten: what is read after this
  // stat is this file or a newer one, whose change the next stat sees.
  seen_ = true;
  path_ = path;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  version_ = read();
  return version_;
}

uint64_t TimestampFileVersion(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return VersionIn(fd.get(), st.st_size);
}

uint64_t FleetTimestampVersion(const RepositoryLayout& repo, const std::string& device_id,
                               VersionProbe& probe) {
  const std::string dir = repo.fleet_device_dir(device_id);
  const std::string state = dir + "/" + kDeviceStateFile;
  if (::access(state.c_str(), F_OK) == 0) {
    return probe.Read(state, [&dir]() -> uint64_t {
      auto header = ReadDeviceStateHeader(dir);
      return header.ok() && header->has_value() ? (*header)->timestamp : 0;
    });
  }
  const std::string legacy = dir + "/metadata/timestamp.json";
  return probe.Read(legacy, [&legacy] { return TimestampFileVersion(legacy); });
}

namespace {

Json NoticeBody(bool changed, const NoticeVersions& now, bool with_logs) {
  Json body{{"changed", changed}, {"image", now.image}, {"fleet", now.fleet}};
  if (with_logs) body["logs"] = now.logs;
  return body;
}

http::Reply NoticeBodyReply(std::string body) {
  http::Reply reply = http::Reply::Typed(http::status::ok, "application/json", std::move(body));
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

}  // namespace

http::Reply NoticeReply(bool changed, const NoticeVersions& now, bool with_logs) {
  return NoticeBodyReply(NoticeBody(changed, now, with_logs).dump() + "\n");
}

std::optional<Json> CarriedFleetFiles(const RepositoryLayout& repo, const std::string& device_id) {
  auto state = ReadDeviceState(repo.fleet_device_dir(device_id));
  if (!state.ok() || !state->has_value()) return std::nullopt;
  const DeviceState& current = **state;
  Json metadata = Json::object(), targets = Json::object();
  uint64_t bytes = 0;
  auto carry = [&](Json& into, const std::string& name) {
    const std::string* file = current.Find(name);
    if (file == nullptr) return false;
    bytes += name.size() + file->size();
    into[name] = *file;
    return true;
  };
  if (!carry(metadata, "timestamp.json") ||
      !carry(metadata, std::to_string(current.snapshot) + ".snapshot.json") ||
      !carry(metadata, std::to_string(current.targets) + ".targets.json") ||
      !carry(targets, current.document_sha256 + ".device.json") || bytes > kMaxCarriedFleetBytes) {
    return std::nullopt;
  }
  return Json{
      {"root", current.root}, {"metadata", std::move(metadata)}, {"targets", std::move(targets)}};
}

http::Reply NoticeAnswer(const RepositoryLayout& repo, const std::string& device_id, bool changed,
                         const NoticeVersions& seen, const NoticeVersions& now, NoticeAsk ask) {
  Json body = NoticeBody(changed, now, ask.logs);
  std::optional<Json> files;
  if (changed && ask.fleet_files && now.fleet != seen.fleet && now.fleet != 0) {
    files = CarriedFleetFiles(repo, device_id);
  }
  if (!files) return NoticeBodyReply(body.dump() + "\n");
  body["fleet_files"] = std::move(*files);
  const std::string text = body.dump() + "\n";
  if (!ask.zstd) return NoticeBodyReply(text);
  // Level 3: a fleet-wide change answers every held request in one tick on
  // the network thread; level 19 saves some 20 bytes of ~1 KB at many times the CPU.
  auto compressed = ZstdCompress(AsBytes(text), {.level = 3});
  if (!compressed.ok()) return NoticeBodyReply(text);
  http::Reply reply = NoticeBodyReply(std::string(AsStringView(*compressed)));
  // no-store: no cache keeps it, so none needs a Vary to tell codings apart.
  reply.headers.emplace_back("Content-Encoding", "zstd");
  return reply;
}

NoticeBoard::NoticeBoard(NoticeLimits limits, const Clock& clock, RepositoryLayout repo)
    : limits_(limits), clock_(clock), repo_(std::move(repo)) {}

uint64_t NoticeBoard::ImageVersion() {
  const std::string path = repo_.metadata_dir() + "/timestamp.json";
  return image_.Read(path, [&path] { return TimestampFileVersion(path); });
}

NoticeVersions NoticeBoard::Current(const std::string& device_id) {
  VersionProbe fleet;
  return {.image = ImageVersion(), .fleet = FleetTimestampVersion(repo_, device_id, fleet)};
}

bool NoticeBoard::HasRoomFor(const std::string& device_id) const {
  return held_.size() < limits_.max_held || held_.contains(device_id);
}

void NoticeBoard::Hold(const std::string& device_id, NoticeVersions seen, Duration wait,
                       Answer answer, NoticeAsk ask) {
  held_.erase(device_id);  // its answer dropped unanswered: that connection closes
  Held& held = held_[device_id];
  held.seen = seen;
  held.deadline = clock_.MonotonicNow() + wait;
  held.answer = std::move(answer);
  held.ask = ask;
}

void NoticeBoard::AnswerHeld(std::map<std::string, Held>::iterator it, bool changed,
                             const NoticeVersions& now) {
  Answer answer = std::move(it->second.answer);
  const std::string device_id = it->first;
  const NoticeVersions seen = it->second.seen;
  const NoticeAsk ask = it->second.ask;
  held_.erase(it);
  http::Reply reply = NoticeAnswer(repo_, device_id, changed, seen, now, ask);
  reply.authenticated_as = device_id;
  answer(std::move(reply));
}

void NoticeBoard::Tick() {
  if (held_.empty()) return;
  const uint64_t image = ImageVersion();
  const MonoTime now = clock_.MonotonicNow();
  std::map<std::string, uint64_t> logs;
  if (pending_logs_ && std::any_of(held_.begin(), held_.end(),
                                   [](const auto& entry) { return entry.second.ask.logs; })) {
    logs = pending_logs_();
  }
  for (auto it = held_.begin(); it != held_.end();) {
    auto next = std::next(it);
    Held& held = it->second;
    NoticeVersions current{.image = image,
                           .fleet = FleetTimestampVersion(repo_, it->first, held.fleet)};
    if (held.ask.logs) {
      const auto found = logs.find(it->first);
      current.logs = found == logs.end() ? 0 : found->second;
    }
    // A device's own upload clears its newest request: no wake for that.
    const bool new_logs = held.ask.logs && current.logs != 0 && current.logs != held.seen.logs;
    NoticeVersions seen = held.seen;
    seen.logs = current.logs;
    if (current != seen || new_logs) {
      AnswerHeld(it, true, current);
    } else if (now >= held.deadline) {
      AnswerHeld(it, false, current);
    }
    it = next;
  }
}

}  // namespace flotilla::tracker
