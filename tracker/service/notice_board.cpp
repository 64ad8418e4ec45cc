#include "tracker/service/notice_board.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/canonical_json.h"
#include "core/fd.h"
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

http::Reply NoticeReply(bool changed, const NoticeVersions& now, bool with_logs) {
  Json body{{"changed", changed}, {"image", now.image}, {"fleet", now.fleet}};
  if (with_logs) body["logs"] = now.logs;
  http::Reply reply = http::Reply::Typed(http::status::ok, "application/json", body.dump() + "\n");
  reply.headers.emplace_back("Cache-Control", "no-store");
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
                       Answer answer, bool with_logs) {
  held_.erase(device_id);  // its answer dropped unanswered: that connection closes
  Held& held = held_[device_id];
  held.seen = seen;
  held.deadline = clock_.MonotonicNow() + wait;
  held.answer = std::move(answer);
  held.with_logs = with_logs;
}

void NoticeBoard::AnswerHeld(std::map<std::string, Held>::iterator it, bool changed,
                             const NoticeVersions& now, bool with_logs) {
  Answer answer = std::move(it->second.answer);
  const std::string device_id = it->first;
  held_.erase(it);
  http::Reply reply = NoticeReply(changed, now, with_logs);
  reply.authenticated_as = device_id;
  answer(std::move(reply));
}

void NoticeBoard::Tick() {
  if (held_.empty()) return;
  const uint64_t image = ImageVersion();
  const MonoTime now = clock_.MonotonicNow();
  std::map<std::string, uint64_t> logs;
  if (pending_logs_ && std::any_of(held_.begin(), held_.end(),
                                   [](const auto& entry) { return entry.second.with_logs; })) {
    logs = pending_logs_();
  }
  for (auto it = held_.begin(); it != held_.end();) {
    auto next = std::next(it);
    Held& held = it->second;
    NoticeVersions current{.image = image,
                           .fleet = FleetTimestampVersion(repo_, it->first, held.fleet)};
    if (held.with_logs) {
      const auto found = logs.find(it->first);
      current.logs = found == logs.end() ? 0 : found->second;
    }
    // A device's own upload clears its newest request: no wake for that.
    const bool new_logs = held.with_logs && current.logs != 0 && current.logs != held.seen.logs;
    NoticeVersions seen = held.seen;
    seen.logs = current.logs;
    if (current != seen || new_logs) {
      AnswerHeld(it, true, current, held.with_logs);
    } else if (now >= held.deadline) {
      AnswerHeld(it, false, current, held.with_logs);
    }
    it = next;
  }
}

}  // namespace flotilla::tracker
