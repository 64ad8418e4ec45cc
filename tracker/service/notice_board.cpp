#include "tracker/service/notice_board.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/canonical_json.h"
#include "core/fd.h"

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

uint64_t TimestampProbe::Read(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    seen_ = false;
    version_ = 0;
    return 0;
  }
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (seen_ && st.st_dev == dev_ && st.st_ino == ino_ && st.st_size == size_ &&
      mtime_ns == mtime_ns_) {
    return version_;
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return 0;
  // The file opened is the one measured: metadata is replaced by rename, never rewritten.
  struct stat opened;
  if (::fstat(fd.get(), &opened) != 0 || !S_ISREG(opened.st_mode)) return 0;
  seen_ = true;
  dev_ = opened.st_dev;
  ino_ = opened.st_ino;
  size_ = opened.st_size;
  mtime_ns_ = int64_t{opened.st_mtim.tv_sec} * 1'000'000'000 + opened.st_mtim.tv_nsec;
  version_ = VersionIn(fd.get(), opened.st_size);
  return version_;
}

http::Reply NoticeReply(bool changed, const NoticeVersions& now) {
  const Json body{{"changed", changed}, {"image", now.image}, {"fleet", now.fleet}};
  http::Reply reply = http::Reply::Typed(http::status::ok, "application/json", body.dump() + "\n");
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

NoticeBoard::NoticeBoard(NoticeLimits limits, const Clock& clock, std::string image_timestamp_path,
                         FleetTimestampPath fleet_path)
    : limits_(limits),
      clock_(clock),
      image_path_(std::move(image_timestamp_path)),
      fleet_path_(std::move(fleet_path)) {}

NoticeVersions NoticeBoard::Current(const std::string& device_id) {
  TimestampProbe fleet;
  return {.image = image_.Read(image_path_), .fleet = fleet.Read(fleet_path_(device_id))};
}

bool NoticeBoard::HasRoomFor(const std::string& device_id) const {
  return held_.size() < limits_.max_held || held_.contains(device_id);
}

void NoticeBoard::Hold(const std::string& device_id, NoticeVersions seen, Duration wait,
                       Answer answer) {
  held_.erase(device_id);  // its answer dropped unanswered: that connection closes
  Held& held = held_[device_id];
  held.seen = seen;
  held.deadline = clock_.MonotonicNow() + wait;
  held.answer = std::move(answer);
}

void NoticeBoard::AnswerHeld(std::map<std::string, Held>::iterator it, bool changed,
                             const NoticeVersions& now) {
  Answer answer = std::move(it->second.answer);
  const std::string device_id = it->first;
  held_.erase(it);
  http::Reply reply = NoticeReply(changed, now);
  reply.authenticated_as = device_id;
  answer(std::move(reply));
}

void NoticeBoard::Tick() {
  if (held_.empty()) return;
  const uint64_t image = image_.Read(image_path_);
  const MonoTime now = clock_.MonotonicNow();
  for (auto it = held_.begin(); it != held_.end();) {
    auto next = std::next(it);
    Held& held = it->second;
    const NoticeVersions current{.image = image, .fleet = held.fleet.Read(fleet_path_(it->first))};
    if (current != held.seen) {
      AnswerHeld(it, true, current);
    } else if (now >= held.deadline) {
      AnswerHeld(it, false, current);
    }
    it = next;
  }
}

}  // namespace flotilla::tracker
