// Delivery of the webhook outbox (tracker/storage/webhook_outbox.h,
// docs/fleet.md "Notifications"): each event is POSTed, as stored, to every
// webhook whose filter takes it, signed with the webhook's secret
// (X-Flotilla-Signature: sha256=<hex HMAC-SHA256 of the body>). Per webhook
// the events go in order, one at a time: a failed attempt (no answer within
// the timeout, or not 2xx) holds the later ones back until its retry, after
// a delay that doubles from webhook_retry_min_s up to webhook_retry_max_s.
// An event not delivered within webhook_max_age_s is given up and logged.
// At least once: a receiver drops a repeat by the event's id.
//
// The sender runs on a thread of its own, never inside the evaluation or the
// signing turn, so a slow or dead receiver delays nothing else; it sends only
// while `may_send` says this replica holds the signing lease. Secrets are
// never logged; URLs only as scheme://host:port.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/http_client.h"
#include "tracker/publish/metadata_refresher.h"
#include "tracker/service/config.h"
#include "tracker/service/metrics.h"
#include "tracker/storage/webhook_outbox.h"

namespace flotilla::tracker {

// A webhook as the sender uses it: the secret read, the filter resolved.
struct WebhookTarget {
  std::string url;
  std::string secret;
  std::vector<std::string> events;  // never empty
};

struct WebhookSenderOptions {
  Duration timeout = std::chrono::seconds(10);
  int64_t retry_min_s = 10;
  int64_t retry_max_s = 3600;
  int64_t max_age_s = 86400;
  Duration poll = std::chrono::seconds(2);  // between passes over the outbox
  size_t batch = 50;                        // events per webhook per pass at most
  std::string ca_file;                      // https: trust these CAs (tests)
};

// The targets and options of a validated configuration; reads each secret
// file (LoadWebhookSecret). Empty when no webhook is configured.
Result<std::vector<WebhookTarget>> LoadWebhookTargets(const TrackerConfig& config);
WebhookSenderOptions WebhookOptionsOf(const TrackerConfig& config);

// The delay (seconds) before the next attempt after `failures` failed ones
// (1, 2, ...): retry_min_s doubled each time, at most retry_max_s.
int64_t WebhookRetryDelay(int64_t failures, int64_t retry_min_s, int64_t retry_max_s);

// "sha256=" + hex HMAC-SHA256 of `body` under `secret`.
std::string WebhookSignature(std::string_view secret, std::string_view body);

class WebhookSender final : public MetadataRefresher {
 public:
  // `may_send` (may be empty: always) is asked before each pass; `metrics`
  // may be null. Clock and metrics must outlive the sender.
  WebhookSender(std::string database_url, std::vector<WebhookTarget> targets,
                WebhookSenderOptions options, const Clock& clock,
                std::function<bool()> may_send = {}, TrackerMetrics* metrics = nullptr);
  ~WebhookSender() override;

  // One pass when allowed (errors are logged); returns the poll interval.
  Result<Duration> Refresh(WallTime now) override;
  // One pass over every webhook: gives up what is too old, then sends what
  // is due, in order; prunes the outbox now and then. Before each POST it
  // asks `may_send` again and stops when it says no or Stop() was called.
  Status DeliverDue();
  // Any thread: no further POST starts (one under way ends within the
  // timeout), so that `serve` stops promptly.
  void Stop() { stopping_ = true; }

 private:
  Status DeliverTo(const WebhookTarget& target, int64_t now);
  int64_t NowSeconds() const;

  const std::string database_url_;
  const std::vector<WebhookTarget> targets_;
  const WebhookSenderOptions options_;
  const Clock& clock_;
  const std::function<bool()> may_send_;
  TrackerMetrics* const metrics_;
  std::unique_ptr<WebhookOutbox> outbox_;  // opened on the sender's thread
  std::unique_ptr<http::Client> client_;
  int64_t last_prune_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace flotilla::tracker
