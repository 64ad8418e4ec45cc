#include "tracker/service/webhook_sender.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include "core/bytes.h"

namespace flotilla::tracker {
namespace {

constexpr int64_t kPruneEvery = 3600;  // seconds

}  // namespace

Result<std::vector<WebhookTarget>> LoadWebhookTargets(const TrackerConfig& config) {
  std::vector<WebhookTarget> targets;
  for (size_t i = 0; i < config.webhooks.size(); ++i) {
    const WebhookConfig& hook = config.webhooks[i];
    WebhookTarget target;
    target.url = hook.url;
    auto secret = LoadWebhookSecret(hook.secret_file);
    if (!secret.ok()) return secret.status().WithContext("webhooks[" + std::to_string(i) + "]");
    target.secret = std::move(*secret);
    target.events = hook.events.empty() ? WebhookEventNames() : hook.events;
    targets.push_back(std::move(target));
  }
  return targets;
}

WebhookSenderOptions WebhookOptionsOf(const TrackerConfig& config) {
  WebhookSenderOptions options;
  options.timeout = std::chrono::seconds(config.webhook_timeout_s);
  options.retry_min_s = config.webhook_retry_min_s;
  options.retry_max_s = config.webhook_retry_max_s;
  options.max_age_s = config.webhook_max_age_s;
  options.poll = std::chrono::seconds(std::min<int64_t>(2, config.webhook_retry_min_s));
  return options;
}

int64_t WebhookRetryDelay(int64_t failures, int64_t retry_min_s, int64_t retry_max_s) {
  int64_t delay = retry_min_s;
  for (int64_t i = 1; i < failures && delay < retry_max_s; ++i) delay *= 2;
  return std::min(delay, retry_max_s);
}

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &length);
  return "sha256=" + HexEncode(ByteSpan(mac, length));
}

WebhookSender::WebhookSender(std::string database_url, std::vector<WebhookTarget> targets,
                             WebhookSenderOptions options, const Clock& clock,
                             std::function<bool()> may_send, TrackerMetrics* metrics)
    : database_url_(std::move(database_url)),
      targets_(std::move(targets)),
      options_(std::move(options)),
      clock_(clock),
      may_send_(std::move(may_send)),
      metrics_(metrics) {}

WebhookSender::~WebhookSender() = default;

int64_t WebhookSender::NowSeconds() const { return UnixSeconds(clock_); }

Result<Duration> WebhookSender::Refresh(WallTime /*now*/) {
  // Without webhooks there is only the outbox to prune, hourly.
  const Duration wait =
      targets_.empty() ? Duration(std::chrono::seconds(kPruneEvery)) : options_.poll;
  if (may_send_ && !may_send_()) return wait;
  if (Status st = DeliverDue(); !st.ok()) {
    spdlog::error("webhooks: {} (tried again in {} s)", st.ToString(),
                  std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    outbox_.reset();  // a lost connection is opened again next time
  }
  return wait;
}

Status WebhookSender::DeliverDue() {
  if (outbox_ == nullptr) {
    ASSIGN_OR_RETURN(outbox_, WebhookOutbox::Open(database_url_));
  }
  if (client_ == nullptr) {
    http::ClientOptions client;
    client.connect_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout);
    client.read_timeout = client.connect_timeout;
    client.total_timeout = client.connect_timeout;
    client.max_redirects = 0;  // a POST is not replayed elsewhere
    client.ca_file = options_.ca_file;
    client.user_agent = "flotilla-tracker";
    client_ = std::make_unique<http::Client>(client);
  }
  const int64_t now = NowSeconds();
  Status first_error;
  for (const WebhookTarget& target : targets_) {
    // One webhook's trouble (say a database error on its rows) does not
    // stop the others.
    if (Status st = DeliverTo(target, now); !st.ok() && first_error.ok()) first_error = st;
  }
  if (now - last_prune_ >= kPruneEvery) {
    // Every webhook delivered or gave up on an event within the maximum age.
    ASSIGN_OR_RETURN(int64_t pruned, outbox_->Prune(now - 2 * options_.max_age_s));
    if (pruned > 0) spdlog::info("webhooks: {} old event(s) pruned from the outbox", pruned);
    last_prune_ = now;
  }
  return first_error;
}

Status WebhookSender::DeliverTo(const WebhookTarget& target, int64_t now) {
  const std::string where = "webhook " + http::RedactUrl(target.url);
  const int64_t oldest = now - options_.max_age_s;
  ASSIGN_OR_RETURN(auto abandoned, outbox_->Abandon(target.url, target.events, oldest, now));
  for (const PendingDelivery& p : abandoned) {
    if (p.attempts == 0) {  // older than the webhook's place in the configuration
      spdlog::warn("{}: event {} ({}, {} s old) is past the maximum age: not sent", where,
                   p.event.event_id, p.event.event, now - p.event.created_at);
    } else {
      spdlog::error("{}: gave up on event {} ({}, {} s old) after {} attempt(s): {}", where,
                    p.event.event_id, p.event.event, now - p.event.created_at, p.attempts,
                    p.last_error);
    }
    if (metrics_ != nullptr) metrics_->CountWebhookSend("abandoned");
  }
  ASSIGN_OR_RETURN(auto pending,
                   outbox_->Pending(target.url, target.events, oldest, options_.batch));
  for (const PendingDelivery& p : pending) {
    if (p.next_attempt_at > now) break;  // in order: the oldest waits for its retry
    if (stopping_ || (may_send_ && !may_send_())) break;
    http::Call call;
    call.method = "POST";
    call.url = target.url;
    call.body = p.event.body;
    call.content_type = "application/json";
    call.max_body_bytes = 64 << 10;
    call.headers = {{"X-Flotilla-Event", p.event.event},
                    {"X-Flotilla-Event-Id", p.event.event_id},
                    {"X-Flotilla-Signature", WebhookSignature(target.secret, p.event.body)}};
    auto sent = client_->Fetch(call);
    const int64_t attempts = p.attempts + 1;
    if (sent.ok()) {
      RETURN_IF_ERROR(outbox_->RecordDelivered(p.event.seq, target.url, attempts, NowSeconds()));
      spdlog::info("{}: delivered event {} ({}){}", where, p.event.event_id, p.event.event,
                   attempts > 1 ? " at attempt " + std::to_string(attempts) : "");
      if (metrics_ != nullptr) metrics_->CountWebhookSend("delivered");
      continue;
    }
    const int64_t delay = WebhookRetryDelay(attempts, options_.retry_min_s, options_.retry_max_s);
    const std::string error = sent.status().ToString();
    RETURN_IF_ERROR(outbox_->RecordFailed(p.event.seq, target.url, attempts, NowSeconds() + delay,
                                          error, NowSeconds()));
    spdlog::warn("{}: event {} ({}) not delivered (attempt {}, next in {} s): {}", where,
                 p.event.event_id, p.event.event, attempts, delay, error);
    if (metrics_ != nullptr) metrics_->CountWebhookSend("failed");
    break;
  }
  return Status::Ok();
}

}  // namespace flotilla::tracker
