// `flotilla-tracker bundle`: one file holding what a device needs to take a
// release with no network: the signed metadata a device's TUF client reads
// and the artifacts that rebuild the release's layers (docs/bundle.md).
//
// The metadata is chosen by running the device's own client over the
// repository directory and recording every file it reads, so the bundle holds
// exactly (and only) what an online device fetches, verified before it is written.
#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "layerstore/plain_tar.h"
#include "layerstore/update_planner.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_names.h"
#include "tracker/cli/commands.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/service/notice_board.h"
#include "tracker/storage/repository.h"

namespace flotilla::tracker {
namespace {

struct BundleFlags {
  std::string repository;
  std::string app;
  uint64_t release = 0;
  uint64_t from = 0;
  std::string out;
  std::vector<std::string> devices;  // --device: whose fleet files go in
  bool json = false;
};

std::vector<layerstore::PlannerArtifact> PlannerArtifactsOf(const metadata::Release& release) {
  std::vector<layerstore::PlannerArtifact> out;
  for (const auto& a : release.artifacts) {
    out.push_back({.id = a.sha256,
                   .layer = a.layer,
                   .kind = a.kind == metadata::ArtifactKind::kDelta
                               ? layerstore::PlannerArtifactKind::kDelta
                               : layerstore::PlannerArtifactKind::kFull,
                   .bases = a.bases,
                   .length = a.length});
  }
  return out;
}

std::vector<Digest> LayersOf(const metadata::Release& release) {
  std::vector<Digest> layers;
  for (const auto& l : release.image.layers) layers.push_back(l.diff_id);
  return layers;
}

// The artifacts a device holding the layers of `from` (none: nullptr) needs.
Result<std::vector<layerstore::PlannerArtifact>> ArtifactsFor(const metadata::Release& release,
                                                              const metadata::Release* from) {
  const std::vector<Digest> held = from ? LayersOf(*from) : std::vector<Digest>{};
  std::vector<layerstore::PlannerArtifact> candidates = PlannerArtifactsOf(release);
  if (!from) {
    std::erase_if(candidates, [](const layerstore::PlannerArtifact& a) {
      return a.kind != layerstore::PlannerArtifactKind::kFull;
    });
  }
  ASSIGN_OR_RETURN(auto plan, layerstore::PlanUpdate(held, LayersOf(release), candidates));
  std::vector<layerstore::PlannerArtifact> chosen;
  for (const auto& layer : plan.layers) {
    for (const auto& step : layer.best.steps) {
      if (std::find(chosen.begin(), chosen.end(), step) == chosen.end()) chosen.push_back(step);
    }
  }
  return chosen;
}

// Device `id`'s fleet files as a bundle's fleet/<id>.json (docs/bundle.md,
// "Fleet documents in a bundle"): its repository's current timestamp,
// snapshot, targets and document, in the form a notice answer carries them,
// with every fleet root version after the first up to the one they are
// signed under, so a node trusting an older fleet root walks to it.
Result<std::string> DeviceFleetFile(const RepositoryLayout& repo, const std::string& id) {
  if (!DeviceRepositoryDir(repo, id).ok()) {
    return InvalidArgument("--device " + id + ": not a device id");
  }
  std::optional<Json> carried = CarriedFleetFiles(repo, id);
  if (!carried) {
    return NotFound("--device " + id + ": no fleet repository for it in " + repo.root +
                    " (not a device of this tracker, or `fleet publish` has not signed a "
                    "document for it)");
  }
  const uint64_t root = (*carried)["root"].get<uint64_t>();
  for (uint64_t v = 2; v <= root; ++v) {
    ASSIGN_OR_RETURN(
        std::string bytes,
        ReadTextFileBounded(FleetRootVersionPath(repo, v), metadata::ClientLimits{}.max_root_bytes)
            .WithContext("fleet root version " + std::to_string(v)));
    (*carried)["metadata"][std::to_string(v) + ".root.json"] = std::move(bytes);
  }
  return carried->dump() + "\n";
}

struct BundleContents {
  std::map<std::string, std::string> fleet;     // device id -> fleet/<id>.json
  std::map<std::string, std::string> metadata;  // file name -> bytes
  std::vector<layerstore::PlannerArtifact> artifacts;
  std::string index;  // bundle.json
};

// Runs a device's client over the repository, trusting its first root.
Result<BundleContents> Collect(const BundleFlags& f, const std::string& trusted_dir) {
  const RepositoryLayout layout{f.repository};
  ASSIGN_OR_RETURN(std::string first_root,
                   ReadTextFileBounded(layout.metadata_dir() + "/1.root.json",
                                       metadata::ClientLimits{}.max_root_bytes));
  RETURN_IF_ERROR(metadata::TufClient::Initialize(trusted_dir, first_root));
  // The repository directory as a device's remote, remembering every metadata file read.
  metadata::DirectoryRemote directory(layout.metadata_dir(), "");
  metadata::RecordingRemote remote(directory);
  ASSIGN_OR_RETURN(auto client,
                   metadata::TufClient::Open(trusted_dir, remote, SystemClock::Instance()));
  RETURN_IF_ERROR(client->Refresh().WithContext("the repository's metadata"));
  ASSIGN_OR_RETURN(auto releases, metadata::TrustedReleases(*client));
  auto newest = releases.find(f.app);
  if (newest == releases.end()) return NotFound("the repository has no release of app " + f.app);
  if (newest->second.version != f.release) {
    return FailedPrecondition(fmt::format(
        "release {} of {} is not its newest signed release ({}): a device takes the newest",
        f.release, f.app, newest->second.version));
  }
  std::optional<metadata::Release> from;
  if (f.from != 0) {
    auto target = client->GetTargetInfo(metadata::ReleaseTargetName(f.app, f.from));
    if (!target.ok()) return target.status().WithContext("release " + std::to_string(f.from));
    ASSIGN_OR_RETURN(from, metadata::ParseRelease(target->custom));
  }
  BundleContents contents;
  ASSIGN_OR_RETURN(contents.artifacts, ArtifactsFor(newest->second, from ? &*from : nullptr));
  contents.metadata = remote.files();
  for (const std::string& id : f.devices) {
    ASSIGN_OR_RETURN(contents.fleet[id], DeviceFleetFile(layout, id));
  }
  Json index = {{"format", 1}, {"app", f.app}, {"release", f.release}, {"from", f.from}};
  index["artifacts"] = Json::array();
  for (const auto& a : contents.artifacts) index["artifacts"].push_back(a.id.Hex());
  if (!contents.fleet.empty()) {
    index["devices"] = Json::array();
    for (const auto& [id, file] : contents.fleet) index["devices"].push_back(id);
  }
  contents.index = index.dump(2) + "\n";
  return contents;
}

Status WriteTar(const BundleFlags& f, const BundleContents& c, const std::string& temp) {
  ASSIGN_OR_RETURN(auto tar, layerstore::PlainTarWriter::Create(temp));
  RETURN_IF_ERROR(tar->AddBytes("bundle.json", c.index));
  for (const auto& [name, bytes] : c.metadata) {
    RETURN_IF_ERROR(tar->AddBytes("metadata/" + name, bytes));
  }
  for (const auto& [id, file] : c.fleet)
    RETURN_IF_ERROR(tar->AddBytes("fleet/" + id + ".json", file));
  const RepositoryLayout layout{f.repository};
  uint64_t done = 0, total = 0;
  for (const auto& a : c.artifacts) total += a.length;
  for (size_t i = 0; i < c.artifacts.size(); ++i) {
    const auto& a = c.artifacts[i];
    RETURN_IF_ERROR(
        tar->AddFile("artifacts/" + a.id.Hex(), layout.artifact_path(a.id.Hex()), a.length));
    // Its .torrent, so the importing device seeds it to its neighbours.
    std::error_code ec;
    const std::string torrent = layout.torrent_path(a.id.Hex());
    if (std::filesystem::is_regular_file(torrent, ec)) {
      const uint64_t size = std::filesystem::file_size(torrent, ec);
      if (!ec) RETURN_IF_ERROR(tar->AddFile("torrents/" + a.id.Hex() + ".torrent", torrent, size));
    }
    done += a.length;
    fmt::print(stderr, "bundle: artifact {}/{} {} ({} B; {} of {} B)\n", i + 1, c.artifacts.size(),
               a.id.Hex().substr(0, 12), a.length, done, total);
  }
  return tar->Close();
}

// Writes the bundle to OUT.tmp, fsyncs it, renames it to OUT, fsyncs the directory.
Status RunBundle(const BundleFlags& f) {
  if (f.release == 0) return InvalidArgument("--release must be at least 1");
  if (f.from >= f.release) return InvalidArgument("--from must be below --release");
  const std::string temp = f.out + ".tmp";
  std::string trusted = f.out + ".trust.tmp";
  std::filesystem::remove_all(trusted);
  auto contents = Collect(f, trusted);
  std::filesystem::remove_all(trusted);
  if (!contents.ok()) return contents.status();
  Status written = WriteTar(f, *contents, temp);
  if (written.ok()) {
    const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) written = IOErrorFromErrno("fsync " + temp, errno);
    if (fd >= 0) ::close(fd);
  }
  if (written.ok() && ::rename(temp.c_str(), f.out.c_str()) != 0) {
    written = IOErrorFromErrno("rename " + temp, errno);
  }
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return written;
  }
  const std::string dir = std::filesystem::path(f.out).parent_path().string();
  RETURN_IF_ERROR(FsyncDirectory(dir.empty() ? "." : dir));
  if (f.json) {
    uint64_t bytes = 0;
    for (const auto& a : contents->artifacts) bytes += a.length;
    fmt::print("{}\n", Json{{"bundle", f.out},
                            {"app", f.app},
                            {"release", f.release},
                            {"from", f.from ? Json(f.from) : Json(nullptr)},
                            {"metadata_files", contents->metadata.size()},
                            {"devices", contents->fleet.size()},
                            {"artifacts", contents->artifacts.size()},
                            {"artifact_bytes", bytes}}
                           .dump());
    return Status::Ok();
  }
  fmt::print("bundle {}: {} release {}{}, {} metadata file(s), {} artifact(s){}\n", f.out, f.app,
             f.release, f.from ? " from " + std::to_string(f.from) : std::string(),
             contents->metadata.size(), contents->artifacts.size(),
             contents->fleet.empty()
                 ? std::string()
                 : fmt::format(", the fleet documents of {} device(s)", contents->fleet.size()));
  return Status::Ok();
}

}  // namespace

