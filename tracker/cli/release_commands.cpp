// `flotilla-tracker init`, `publish` and `releases` (docs/publish.md), and the
// offline-keys commands `sign`, `stage-app`, `stage-root`, `accept` (docs/signing.md).
#include <fmt/core.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/file_io.h"
#include "layerstore/layer_store.h"
#include "layerstore/types.h"
#include "metadata/release.h"
#include "metadata/release_floor.h"
#include "metadata/repository.h"
#include "metadata/tuf_names.h"
#include "metadata/tuf_time.h"
#include "tracker/cli/commands.h"
#include "tracker/publish/agent_release.h"
#include "tracker/publish/offline.h"
#include "tracker/publish/publish.h"
#include "tracker/publish/repo_init.h"
#include "tracker/registry/registry_client.h"
#include "tracker/service/config.h"

namespace flotilla::tracker {
namespace {

struct InitFlags {
  std::string dir;
  InitOptions options;
  bool json = false;
};

int RunInit(const InitFlags& flags) {
  if (Status st = InitRepository(flags.dir, flags.options, SystemClock::Instance()); !st.ok()) {
    fmt::print(stderr, "{}\n", st.ToString());
    return 1;
  }
  const RepositoryLayout repo{flags.dir};
  if (flags.json) {
    // Where each key went: the root key is made in keys/ (or offline) unless given.
    const std::string root_key = !flags.options.root_key_file.empty() ? flags.options.root_key_file
                                 : !flags.options.offline_keys_dir.empty()
                                     ? flags.options.offline_keys_dir + "/root.key"
                                     : RoleKeyPath(repo, metadata::RoleType::kRoot);
    fmt::print("{}\n", Json{{"repository", flags.dir},
                            {"online_keys", KeysDir(repo)},
                            {"offline_keys", flags.options.offline_keys_dir.empty()
                                                 ? Json(nullptr)
                                                 : Json(flags.options.offline_keys_dir)},
                            {"root_key", root_key},
                            {"configuration", ConfigPath(repo)},
                            {"public_url", flags.options.public_url}}
                           .dump());
    return 0;
  }
  fmt::print("initialised tracker repository {}\n", flags.dir);
  if (!flags.options.offline_keys_dir.empty()) {
    fmt::print("online keys (snapshot, timestamp): {}/\n", KeysDir(repo));
    fmt::print("offline keys: {}/: move them off this machine; add each app with stage-app\n",
               flags.options.offline_keys_dir);
    return 0;
  }
  fmt::print("online keys (targets, snapshot, timestamp): {}/\n", KeysDir(repo));
  if (flags.options.root_key_file.empty()) {
    fmt::print("root key: {}: move it offline; neither publish nor serve needs it\n",
               RoleKeyPath(repo, metadata::RoleType::kRoot));
  } else {
    fmt::print("root key: {} (not copied)\n", flags.options.root_key_file);
  }
  fmt::print("configuration: {} (public_url {})\n", ConfigPath(repo), flags.options.public_url);
  return 0;
}

struct PublishFlags {
  std::string config_file;
  PublishRequest request;
  registry::PullOptions pull;          // for an image in a registry (docs/registry.md)
  std::vector<std::string> platforms;  // one release per platform (docs/registry.md)
  std::string default_platform;        // published as --app itself; default: the first
  bool json = false;
};

// One publish per platform: the default platform's as --app, each other's as
// "<app>.<arch><variant>" (docs/registry.md, "Platforms").
Result<std::vector<PublishRequest>> PlatformRequests(const PublishFlags& flags) {
  if (flags.platforms.empty()) {
    if (!flags.default_platform.empty()) {
      return InvalidArgument("--default-platform goes with --platforms");
    }
    return std::vector<PublishRequest>{flags.request};
  }
  if (!flags.request.platform.empty()) {
    return InvalidArgument("give --platform (one release) or --platforms (one per platform)");
  }
  const std::string& default_platform =
      flags.default_platform.empty() ? flags.platforms.front() : flags.default_platform;
  if (std::find(flags.platforms.begin(), flags.platforms.end(), default_platform) ==
      flags.platforms.end()) {
    return InvalidArgument("--default-platform " + default_platform + " is not in --platforms");
  }
  std::vector<PublishRequest> requests;
  std::set<std::string> apps;
  for (const auto& text : flags.platforms) {
    ASSIGN_OR_RETURN(layerstore::Platform platform, layerstore::Platform::Parse(text));
    PublishRequest request = flags.request;
    request.platform = platform.ToString();
    if (text != default_platform) {
      request.spec_app = flags.request.app;
      request.app = flags.request.app + "." + platform.architecture + platform.variant;
    }
    if (!apps.insert(request.app).second) {
      return InvalidArgument("--platforms names " + request.app + "'s platform twice");
    }
    requests.push_back(std::move(request));
  }
  return requests;
}

Json OutcomeJson(const PublishOutcome& outcome) {
  auto path_or_null = [](const std::string& path) {
    return path.empty() ? Json(nullptr) : Json(path);
  };
  return Json{{"app", outcome.release.app},
              {"release", outcome.release.version},
              {"target", outcome.target_name},
              {"pending", path_or_null(outcome.pending_path)},
              {"pending_top_level", path_or_null(outcome.pending_top_level_path)},
              {"artifacts_made", outcome.artifacts_made},
              {"artifacts_reused", outcome.artifacts_reused},
              {"deltas_made", outcome.deltas_made},
              {"deltas_skipped", outcome.deltas_skipped},
              {"image_manifest", outcome.release.image.manifest.ToString()},
              {"platform", outcome.release.image.platform},
              {"source", outcome.release.source
                             ? Json{{"reference", outcome.release.source->reference},
                                    {"digest", outcome.release.source->digest.ToString()}}
                             : Json(nullptr)}};
}

void PrintOutcome(const PublishOutcome& outcome, const std::string& repository) {
  if (!outcome.pending_path.empty()) {
    fmt::print("staged {} release {}: {}\nsign it where the {} key lives, then accept it:\n",
               outcome.release.app, outcome.release.version, outcome.pending_path,
               outcome.release.app);
    fmt::print("  flotilla-tracker sign {} --key {}.key\n", outcome.pending_path,
               outcome.release.app);
    fmt::print("  flotilla-tracker accept --repository {} {}\n", repository, outcome.pending_path);
    if (!outcome.pending_top_level_path.empty()) {
      fmt::print(
          "and, for devices still running flotilla 0.1.0, the top-level targets that lists it "
          "too,\nwhere the targets key lives:\n  flotilla-tracker sign {} --key targets.key\n"
          "  flotilla-tracker accept --repository {} {}\n",
          outcome.pending_top_level_path, repository, outcome.pending_top_level_path);
    }
    return;
  }
  fmt::print("published {} release {} ({}): {} artifacts made, {} reused, {} deltas ({} skipped)\n",
             outcome.release.app, outcome.release.version, outcome.target_name,
             outcome.artifacts_made, outcome.artifacts_reused, outcome.deltas_made,
             outcome.deltas_skipped);
}

// For a docker:// image: fetch it from the registry inside the publish;
// `pinned`: the digest the reference resolved to (every platform of one
// --platforms publish comes from the same index).
Status SetUpRegistryFetch(PublishRequest& request, registry::PullOptions pull,
                          const std::optional<Digest>& pinned = std::nullopt) {
  const bool registry_flags = !pull.auth_file.empty() || pull.insecure || !pull.ca_file.empty() ||
                              pull.max_blob_bytes != registry::kDefaultMaxBlobBytes;
  if (!registry::IsRegistryReference(request.image_path)) {
    if (registry_flags) {
      return InvalidArgument(
          "--registry-auth, --insecure-registry, --registry-ca and --registry-max-blob apply to "
          "a docker:// image only");
    }
    return Status::Ok();
  }
  if (pull.insecure && !pull.ca_file.empty()) {
    return InvalidArgument(
        "--registry-ca (https checked against a CA) and --insecure-registry (plain http) "
        "contradict each other: give one");
  }
  if (!pull.ca_file.empty()) RETURN_IF_ERROR(registry::CheckCaFile(pull.ca_file));
  if (!request.select.empty()) {
    return InvalidArgument(
        "--select picks an image of an archive; a docker:// reference names one");
  }
  ASSIGN_OR_RETURN(registry::RegistryReference ref,
                   registry::ParseRegistryReference(request.image_path));
  if (pinned) ref.digest = *pinned;
  pull.platform = request.platform;
  request.fetch_image = [ref, pull](const std::string& layout_dir,
                                    const PublishProgressFn& progress) -> Result<FetchedImage> {
    ASSIGN_OR_RETURN(registry::PulledImage pulled,
                     registry::PullToLayout(ref, pull, layout_dir, progress));
    progress(fmt::format("fetched {} ({}, {} blob bytes)", ref.text, pulled.platform,
                         pulled.blob_bytes));
    return FetchedImage{pulled.platform, metadata::ReleaseSource{ref.text, pulled.source_digest}};
  };
  return Status::Ok();
}

// --platforms is all or nothing: every platform is checked against the
// image's index before the first is published (docs/registry.md,
// "Platforms"), and a registry reference is pinned to the digest it
// resolved to, so each platform comes from the same index.
Status CheckPlatformsOffered(const PublishFlags& flags, std::vector<PublishRequest>& requests) {
  if (flags.platforms.empty()) return Status::Ok();
  const std::string& image = flags.request.image_path;
  if (registry::IsRegistryReference(image)) {
    ASSIGN_OR_RETURN(registry::RegistryReference ref, registry::ParseRegistryReference(image));
    ASSIGN_OR_RETURN(Digest pinned, registry::ResolvePlatforms(ref, flags.pull, flags.platforms));
    for (auto& request : requests) {
      RETURN_IF_ERROR(SetUpRegistryFetch(request, flags.pull, pinned));
    }
    return Status::Ok();
  }
  std::vector<std::string> missing;
  std::string offered;
  for (const auto& request : requests) {
    layerstore::ImportOptions options;
    ASSIGN_OR_RETURN(options.platform, layerstore::Platform::Parse(request.platform));
    options.select = request.select;
    Status st = layerstore::CheckImageChoice(image, options);
    if (st.code() != StatusCode::kNotFound) {
      RETURN_IF_ERROR(st);
      continue;
    }
    missing.push_back(request.platform);
    const std::string& message = st.message();
    if (size_t at = message.find("; the index offers"); at != std::string::npos) {
      offered = message.substr(at);
    }
  }
  if (!missing.empty()) {
    return NotFound(fmt::format("{}: no image for {}{}", image, fmt::join(missing, ", "), offered));
  }
  return Status::Ok();
}

// The repository and public URL: flags first, then the configuration file
// (--config, else <repository>/tracker.json when it exists).
Status ResolvePublishConfig(PublishFlags& flags) {
  std::string path = flags.config_file;
  if (path.empty() && !flags.request.repository.empty()) {
    path = ConfigPath(RepositoryLayout{flags.request.repository});
    if (ReadFileBounded(path, 1 << 20).status().code() == StatusCode::kNotFound) path.clear();
  }
  if (!path.empty()) {
    ASSIGN_OR_RETURN(TrackerConfig config, LoadTrackerConfig(path));
    if (flags.request.repository.empty()) flags.request.repository = config.repository;
    if (flags.request.public_url.empty()) flags.request.public_url = config.public_url;
  }
  if (flags.request.repository.empty()) {
    return InvalidArgument("no repository: give --repository or --config");
  }
  if (flags.request.public_url.empty()) {
    return InvalidArgument(
        "no public URL: give --public-url or set public_url in the configuration");
  }
  while (flags.request.public_url.ends_with('/')) flags.request.public_url.pop_back();
  return Status::Ok();
}

int RunPublish(PublishFlags& flags) {
  Status st = ResolvePublishConfig(flags);
  auto requests = st.ok() ? PlatformRequests(flags) : Result<std::vector<PublishRequest>>(st);
  if (requests.ok()) {
    for (auto& request : *requests) {
      if (st.ok()) st = SetUpRegistryFetch(request, flags.pull);
    }
    if (st.ok()) st = CheckPlatformsOffered(flags, *requests);
  }
  if (!st.ok() || !requests.ok()) {
    fmt::print(stderr, "publish: {}\n", (st.ok() ? requests.status() : st).ToString());
    return 2;
  }
  // With --json, stdout holds the one document and progress goes to stderr.
  FILE* progress_out = flags.json ? stderr : stdout;
  auto progress = [progress_out](const std::string& line) {
    fmt::print(progress_out, "{}\n", line);
    std::fflush(progress_out);
  };
  Json published = Json::array();
  for (const auto& request : *requests) {
    auto outcome = PublishImage(request, SystemClock::Instance(), progress);
    if (!outcome.ok()) {
      fmt::print(stderr, "{}\n", outcome.status().ToString());
      if (!published.empty()) {
        fmt::print(stderr, "published before the error: {}\n", published.dump());
      }
      return 1;
    }
    if (!flags.json) PrintOutcome(*outcome, request.repository);
    published.push_back(OutcomeJson(*outcome));
  }
  if (flags.json) {
    fmt::print("{}\n", flags.platforms.empty() ? published[0].dump()
                                               : Json{{"releases", published}}.dump());
  }
  return 0;
}

// `agent publish`: flotilla-node's binaries for one architecture as the
// next release of flotilla-agent-<arch> (docs/agent-update.md, "Publishing
// an agent release"), through publish with the image written in staging/.
struct AgentPublishFlags {
  PublishFlags publish;
  std::string arch;
  std::vector<std::string> inputs;
};

int RunAgentPublish(AgentPublishFlags& flags) {
  auto refuse = [](const Status& st) {
    fmt::print(stderr, "agent publish: {}\n", st.ToString());
    return 2;
  };
  PublishRequest& request = flags.publish.request;
  if (Status st = ResolvePublishConfig(flags.publish); !st.ok()) return refuse(st);
  auto arch = ParseAgentArch(flags.arch);
  if (!arch.ok()) return refuse(arch.status());
  auto binaries = FindAgentBinaries(flags.inputs);
  if (!binaries.ok()) return refuse(binaries.status());
  // Every binary checked before anything is written.
  for (const auto& [name, path] : *binaries) {
    if (Status st = CheckAgentBinary(path, *arch); !st.ok()) return refuse(st);
  }
  request.app = arch->app();
  request.platform = arch->platform;
  // The spec is never run (a node installs the release as its agent): one
  // is made unless given, in a directory of its own (publish empties staging/).
  std::string made_spec;
  struct RemoveMade {
    std::string dir;
    ~RemoveMade() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } remove_made;
  if (request.spec_path.empty()) {
    std::string dir = (std::filesystem::temp_directory_path() / "agent-spec.XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) return refuse(IOErrorFromErrno("mkdtemp", errno));
    remove_made.dir = dir;
    made_spec = dir + "/" + request.app + ".json";
    if (Status st = WriteFileAtomic(made_spec, AgentSpecJson(*arch)); !st.ok()) return refuse(st);
    request.spec_path = made_spec;
  }
  request.image_path = "flotilla-node binaries for " + arch->name;
  request.fetch_image = [files = *binaries, agent = *arch](
                            const std::string& layout_dir,
                            const PublishProgressFn& progress) -> Result<FetchedImage> {
    RETURN_IF_ERROR(WriteAgentImage(files, agent, layout_dir));
    progress("agent image for " + agent.platform + ": " + files.at("flotilla-node") + ", " +
             files.at("flotilla-node-full") + ", " + files.at("flotilla-monitor"));
    return FetchedImage{agent.platform, std::nullopt};
  };
  FILE* progress_out = flags.publish.json ? stderr : stdout;
  auto outcome =
      PublishImage(request, SystemClock::Instance(), [progress_out](const std::string& line) {
        fmt::print(progress_out, "{}\n", line);
        std::fflush(progress_out);
      });
  if (!outcome.ok()) {
    fmt::print(stderr, "agent publish: {}\n", outcome.status().ToString());
    return 1;
  }
  if (flags.publish.json) {
    fmt::print("{}\n", OutcomeJson(*outcome).dump());
  } else {
    PrintOutcome(*outcome, request.repository);
  }
  return 0;
}

CLI::App* AddAgentCommand(CLI::App& app, AgentPublishFlags& flags) {
  auto* agent = app.add_subcommand("agent", "Publish flotilla-node itself (docs/agent-update.md)");
  agent->require_subcommand(1);
  auto* publish = agent->add_subcommand(
      "publish",
      "Publish flotilla-node's three binaries for --arch as the next release of "
      "flotilla-agent-<arch>: each checked to be a stripped ELF executable of that architecture, "
      "one layer, then staged for the agent's offline key (or signed online) as `publish` does");
  publish->footer(
      "Example (the agent key's role added once with `stage-app --app flotilla-agent-arm64 "
      "--key-pub agent.pub`):\n"
      "  flotilla-tracker agent publish --repository /srv/flotilla --arch arm64 build-arm64/bin\n"
      "  flotilla-tracker sign <V>.apps%2Fflotilla-agent-arm64.json --key agent.key\n"
      "  flotilla-tracker accept --repository /srv/flotilla <V>.apps%2Fflotilla-agent-arm64.json\n"
      "Binaries with debug sections are refused: strip them (strip --strip-debug) and keep the "
      "debug files.");
  publish->add_option("--config", flags.publish.config_file, "Tracker configuration file")
      ->check(CLI::ExistingFile);
  publish->add_option("--repository", flags.publish.request.repository,
                      "Repository directory (default: from the configuration)");
  publish->add_option("--public-url", flags.publish.request.public_url,
                      "Base URL for announce and web seed URLs (default: from the configuration)");
  publish->add_option("--arch", flags.arch, "amd64, arm64 or armhf")->required();
  publish
      ->add_option("--spec", flags.publish.request.spec_path,
                   "App spec to carry (default: one naming the app; it is never run)")
      ->check(CLI::ExistingFile);
  publish
      ->add_option("--zstd-level", flags.publish.request.zstd_level,
                   "zstd level of artifacts (1-19)")
      ->check(CLI::Range(1, 19));
  publish->add_flag("--json", flags.publish.json,
                    "Print one JSON document instead of text (progress lines go to stderr)");
  publish
      ->add_option("binaries", flags.inputs,
                   "flotilla-node, flotilla-node-full and flotilla-monitor, or the directory "
                   "holding them (e.g. a .deb's usr/bin/ after dpkg-deb -x)")
      ->required()
      ->expected(1, 3);
  return publish;
}

struct ReleasesFlags {
  std::string repository;
  bool json = false;
};

int RunReleases(const ReleasesFlags& flags) {
  auto releases = ListPublishedReleases(RepositoryLayout{flags.repository});
  if (!releases.ok()) {
    fmt::print(stderr, "releases: {}\n", releases.status().ToString());
    return 1;
  }
  if (flags.json) {
    Json list = Json::array();
    for (const auto& [app, versions] : *releases) {
      for (const auto& release : versions) {
        uint64_t bytes = 0;
        for (const auto& artifact : release.artifacts) bytes += artifact.length;
        list.push_back({{"app", app},
                        {"release", release.version},
                        {"layers", release.image.layers.size()},
                        {"artifacts", release.artifacts.size()},
                        {"bytes", bytes},
                        {"image_config", release.image.config.ToString()}});
      }
    }
    fmt::print("{}\n", Json{{"releases", list}}.dump());
    return 0;
  }
  if (releases->empty()) fmt::print("no releases published\n");
  fmt::print("{:<24} {:>7} {:>6} {:>9} {:>12}  {}\n", "APP", "RELEASE", "LAYERS", "ARTIFACTS",
             "BYTES", "IMAGE CONFIG");
  for (const auto& [app, list] : *releases) {
    for (const auto& release : list) {
      uint64_t bytes = 0;
      for (const auto& artifact : release.artifacts) bytes += artifact.length;
      fmt::print("{:<24} {:>7} {:>6} {:>9} {:>12}  {}\n", app, release.version,
                 release.image.layers.size(), release.artifacts.size(), bytes,
                 release.image.config.ToString());
    }
  }
  return 0;
}

}  // namespace

namespace {

CLI::App* AddInitCommand(CLI::App& app, InitFlags& flags) {
  auto* init = app.add_subcommand(
      "init", "Create a tracker repository: signing keys, root metadata, SQLite state, layout");
  init->add_option("dir", flags.dir, "Repository directory to create (new or empty)")->required();
  init->add_option("--root-key", flags.options.root_key_file,
                   "Existing root key file (from keygen, e.g. offline); default: make one in "
                   "DIR/keys/root.key")
      ->check(CLI::ExistingFile);
  init->add_option("--offline-keys", flags.options.offline_keys_dir,
                   "Write the targets key (and the root key) to this directory, not DIR/keys: "
                   "releases are then signed by per-app keys (docs/signing.md)");
  init->add_option("--public-url", flags.options.public_url,
                   "Base URL devices reach serve at (written to DIR/tracker.json)");
  init->add_option("--listen", flags.options.listen, "serve's listen address:port");
  init->add_option("--database-url", flags.options.database_url,
                   "The tracker database, e.g. postgresql://tracker@db/flotilla (migrated now, "
                   "named in tracker.json, which is then 0600); default: <dir>/tracker.db");
  init->add_flag("--json", flags.json, "Print one JSON document instead of text");
  return init;
}

CLI::App* AddPublishCommand(CLI::App& app, PublishFlags& flags) {
  PublishRequest& request = flags.request;
  auto* publish = app.add_subcommand(
      "publish",
      "Import IMAGE, make artifacts and torrents, sign the next release of --app (or stage it "
      "for its offline app key: docs/signing.md)");
  publish->add_option("--config", flags.config_file, "Tracker configuration file")
      ->check(CLI::ExistingFile);
  publish->add_option("--repository", request.repository,
                      "Repository directory (default: from the configuration)");
  publish->add_option("--public-url", request.public_url,
                      "Base URL for announce and web seed URLs (default: from the configuration)");
  publish->add_option("--app", request.app, "App name")->required();
  publish->add_option("--spec", request.spec_path, "App spec (docs/app-spec.md)")
      ->required()
      ->check(CLI::ExistingFile);
  publish->add_option("--platform", request.platform,
                      "os/arch[/variant] to take from an index (default: this machine's)");
  publish
      ->add_option("--platforms", flags.platforms,
                   "One release per platform (os/arch[/variant],...) from an index: the default "
                   "one as --app, each other as app <app>.<arch><variant>, e.g. kiosk.amd64 "
                   "(docs/registry.md)")
      ->delimiter(',');
  publish->add_option("--default-platform", flags.default_platform,
                      "With --platforms: the platform published as --app itself (default: the "
                      "first; the one devices running 0.1.0 run)");
  publish->add_option("--registry-auth", flags.pull.auth_file,
                      "For a docker:// image: credentials file (the auth.json skopeo, podman and "
                      "docker login write), mode 0600 (docs/registry.md)");
  publish->add_flag("--insecure-registry", flags.pull.insecure,
                    "For a docker:// image: plain http to a registry that is not on loopback "
                    "(credentials then cross the network in clear)");
  publish->add_option("--registry-ca", flags.pull.ca_file,
                      "For a docker:// image: PEM bundle of the CAs the registry's (and its "
                      "token server's) https certificate must chain to, instead of the system's; "
                      "https even to a loopback registry (docs/registry.md)");
  publish
      ->add_option("--registry-max-blob", flags.pull.max_blob_bytes,
                   "For a docker:// image: the largest layer blob fetched, in bytes")
      ->capture_default_str();
  publish->add_option("--select", request.select, "Which image of an archive holding several");
  publish->add_option("--zstd-level", request.zstd_level, "zstd level of artifacts (1-19)")
      ->check(CLI::Range(1, 19));
  publish
      ->add_option("--delta-releases", request.delta_releases,
                   "Make delta artifacts from the app's last N releases (0: none)")
      ->check(CLI::Range(0, 32))
      ->capture_default_str();
  publish->add_option("--delta-threads", request.delta_threads, "Threads per delta encoding")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  publish
      ->add_option("--offline-valid-days", request.offline_valid_days,
                   "Give the release an offline validity window of N days from now: devices "
                   "that cannot reach the tracker may use it until then after its timestamp "
                   "expired (at most the root's cap, stage-root --offline-window-max-days; "
                   "docs/signing.md)")
      ->check(CLI::Range(1, 3650));
  publish->add_flag("--also-top-level", request.also_top_level,
                    "For an app signed offline: also stage the release into the top-level "
                    "targets (signed by the offline targets key), which is all that devices "
                    "still running flotilla 0.1.0 read");
  publish
      ->add_option(
          "image", request.image_path,
          "docker save tarball, OCI layout directory, oci-archive, or an image in a "
          "registry: docker://HOST[:PORT]/REPO[:TAG] or docker://HOST[:PORT]/REPO@sha256:HEX")
      ->required();
  publish->add_flag("--json", flags.json,
                    "Print one JSON document instead of text (progress lines go to stderr)");
  return publish;
}

}  // namespace

CommandAction RegisterReleaseCommands(CLI::App& app) {
  auto init_flags = std::make_shared<InitFlags>();
  auto* init = AddInitCommand(app, *init_flags);
  auto publish_flags = std::make_shared<PublishFlags>();
  auto* publish = AddPublishCommand(app, *publish_flags);
  auto agent_flags = std::make_shared<AgentPublishFlags>();
  auto* agent_publish = AddAgentCommand(app, *agent_flags);
  auto releases_flags = std::make_shared<ReleasesFlags>();
  auto* releases = app.add_subcommand("releases", "List the published apps and releases");
  releases->add_option("--repository", releases_flags->repository, "Repository directory")
      ->required();
  releases->add_flag("--json", releases_flags->json, "Print one JSON document instead of a table");

  return [=] {
    if (*init) return RunInit(*init_flags);
    if (*publish) return RunPublish(*publish_flags);
    if (*agent_publish) return RunAgentPublish(*agent_flags);
    if (*releases) return RunReleases(*releases_flags);
    return -1;
  };
}

// `sign`, `stage-app`, `stage-root` and `accept`: offline keys (docs/signing.md).
namespace {

struct SignFlags {
  std::string input;
  std::string key_file;
  std::string output;
  bool json = false;
};

// What the signer is about to vouch for: type, version, expiry, and for
// targets each target and delegation, for root each role's keys.
Status PrintSummary(const std::string& path, FILE* out) {
  ASSIGN_OR_RETURN(std::string bytes, ReadTextFileBounded(path, 64 << 20));
  ASSIGN_OR_RETURN(auto doc, metadata::ParseSignedDocument(bytes, 64 << 20));
  if (metadata::CheckRoleType(doc.signed_json, metadata::RoleType::kRoot).ok()) {
    ASSIGN_OR_RETURN(auto root, metadata::ParseRoot(doc.signed_json).WithContext(path));
    fmt::print(out, "{}: root version {}, expires {}, {} signature(s) so far\n", path,
               root.common.version, metadata::FormatTufTime(root.common.expires),
               doc.signatures.size());
    for (const auto& [role, keys] : root.roles) {
      fmt::print(out, "  {}: {} key(s), threshold {}\n", metadata::RoleName(role),
                 keys.keyids.size(), keys.threshold);
    }
    if (root.offline_window_max_days) {
      fmt::print(out, "  offline validity windows of releases: at most {} days\n",
                 *root.offline_window_max_days);
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto targets, metadata::ParseTargets(doc.signed_json).WithContext(path));
  fmt::print(out, "{}: targets version {}, expires {}, {} signature(s) so far\n", path,
             targets.common.version, metadata::FormatTufTime(targets.common.expires),
             doc.signatures.size());
  for (const auto& [name, target] : targets.targets) {
    auto floor = metadata::IsFloorTargetName(name) ? metadata::ParseFloor(target.custom)
                                                   : Result<metadata::ReleaseFloor>(NotFound(""));
    auto release = floor.ok() ? Result<metadata::Release>(NotFound(""))
                              : metadata::ParseRelease(target.custom);
    std::string window;
    if (release.ok() && release->offline_window) {
      window = fmt::format(", usable offline from {} until {}",
                           metadata::FormatTufTime(release->offline_window->start),
                           metadata::FormatTufTime(release->offline_window->end));
    }
    fmt::print(
        out, "  target {} ({} bytes){}{}\n", metadata::PercentEncode(name), target.length,
        floor.ok() ? fmt::format(": the floor of {} is release {}", floor->app, floor->floor) : "",
        window);
  }
  if (targets.delegations) {
    for (const auto& role : targets.delegations->roles) {
      fmt::print(out, "  delegates {} to {} key(s), threshold {}\n",
                 metadata::PercentEncode(role.name), role.keys.keyids.size(), role.keys.threshold);
    }
  }
  return Status::Ok();
}

int RunSign(const SignFlags& flags) {
  const std::string out = flags.output.empty() ? flags.input : flags.output;
  // With --json the summary goes to stderr: the signer still reads it.
  Status st = PrintSummary(flags.input, flags.json ? stderr : stdout);
  if (st.ok()) st = metadata::SignMetadataFile(flags.input, flags.key_file, std::nullopt, out);
  if (!st.ok()) {
    fmt::print(stderr, "sign: {}\n", st.ToString());
    return 1;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"signed", out}}.dump());
    return 0;
  }
  fmt::print("signed: {}\n", out);
  return 0;
}

struct StageAppFlags {
  StageAppRequest request;
  int expiry_days = 365;
  bool json = false;
};

int RunStageApp(StageAppFlags& flags) {
  flags.request.expiry = std::chrono::hours(24 * flags.expiry_days);
  auto path = StageApp(flags.request, SystemClock::Instance());
  if (!path.ok()) {
    fmt::print(stderr, "stage-app: {}\n", path.status().ToString());
    return 1;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"staged", *path}}.dump());
    return 0;
  }
  fmt::print("staged {}\nsign it where the targets key lives:\n", *path);
  fmt::print("  flotilla-tracker sign {} --key targets.key\nthen on the tracker:\n", *path);
  fmt::print("  flotilla-tracker accept --repository {} {}\n", flags.request.repository, *path);
  return 0;
}

