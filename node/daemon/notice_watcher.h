// The notice watcher: one held request at the tracker that answers as soon
// as a new release or a fleet change is published (docs/node.md, "Notice").
//
// It asks GET <tracker>/api/v1/devices/<id>/notice?image=I&fleet=F&wait=W
// with the device credential, I and F being the versions of the trusted
// image and fleet timestamps. The tracker answers at once when the versions
// it holds differ, else after up to W seconds "unchanged"
// ({"changed":false,...}). On "changed" the watcher tells the daemon which
// repository moved (the daemon refreshes it at once, as `update --now`
// does) and asks again once that refresh has run, with the new versions.
// A node that takes fleet files (NoticeEvents::fleet_files) asks with
// `files=1` and accepts a zstd-encoded answer: a fleet change may then come
// with the device's new fleet files (carried_fleet_files.h), handed on
// before `changed` so that the refresh it starts reads them instead of
// fetching them; an answer without them (an older tracker) refreshes over
// the network as before.
// Polling at refresh_interval_s goes on beside it, so nothing depends on the
// notice:
//  - an error backs off (5 s, doubling up to max_backoff_s);
//  - 404 (a tracker without the route) asks again only after max_backoff_s;
//  - an "unchanged" answered within a second (a tracker that does not
//    hold) asks again after refresh_interval_s;
//  - "changed" naming the same versions as the previous "changed" (a
//    refresh that could not catch up) asks again after refresh_interval_s.
//
// The request is blocking (the one HTTP client) and runs on a thread of the
// watcher's own, which keeps its connection open between requests. Stop()
// does not wait for a held request: the thread is left to end with it and
// its answer is dropped.
//
// Thread-safety: Start, Stop, SetCredentials and the events run on the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "http/http_client.h"
#include "node/daemon/carried_fleet_files.h"
#include "node/daemon/enrolment.h"

namespace flotilla::node {

struct NoticeVersions {
  uint64_t image = 0;  // the trusted image timestamp's version (0: none)
  uint64_t fleet = 0;  // the trusted fleet timestamp's version (0: none)
  bool operator==(const NoticeVersions&) const = default;
};

struct NoticeOptions {
  std::string tracker_url;
  http::ClientOptions http;
  uint32_t wait_s = 50;  // asked for; the tracker caps it (notice_max_wait_s)
  uint32_t refresh_interval_s = 300;
  uint32_t max_backoff_s = 1800;
};

struct NoticeEvents {
  // The versions the node trusts now, read before each request.
  std::function<NoticeVersions()> versions;
  // The tracker holds other versions: refresh the image repository and/or
  // the fleet repository now.
  std::function<void(bool image, bool fleet)> changed;
  // Optional: the node takes log requests (docs/logs.md). Each request then
  // names the newest log request seen (`logs=N`), and an answer naming a
  // newer one calls this with its id.
  std::function<void(uint64_t newest)> log_requests;
  // Optional: the node takes fleet files in the answer (`files=1`). An
  // answer carrying them calls this just before `changed`.
  std::function<void(CarriedFleetFiles carried)> fleet_files;
};

// For the node's view.
struct NoticeStatus {
  // "off" (no credentials yet), "holding", "waiting" (backing off or
  // after a change), "unsupported" (the tracker answered 404).
  std::string state = "off";
  uint64_t answers_changed = 0;
  uint64_t answers_unchanged = 0;
  uint64_t failures = 0;
  std::string last_error;
};

// The parsed answer: changed, and the tracker's versions.
struct NoticeAnswer {
  bool changed = false;
  NoticeVersions tracker;
  uint64_t logs = 0;  // the newest open log request (0: none, or not named)
  std::optional<CarriedFleetFiles> fleet_files;  // the fleet files it carries, if any
};
Result<NoticeAnswer> ParseNoticeAnswer(std::string_view body);

class NoticeWatcher {
 public:
  NoticeWatcher(NoticeOptions options, const Clock& clock, Executor& loop, NoticeEvents events);
  ~NoticeWatcher();
  NoticeWatcher(const NoticeWatcher&) = delete;
  NoticeWatcher& operator=(const NoticeWatcher&) = delete;

  // The first request waits for credentials.
  void SetCredentials(DeviceCredentials credentials);
  void Start();
  void Stop();
  const NoticeStatus& status() const { return status_; }

 private:
  struct Channel;
  void Ask();
  void Answered(const Result<http::Response>& answer, MonoTime asked_at, NoticeVersions asked);
  void AskAfter(Duration delay);

  NoticeOptions options_;
  const Clock& clock_;
  Executor& loop_;
  NoticeEvents events_;
  TimerSlot timer_;
  std::optional<DeviceCredentials> credentials_;
  std::shared_ptr<Channel> channel_;
  NoticeStatus status_;
  bool started_ = false;
  bool asking_ = false;  // a request is out
  uint32_t failures_in_row_ = 0;
  std::optional<NoticeVersions> last_changed_;  // the tracker's, at the last "changed"
  uint64_t logs_seen_ = 0;                      // the newest log request handed on
};

}  // namespace flotilla::node
