#include "node/daemon/log_uploader.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "core/sealed_box.h"
#include "node/daemon/log_upload.h"

namespace flotilla::node {
namespace {

// How much of the ring is read: all of it for any sane log_ring_bytes.
constexpr size_t kMaxRingRead = 16 << 20;
// Answered request ids remembered (requests expire on the tracker anyway).
constexpr size_t kMaxAnswered = 256;

}  // namespace

LogUploader::LogUploader(std::string tracker_url, http::ClientOptions http,
                         LogUploaderEvents events)
    : client_(std::move(tracker_url), std::move(http)), events_(std::move(events)) {}

void LogUploader::Requested(uint64_t newest) {
  if (!credentials_ || answered_.contains(static_cast<int64_t>(newest))) return;
  auto pending = client_.PendingLogRequests(*credentials_);
  if (!pending.ok()) {
    spdlog::info("logs: listing the open log requests: {}", pending.status().ToString());
    return;
  }
  for (const auto& request : *pending) {
    if (reading_.contains(request.id) || answered_.contains(request.id)) continue;
    reading_.insert(request.id);
    const int64_t since_unix_s = request.since_s > 0 ? ::time(nullptr) - request.since_s : 0;
    events_.read_log(request.app, since_unix_s,
                     [this, request](Result<std::string> log) { Answer(request, std::move(log)); });
  }
}

void LogUploader::Answer(const tracker::TrackerClient::LogRequestInfo& request,
                         Result<std::string> log) {
  reading_.erase(request.id);
  if (!credentials_) return;
  std::string text;
  if (log.ok()) {
    std::vector<std::string> secrets =
        events_.secrets ? events_.secrets() : std::vector<std::string>{};
    text = BoundLog(RedactSecrets(*log, secrets));
    for (std::string& value : secrets) WipeString(value);  // held no longer than needed
  } else {
    text = "[flotilla: " + log.status().message() + "]\n";
  }
  Status st = client_.UploadLog(*credentials_, request.id, text);
  if (!st.ok()) {
    spdlog::info("logs: uploading app {}'s log for request {}: {}", request.app, request.id,
                 st.ToString());
    return;
  }
  spdlog::info("logs: uploaded {} bytes of app {}'s log for request {}", text.size(), request.app,
               request.id);
  ++uploads_;
  if (answered_.size() >= kMaxAnswered) answered_.erase(answered_.begin());
  answered_.insert(request.id);
}

}  // namespace flotilla::node