struct StageRootFlags {
  std::string repository;
  std::vector<std::string> rotate;  // ROLE=PUBLIC_KEY_FILE
  std::optional<uint32_t> offline_window_max_days;
  bool json = false;
};

int RunStageRoot(const StageRootFlags& flags) {
  StageRootRequest request{flags.repository, {}, flags.offline_window_max_days};
  for (const auto& item : flags.rotate) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      fmt::print(stderr, "stage-root: --rotate {}: expected ROLE=PUBLIC_KEY_FILE\n", item);
      return 2;
    }
    request.rotate[item.substr(0, eq)].push_back(item.substr(eq + 1));
  }
  auto path = StageRootRotation(request, SystemClock::Instance());
  if (!path.ok()) {
    fmt::print(stderr, "stage-root: {}\n", path.status().ToString());
    return 1;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"staged", *path}}.dump());
    return 0;
  }
  fmt::print("staged {}\nsign it with the current and the new root keys where they live:\n", *path);
  fmt::print("  flotilla-tracker sign {} --key root.key\n", *path);
  if (flags.rotate.empty()) {
    fmt::print("then on the tracker:\n");
  } else {
    fmt::print("put the new online keys in {}/keys, then:\n", flags.repository);
  }
  fmt::print("  flotilla-tracker accept --repository {} {}\n", flags.repository, *path);
  return 0;
}

