// The held notice requests of one replica (docs/tracker.md, "Notice").
//
// A device asks "tell me when the image repository's timestamp or my fleet
// repository's timestamp is no longer the version I hold". A request whose
// versions already differ is answered at once by the service; otherwise the
// board holds it, at most one per device (a second one from the same device
// closes the first) and at most `max_held` in all, until Tick() finds a
// change or its wait has passed.
//
// Tick() runs once a second on the server's thread: it reads the image
// timestamp's version once, and the fleet timestamp's version of each device
// holding a request (a stat of its state file, and a read of the file's
// header only when it changed). Both
// are files of the repository every replica and the CLI share, so a change
// made anywhere is seen within a tick. Nothing scans the fleet.
//
// Thread-safety: none; everything runs on the server's one network thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "http/http_reply.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {

// The timestamp versions a device holds, or the tracker holds for it
// (0: none, e.g. a device without a fleet repository).
struct NoticeVersions {
  uint64_t image = 0;
  uint64_t fleet = 0;
  // The newest open log request of the device (docs/logs.md; 0: none), for
  // a device that asked with `logs`; 0 on both sides for one that did not.
  uint64_t logs = 0;
  bool operator==(const NoticeVersions&) const = default;
};

// A version kept with the identity of the file it was read from (inode,
// size, modification time): read again only when that file changed. 0 when
// there is no such file or no version in it.
class VersionProbe {
 public:
  // `read` gives the version of `path` when it changed since the last call.
  uint64_t Read(const std::string& path, const std::function<uint64_t()>& read);

 private:
  std::string path_;
  bool seen_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t size_ = 0;
  int64_t mtime_ns_ = 0;
  uint64_t version_ = 0;
};

// signed.version of the timestamp document at `path` (0: none readable).
uint64_t TimestampFileVersion(const std::string& path);

// The version of the fleet timestamp a device is served (the fleet route's
// files, tracker/storage/device_state.h): its state file's header, or an
// older tracker's metadata/timestamp.json when it has no state file.
uint64_t FleetTimestampVersion(const RepositoryLayout& repo, const std::string& device_id,
                               VersionProbe& probe);

// What a notice request asks for besides the versions (docs/tracker.md, "Notice").
struct NoticeAsk {
  bool logs = false;         // `logs`: the answer names the newest open log request
  bool fleet_files = false;  // `files=1`: a fleet change carries the device's fleet files
  bool zstd = false;         // Accept-Encoding names zstd: an answer with files is compressed
};

// Bound of the fleet files one answer carries; a device whose files are
// larger fetches them.
inline constexpr uint64_t kMaxCarriedFleetBytes = 32 << 10;

// The fleet files of device `device_id` a notice answer carries:
// {"root":R,"metadata":{"timestamp.json":..,"N.snapshot.json":..,
// "N.targets.json":..},"targets":{"<sha256>.device.json":..}}, each the
// bytes the fleet route serves, from its state file, R the newest fleet root
// that route offers it. nullopt when it has no readable state file or the
// files pass kMaxCarriedFleetBytes.
std::optional<Json> CarriedFleetFiles(const RepositoryLayout& repo, const std::string& device_id);

struct NoticeLimits {
  Duration max_wait = std::chrono::seconds(50);
  size_t max_held = 20'000;
};

// The answer to a notice request: the versions the tracker holds and
// whether they differ from the device's. `Cache-Control: no-store`.
// `with_logs`: the answer names `logs` too (the device asked with it).
http::Reply NoticeReply(bool changed, const NoticeVersions& now, bool with_logs = false);
// The answer to a request that asked `ask` with the versions `seen`: as
// NoticeReply, and, when the device's fleet version moved and it asked for
// them, its fleet files (CarriedFleetFiles), zstd-encoded when it accepts
// that.
http::Reply NoticeAnswer(const RepositoryLayout& repo, const std::string& device_id, bool changed,
                         const NoticeVersions& seen, const NoticeVersions& now, NoticeAsk ask);

class NoticeBoard {
 public:
  using Answer = std::function<void(http::Reply)>;

  // Device ids given are enrolled ones (authenticated by the caller).
  NoticeBoard(NoticeLimits limits, const Clock& clock, RepositoryLayout repo);

  const NoticeLimits& limits() const { return limits_; }
  // The newest open log request of every device having one, read once per
  // Tick when a held request takes log requests.
  using PendingLogs = std::function<std::map<std::string, uint64_t>()>;
  void set_pending_logs(PendingLogs pending_logs) { pending_logs_ = std::move(pending_logs); }
  // The versions the tracker holds for `device_id` now (logs: 0).
  NoticeVersions Current(const std::string& device_id);
  // Whether one more request of `device_id` can be held (its own held one
  // is replaced, so it always can).
  bool HasRoomFor(const std::string& device_id) const;
  // Holds the request until the versions differ from `seen` or `wait`
  // passes; a held request of the same device is closed unanswered. The
  // answer names the device as authenticated_as (the server's per-device count).
  // `ask.logs`: the device takes log requests, so a new one wakes it.
  void Hold(const std::string& device_id, NoticeVersions seen, Duration wait, Answer answer,
            NoticeAsk ask = {});
  // Answers the held requests whose versions changed or whose wait passed.
  void Tick();
  size_t held() const { return held_.size(); }

 private:
  struct Held {
    NoticeVersions seen;
    MonoTime deadline;
    Answer answer;
    VersionProbe fleet;
    NoticeAsk ask;
  };
  void AnswerHeld(std::map<std::string, Held>::iterator it, bool changed,
                  const NoticeVersions& now);
  uint64_t ImageVersion();

  const NoticeLimits limits_;
  const Clock& clock_;
  const RepositoryLayout repo_;
  VersionProbe image_;
  std::map<std::string, Held> held_;
  PendingLogs pending_logs_;
};

}  // namespace flotilla::tracker
