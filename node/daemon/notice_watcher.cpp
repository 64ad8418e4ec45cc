#include "node/daemon/notice_watcher.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/canonical_json.h"
#include "node/daemon/backoff.h"

namespace flotilla::node {
namespace {

constexpr uint64_t kMaxAnswerBytes = 4 << 10;
// An answer carrying fleet files: their bytes (kMaxCarriedBytes) JSON-escaped, and the rest.
constexpr uint64_t kMaxAnswerWithFilesBytes = 2 * kMaxCarriedBytes + kMaxAnswerBytes;

}  // namespace

Result<NoticeAnswer> ParseNoticeAnswer(std::string_view body) {
  ASSIGN_OR_RETURN(Json json,
                   ParseJsonStrict(body, {.max_bytes = kMaxAnswerWithFilesBytes, .max_depth = 4}));
  if (!json.is_object()) return InvalidArgument("notice answer is not an object");
  const auto changed = json.find("changed");
  const auto image = json.find("image");
  const auto fleet = json.find("fleet");
  if (changed == json.end() || !changed->is_boolean() || image == json.end() ||
      !image->is_number_unsigned() || fleet == json.end() || !fleet->is_number_unsigned()) {
    return InvalidArgument("notice answer lacks changed, image or fleet");
  }
  const auto logs = json.find("logs");
  if (logs != json.end() && !logs->is_number_unsigned()) {
    return InvalidArgument("notice answer's logs is not a number");
  }
  NoticeAnswer answer{.changed = changed->get<bool>(),
                      .tracker = {.image = image->get<uint64_t>(), .fleet = fleet->get<uint64_t>()},
                      .logs = logs == json.end() ? 0 : logs->get<uint64_t>()};
  if (const auto files = json.find("fleet_files"); files != json.end()) {
    ASSIGN_OR_RETURN(answer.fleet_files, ParseCarriedFleetFiles(*files));
  }
  return answer;
}

// The request thread and what it shares with the loop. The thread keeps one
// HTTP client (its connection stays open between requests) and runs one
// call at a time; its answer is posted to the loop unless the watcher has
// stopped since.
struct NoticeWatcher::Channel {
  std::mutex mu;
  std::condition_variable wake;
  std::optional<http::Call> next;
  std::function<void(Result<http::Response>)> deliver;  // posts to the loop
  bool stopped = false;
  bool busy = false;
  std::thread thread;

  void Run(http::ClientOptions options) {
    http::Client client(std::move(options));
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait(lock, [this] { return stopped || next.has_value(); });
      if (stopped) return;
      http::Call call = std::move(*next);
      next.reset();
      busy = true;
      lock.unlock();
      Result<http::Response> answer = client.Fetch(call);
      lock.lock();
      busy = false;
      if (stopped) return;
      deliver(std::move(answer));
    }
  }
};

NoticeWatcher::NoticeWatcher(NoticeOptions options, const Clock& clock, Executor& loop,
                             NoticeEvents events)
    : options_(std::move(options)),
      clock_(clock),
      loop_(loop),
      events_(std::move(events)),
      timer_(loop),
      channel_(std::make_shared<Channel>()) {}

NoticeWatcher::~NoticeWatcher() { Stop(); }

void NoticeWatcher::SetCredentials(DeviceCredentials credentials) {
  credentials_ = std::move(credentials);
  if (started_ && !asking_ && !timer_.pending()) AskAfter(Duration::zero());
}

void NoticeWatcher::Start() {
  if (started_) return;
  started_ = true;
  channel_ = std::make_shared<Channel>();
  http::ClientOptions http = options_.http;
  // A held request receives nothing for up to its wait.
  http.read_timeout = std::chrono::seconds(options_.wait_s + 20);
  http.total_timeout = std::chrono::seconds(options_.wait_s + 60);
  channel_->thread = std::thread([channel = channel_, http] { channel->Run(http); });
  if (credentials_) AskAfter(Duration::zero());
}

void NoticeWatcher::Stop() {
  timer_.Cancel();
  if (!started_) return;
  started_ = false;
  bool busy = false;
  {
    std::lock_guard lock(channel_->mu);
    channel_->stopped = true;
    busy = channel_->busy;
  }
  channel_->wake.notify_all();
  if (!channel_->thread.joinable()) return;
  // A held request may last its whole wait: the thread ends after it, alone.
  if (busy) {
    channel_->thread.detach();
  } else {
    channel_->thread.join();
  }
}

void NoticeWatcher::AskAfter(Duration delay) {
  if (delay > Duration::zero()) status_.state = "waiting";
  timer_.Schedule(delay, [this] { Ask(); });
}

