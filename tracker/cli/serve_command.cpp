// `flotilla-tracker serve` and `flotilla-tracker artifact add`.
#include <fmt/core.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "core/bytes.h"
#include "tracker/cli/commands.h"
#include "tracker/fleet/fleet_actions.h"
#include "tracker/fleet/fleet_view.h"
#include "tracker/fleet/rollout_duty.h"
#include "tracker/publish/publish_refresher.h"
#include "tracker/publish/torrent_maker.h"
#include "tracker/service/config.h"
#include "tracker/service/dashboard.h"
#include "tracker/service/signing_duty.h"
#include "tracker/service/tracker_server.h"

namespace flotilla::tracker {
namespace {

// Flag values; each one given on the command line overrides the file.
struct ServeFlags {
  std::string config_file;
  int rollout_interval_s = 30;
  TrackerConfig values;
  std::vector<std::pair<CLI::Option*, std::function<void(TrackerConfig&)>>> overrides;
};

template <typename T>
void AddOverride(CLI::App& cmd, ServeFlags& flags, const std::string& name, T TrackerConfig::*field,
                 const std::string& help) {
  CLI::Option* opt = cmd.add_option(name, flags.values.*field, help);
  flags.overrides.emplace_back(
      opt, [&flags, field](TrackerConfig& c) { c.*field = flags.values.*field; });
}

int RunServe(ServeFlags& flags) {
  TrackerConfig config;
  if (!flags.config_file.empty()) {
    auto loaded = LoadTrackerConfig(flags.config_file);
    if (!loaded.ok()) {
      fmt::print(stderr, "serve: {}\n", loaded.status().ToString());
      return 2;
    }
    config = std::move(*loaded);
  }
  for (auto& [opt, apply] : flags.overrides) {
    if (opt->count() > 0) apply(config);
  }
  if (Status st = ValidateTrackerConfig(config); !st.ok()) {
    fmt::print(stderr, "serve: {}\n", st.ToString());
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("tracker"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  // Re-signs timestamp metadata while serving, when the repository has its key.
  metadata::RepositoryOptions signing;
  signing.timestamp_expiry = std::chrono::seconds(config.timestamp_expiry_s);
  auto refresher = MakeRepositoryRefresher(config.repository, SystemClock::Instance(), signing);
  // Rollouts advance and halt as a duty of the replica holding the signing
  // lease; signing duties run only when the repository can sign.
  const std::string db_url =
      TrackerDatabaseUrl(config, RepositoryLayout{config.repository}.default_db_path());
  RolloutDuty rollouts(db_url, config.repository, std::chrono::seconds(flags.rollout_interval_s),
                       SystemClock::Instance());
  // Device fleet repositories are re-signed before they expire, by the
  // same replica, in bounded batches.
  FleetRefresher fleet_refresher(config.repository, SystemClock::Instance());
  HolderDuties holder_duties({&rollouts, &fleet_refresher});
  // The dashboard's rollouts and desired releases: the fleet model read on
  // a thread of its own while pages ask for it, never on the network thread.
  FleetViewRefresher fleet_view(db_url, SystemClock::Instance(), kDashboardRollouts,
                                kDashboardFailedPerRollout, config.repository);
  ThreadExecutor fleet_view_thread;
  RefreshSchedule fleet_view_schedule(fleet_view_thread, SystemClock::Instance(), fleet_view);
  fleet_view_schedule.Start();
  auto fleet_model = [&fleet_view](FleetSnapshot& snapshot, size_t max_rollouts,
                                   size_t max_failed) {
    return fleet_view.Fill(snapshot, max_rollouts, max_failed);
  };
  if (refresher == nullptr) {
    spdlog::warn(
        "no online timestamp key: this tracker runs no signing duties, so rollouts "
        "do not advance here (rollout status --evaluate does it by hand) and fleet "
        "metadata is not re-signed before it expires");
  }
  // The operator API's actions: the commands' code, on connections of the
  // network thread (opened with the first action).
  std::unique_ptr<OperatorActions> actions;
  auto operator_actions = [&actions, &db_url, &config](std::string_view action, const Json& body,
                                                       const std::string& actor,
                                                       int64_t rollout_id) -> Result<Json> {
    if (actions == nullptr) {
      ASSIGN_OR_RETURN(actions,
                       OperatorActions::Open(db_url, config.repository, SystemClock::Instance()));
    }
    return actions->Run(action, body, actor, rollout_id);
  };
  if (Status st =
          RunTrackerServer(config, refresher.get(), &holder_duties, fleet_model, operator_actions);
      !st.ok()) {
    spdlog::error("serve: {}", st.ToString());
    return 1;
  }
  return 0;
}

struct ArtifactFlags {
  std::string repository;
  std::string public_url;
  std::string file;
  int piece_kib = 256;
  bool json = false;  // the output is JSON either way
};

int RunArtifactAdd(const ArtifactFlags& flags) {
  TorrentOptions options{flags.public_url, flags.piece_kib << 10};
  auto made = AddArtifact(RepositoryLayout{flags.repository}, flags.file, options);
  if (!made.ok()) {
    fmt::print(stderr, "artifact add: {}\n", made.status().ToString());
    return 1;
  }
  fmt::print("{{\"sha256\":\"{}\",\"length\":{},\"info_hash_v2\":\"{}\"}}\n",
             made->sha256.ToString(), made->length, HexEncode(made->info_hash_v2));
  return 0;
}

}  // namespace

CommandAction RegisterServeCommands(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand(
      "serve",
      "Serve a repository: metadata, artifacts (web seed), torrents, the BitTorrent "
      "tracker, device enrolment and reports, the dashboard and /metrics.");
  serve->add_option("--config", flags->config_file, "JSON configuration file (docs/tracker.md)")
      ->check(CLI::ExistingFile);
  AddOverride(*serve, *flags, "--listen", &TrackerConfig::listen, "address:port (port 0: any)");
  AddOverride(*serve, *flags, "--repository", &TrackerConfig::repository, "Repository directory");
  AddOverride(*serve, *flags, "--database", &TrackerConfig::database, "SQLite file");
  AddOverride(*serve, *flags, "--database-url", &TrackerConfig::database_url,
              "sqlite:PATH or postgresql://... (libpq URI; a password is better in PGPASSFILE)");
  AddOverride(*serve, *flags, "--public-url", &TrackerConfig::public_url,
              "Base URL devices reach this server at");
  AddOverride(*serve, *flags, "--fleet-token-file", &TrackerConfig::fleet_token_file,
              "File holding the fleet enrolment token (mode 0600)");
  AddOverride(*serve, *flags, "--tls-cert", &TrackerConfig::tls_certificate, "PEM certificate");
  AddOverride(*serve, *flags, "--tls-key", &TrackerConfig::tls_private_key, "PEM private key");
  AddOverride(*serve, *flags, "--port-file", &TrackerConfig::port_file,
              "Write the bound port to this file");
  AddOverride(*serve, *flags, "--log-level", &TrackerConfig::log_level, "trace..error");
  AddOverride(*serve, *flags, "--read-timeout", &TrackerConfig::read_timeout_s,
              "Seconds allowed per request");
  AddOverride(*serve, *flags, "--announce-interval", &TrackerConfig::announce_interval_s,
              "Seconds between announces asked of peers");
  AddOverride(*serve, *flags, "--peer-ttl", &TrackerConfig::peer_ttl_s,
              "Seconds a peer stays listed after its last announce");
  AddOverride(*serve, *flags, "--signing-lease-ttl", &TrackerConfig::signing_lease_ttl_s,
              "Seconds the signing lease lasts unrenewed (1-30; replicas: docs/scale.md)");
  AddOverride(*serve, *flags, "--timestamp-expiry", &TrackerConfig::timestamp_expiry_s,
              "Seconds the timestamp versions serve signs are valid (60-604800; re-signed at "
              "half of it)");

  serve
      ->add_option("--rollout-interval", flags->rollout_interval_s,
                   "Seconds between evaluations of the rollouts (by the signing replica)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();

  auto artifact_flags = std::make_shared<ArtifactFlags>();
  auto* artifact = app.add_subcommand("artifact", "Manage artifacts in a repository");
  auto* add = artifact->add_subcommand(
      "add", "Copy FILE into the repository under its SHA-256 and write its v2-only torrent");
  add->add_option("--repository", artifact_flags->repository, "Repository directory")->required();
  add->add_option("--public-url", artifact_flags->public_url, "Tracker base URL")->required();
  add->add_option("--piece-kib", artifact_flags->piece_kib, "Piece size in KiB (power of two)");
  add->add_flag("--json", artifact_flags->json,
                "Accepted for uniformity: the output is one JSON document either way");
  add->add_option("file", artifact_flags->file, "Artifact file")
      ->required()
      ->check(CLI::ExistingFile);
  artifact->require_subcommand(1);

  return [serve, add, flags, artifact_flags] {
    if (*serve) return RunServe(*flags);
    if (*add) return RunArtifactAdd(*artifact_flags);
    return -1;
  };
}

}  // namespace flotilla::tracker
