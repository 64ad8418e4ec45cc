// `flotilla-tracker webhook status` (docs/fleet.md, "Notifications"): the
// notification outbox and what each webhook has acknowledged.
#include <fmt/core.h>

#include <ctime>
#include <memory>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "tracker/cli/commands.h"
#include "tracker/cli/fleet_cli.h"
#include "tracker/storage/webhook_outbox.h"

namespace flotilla::tracker {
namespace {

struct WebhookFlags {
  DatabaseFlags database;
  bool json = false;
};

// The URL without user info, query or fragment, which may hold a token.
std::string ShownUrl(const std::string& url) {
  std::string shown = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = shown.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t path = shown.find('/', start);
  const size_t at = shown.rfind('@', path);
  if (at != std::string::npos && at >= start) shown.erase(start, at + 1 - start);
  return shown;
}

int RunStatus(const WebhookFlags& flags) {
  const char* cmd = "webhook status";
  auto url = FleetDatabaseUrl(flags.database);
  if (!url.ok()) return FailCommand(cmd, url.status());
  auto outbox = WebhookOutbox::Open(*url);
  if (!outbox.ok()) return FailCommand(cmd, outbox.status());
  auto events = (*outbox)->Events();
  if (!events.ok()) return FailCommand(cmd, events.status());
  auto backlog = (*outbox)->Backlog();
  if (!backlog.ok()) return FailCommand(cmd, backlog.status());
  if (flags.json) {
    Json hooks = Json::array();
    for (const WebhookBacklog& b : *backlog) {
      hooks.push_back(
          {{"url", ShownUrl(b.url)},
           {"pending", b.pending},
           {"delivered", b.delivered},
           {"abandoned", b.abandoned},
           {"oldest_pending_at",
            b.oldest_pending_at == 0 ? Json(nullptr) : Json(UtcText(b.oldest_pending_at))},
           {"last_error", b.last_error}});
    }
    Json newest = nullptr;
    if (!events->empty()) {
      newest = {{"id", events->back().event_id},
                {"event", events->back().event},
                {"at", UtcText(events->back().created_at)}};
    }
    fmt::print("{}\n",
               Json{{"events", events->size()}, {"newest", newest}, {"webhooks", hooks}}.dump());
    return 0;
  }
  if (events->empty()) {
    fmt::print("outbox: no events\n");
  } else {
    fmt::print("outbox: {} event(s), newest {} at {}\n", events->size(), events->back().event,
               UtcText(events->back().created_at));
  }
  if (backlog->empty()) fmt::print("no webhook has been sent anything yet\n");
  for (const WebhookBacklog& b : *backlog) {
    fmt::print("webhook {}: {} pending, {} delivered, {} given up\n", ShownUrl(b.url), b.pending,
               b.delivered, b.abandoned);
    if (b.pending > 0) {
      fmt::print("  oldest pending from {}; last error: {}\n", UtcText(b.oldest_pending_at),
                 b.last_error);
    }
  }
  return 0;
}

}  // namespace

CommandAction RegisterWebhookCommands(CLI::App& app) {
  auto f = std::make_shared<WebhookFlags>();
  auto* webhook = app.add_subcommand(
      "webhook", "Rollout notifications sent to webhooks (docs/fleet.md, \"Notifications\")");
  webhook->require_subcommand(1);
  auto* status = webhook->add_subcommand(
      "status",
      "Show the notification outbox and each webhook's pending, delivered and given-up "
      "events");
  status->footer(
      "\n`serve` (the replica holding the signing lease) sends each event to every webhook of\n"
      "its configuration, in order, retrying with backoff. Pending counts events tried at\n"
      "least once and not yet acknowledged; URLs are shown without query or user info.\n"
      "  flotilla-tracker webhook status --config /etc/flotilla/tracker.json --json\n"
      "Database: --repository DIR, --database-url URL or --config FILE.");
  status->add_option("--repository", f->database.repository,
                     "Tracker repository directory (its tracker.db)");
  status->add_option("--database-url", f->database.database_url,
                     "sqlite:PATH or postgresql://... (as serve's database_url)");
  status->add_option("--config", f->database.config_file, "serve's JSON configuration file")
      ->check(CLI::ExistingFile);
  status->add_flag("--json", f->json, "Print one JSON document instead of text");
  return [f, status] { return *status ? RunStatus(*f) : -1; };
}

}  // namespace flotilla::tracker