CommandAction RegisterBundleCommands(CLI::App& app) {
  auto f = std::make_shared<BundleFlags>();
  auto* bundle = app.add_subcommand(
      "bundle",
      "Write an offline bundle: the signed metadata and the artifacts a device needs to take "
      "--release of --app with no network (docs/bundle.md). The device imports it with "
      "`flotilla-node import FILE` and verifies every byte against the signed metadata.");
  bundle->add_option("--repository", f->repository, "the repository directory `serve` serves")
      ->required();
  bundle->add_option("--app", f->app, "the app")->required();
  bundle->add_option("--release", f->release, "its newest signed release")->required();
  bundle->add_option("--from", f->from,
                     "a release the devices hold: deltas from its layers where the repository "
                     "has them (default: full layers, for a device holding nothing)");
  bundle->add_option("--out", f->out, "the bundle file to write (atomically)")->required();
  bundle->add_option("--device", f->devices,
                     "a device id (repeatable): its signed fleet document goes in, so a device "
                     "that the fleet manages deploys the release only when its document names "
                     "it, with no tracker reachable (`device list` shows the ids)");
  bundle->add_flag("--json", f->json,
                   "Print one JSON document instead of text (progress stays on stderr)");
  return [=]() -> int {
    if (!*bundle) return -1;
    if (Status st = RunBundle(*f); !st.ok()) {
      fmt::print(stderr, "bundle: {}\n", st.ToString());
      return 1;
    }
    return 0;
  };
}

}  // namespace flotilla::tracker