struct AcceptFlags {
  std::string repository;
  std::string file;
  std::string role;
  bool json = false;
};

int RunAccept(const AcceptFlags& flags) {
  auto outcome = AcceptSigned(flags.repository, flags.file, flags.role, SystemClock::Instance());
  if (!outcome.ok()) {
    fmt::print(stderr, "{}\n", outcome.status().ToString());
    return 1;
  }
  if (flags.json) {
    fmt::print("{}\n", Json{{"role", outcome->role}, {"version", outcome->version}}.dump());
    return 0;
  }
  fmt::print("accepted {} version {}; snapshot and timestamp signed\n",
             metadata::PercentEncode(outcome->role), outcome->version);
  return 0;
}

CLI::App* AddSignCommand(CLI::App& app, SignFlags& flags) {
  auto* sign = app.add_subcommand(
      "sign", "Sign a staged metadata file where the key lives (no repository or database needed)");
  sign->add_option("file", flags.input, "The staged file (pending/<V>.<role>.json)")
      ->required()
      ->check(CLI::ExistingFile);
  sign->add_option("--key", flags.key_file,
                   "Private key: Ed25519 seed file (keygen) or PEM (ECDSA P-256, RSA)")
      ->required()
      ->check(CLI::ExistingFile);
  sign->add_option("--out", flags.output, "Where to write the signed file (default: FILE)");
  sign->add_flag("--json", flags.json,
                 "Print one JSON document instead of text (the summary goes to stderr)");
  return sign;
}