void NoticeWatcher::Ask() {
  if (!started_ || !credentials_ || asking_) return;
  const NoticeVersions ours = events_.versions();
  http::Call call{
      .url = http::JoinUrl(
          options_.tracker_url,
          "api/v1/devices/" + credentials_->device_id +
              "/notice?image=" + std::to_string(ours.image) +
              "&fleet=" + std::to_string(ours.fleet) + "&wait=" + std::to_string(options_.wait_s) +
              (events_.log_requests ? "&logs=" + std::to_string(logs_seen_) : std::string()) +
              (events_.fleet_files ? "&files=1" : "")),
      .max_body_bytes = events_.fleet_files ? kMaxAnswerWithFilesBytes : kMaxAnswerBytes};
  // Fleet files are mostly hex and JSON names: zstd halves them (docs/tracker.md).
  if (events_.fleet_files) call.accept_encoding = "zstd";
  call.headers.emplace_back("Authorization", "Bearer " + credentials_->credential);
  const MonoTime asked_at = clock_.MonotonicNow();
  {
    std::lock_guard lock(channel_->mu);
    std::weak_ptr<Channel> weak = channel_;
    channel_->deliver = [this, weak, &loop = loop_, asked_at, ours](Result<http::Response> answer) {
      // On the request thread, under the channel's lock: the watcher has not stopped.
      loop.Post([this, weak, answer = std::move(answer), asked_at, ours] {
        auto channel = weak.lock();
        if (!channel) return;
        {
          std::lock_guard lock(channel->mu);
          if (channel->stopped) return;
        }
        Answered(answer, asked_at, ours);
      });
    };
    channel_->next = std::move(call);
  }
  channel_->wake.notify_one();
  asking_ = true;
  status_.state = "holding";
}

void NoticeWatcher::Answered(const Result<http::Response>& answer, MonoTime asked_at,
                             NoticeVersions asked) {
  asking_ = false;
  using std::chrono::seconds;
  const Duration polling = seconds(options_.refresh_interval_s);
  auto parsed =
      answer.ok() ? ParseNoticeAnswer(answer->body) : Result<NoticeAnswer>(answer.status());
  if (!parsed.ok()) {
    ++status_.failures;
    const bool unsupported = parsed.status().code() == StatusCode::kNotFound;
    const std::string why = parsed.status().ToString();
    if (why != status_.last_error) {
      spdlog::info("notice: {}; polling every {} s goes on", why, options_.refresh_interval_s);
    }
    status_.last_error = why;
    failures_in_row_ = std::min<uint32_t>(failures_in_row_ + 1, 30);
    const Duration delay =
        unsupported ? Duration(seconds(options_.max_backoff_s))
                    : Backoff(seconds(5), failures_in_row_, seconds(options_.max_backoff_s));
    AskAfter(delay);
    if (unsupported) status_.state = "unsupported";
    return;
  }
  failures_in_row_ = 0;
  status_.last_error.clear();
  if (!parsed->changed) {
    ++status_.answers_unchanged;
    last_changed_.reset();
    // Answered at once: this tracker does not hold requests (notice_max_wait_s 0).
    const bool held = clock_.MonotonicNow() - asked_at >= seconds(1);
    AskAfter(held ? Duration::zero() : polling);
    return;
  }
  ++status_.answers_changed;
  if (events_.log_requests && parsed->logs != 0 && parsed->logs != logs_seen_) {
    logs_seen_ = parsed->logs;
    spdlog::info("notice: log request {} is open", parsed->logs);
    events_.log_requests(parsed->logs);
    if (parsed->tracker == asked) {  // only a log request is new
      AskAfter(Duration::zero());
      return;
    }
  }
  if (last_changed_ == parsed->tracker) {
    // The refresh that the same answer started did not reach those versions.
    AskAfter(polling);
    return;
  }
  last_changed_ = parsed->tracker;
  const bool image = parsed->tracker.image != asked.image;
  const bool fleet = parsed->tracker.fleet != asked.fleet;
  spdlog::info(
      "notice: the tracker holds image timestamp v{} and fleet timestamp v{} (ours v{} "
      "and v{}): refreshing now",
      parsed->tracker.image, parsed->tracker.fleet, asked.image, asked.fleet);
  if (fleet && parsed->fleet_files && events_.fleet_files) {
    events_.fleet_files(std::move(*parsed->fleet_files));
  }
  events_.changed(image, fleet);
  // Scheduled after the refreshes `changed` scheduled: asks with their versions.
  AskAfter(Duration::zero());
}

}  // namespace flotilla::node