CLI::App* AddStageAppCommand(CLI::App& app, StageAppFlags& flags) {
  auto* stage = app.add_subcommand(
      "stage-app",
      "Stage top-level targets delegating apps/APP to its keys (add an app, rotate its key)");
  stage->add_option("--repository", flags.request.repository, "Repository directory")->required();
  stage->add_option("--app", flags.request.app, "App name")->required();
  stage
      ->add_option("--key-pub", flags.request.public_key_files,
                   "Public key file of the app (keygen's .pub hex, or PEM); repeatable")
      ->required()
      ->check(CLI::ExistingFile);
  stage->add_option("--threshold", flags.request.threshold, "Signatures needed")
      ->capture_default_str();
  stage->add_option("--expiry-days", flags.expiry_days, "Lifetime of the staged version")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  stage->add_flag("--json", flags.json, "Print one JSON document instead of text");
  return stage;
}

CLI::App* AddStageRootCommand(CLI::App& app, StageRootFlags& flags) {
  auto* stage_root = app.add_subcommand(
      "stage-root",
      "Stage the next root with new keys for some roles (recovery: docs/metadata.md) or a new "
      "offline window cap (docs/signing.md)");
  stage_root->add_option("--repository", flags.repository, "Repository directory")->required();
  stage_root->add_option(
      "--rotate", flags.rotate,
      "ROLE=FILE: ROLE (root, targets, snapshot, timestamp) gets the Ed25519 public "
      "key in FILE (keygen's .pub), threshold 1; repeatable");
  stage_root
      ->add_option("--offline-window-max-days", flags.offline_window_max_days,
                   "The longest offline validity window a release may carry "
                   "(publish --offline-valid-days), in days; 0 removes the cap (no window "
                   "then counts on devices). Default: kept")
      ->check(CLI::Range(0, 3650));
  stage_root->add_flag("--json", flags.json, "Print one JSON document instead of text");
  return stage_root;
}

CLI::App* AddAcceptCommand(CLI::App& app, AcceptFlags& flags) {
  auto* accept = app.add_subcommand(
      "accept", "Check a signed file as a device would, then publish it with the online keys");
  accept->add_option("--repository", flags.repository, "Repository directory")->required();
  accept->add_option("--role", flags.role, "Role (default: from the file name)");
  accept->add_option("file", flags.file, "The signed file")->required()->check(CLI::ExistingFile);
  accept->add_flag("--json", flags.json, "Print one JSON document instead of text");
  return accept;
}

}  // namespace

CommandAction RegisterSigningCommands(CLI::App& app) {
  auto sign_flags = std::make_shared<SignFlags>();
  auto* sign = AddSignCommand(app, *sign_flags);
  auto stage_flags = std::make_shared<StageAppFlags>();
  auto* stage = AddStageAppCommand(app, *stage_flags);
  auto root_flags = std::make_shared<StageRootFlags>();
  auto* stage_root = AddStageRootCommand(app, *root_flags);
  auto accept_flags = std::make_shared<AcceptFlags>();
  auto* accept = AddAcceptCommand(app, *accept_flags);
  return [=] {
    if (*sign) return RunSign(*sign_flags);
    if (*stage) return RunStageApp(*stage_flags);
    if (*stage_root) return RunStageRoot(*root_flags);
    if (*accept) return RunAccept(*accept_flags);
    return -1;
  };
}

}  // namespace flotilla::tracker
