// Times a fleet-wide change in the fleet repository (tracker/fleet/
// fleet_repository.h): every device's document changes and is re-signed
// (targets, snapshot, timestamp, each written durably). Prints one JSON line:
// the devices, and the CPU seconds (user + system) and wall seconds of the
// first publish (which also makes each device's repository), of the
// re-signing pass, and the CPU of a pass where nothing changed.
//   flotilla-fleet-sign DIR DEVICES state|read-repository
// "state" is the fleet signer as the tracker runs it (one state file per
// device); "read-repository" keeps each device's repository as
// metadata::Repository's directories and opens and verifies it whole at
// every publish (the baseline: what a TUF repository writer does).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/file_io.h"
#include "metadata/repository.h"
#include "metadata/tuf_keys.h"
#include "tracker/fleet/fleet_repository.h"
#include "tracker/publish/repo_init.h"

namespace {

using flotilla::Json;
using namespace flotilla::tracker;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Cost {
  double cpu = 0;
  double wall = 0;
};

// The baseline: each device's repository a metadata::Repository directory
// made from the fleet root, opened and verified whole at every publish.
class RepositoryPerDevice {
 public:
  static flotilla::Result<RepositoryPerDevice> Open(const RepositoryLayout& repo) {
    RepositoryPerDevice out;
    out.repo_ = repo;
    ASSIGN_OR_RETURN(out.root_bytes_, flotilla::ReadTextFileBounded(FleetRootPath(repo), 1 << 20));
    ASSIGN_OR_RETURN(auto doc, flotilla::metadata::ParseSignedDocument(out.root_bytes_, 1 << 20));
    ASSIGN_OR_RETURN(auto root, flotilla::metadata::ParseRoot(doc.signed_json));
    for (auto role :
         {flotilla::metadata::RoleType::kTargets, flotilla::metadata::RoleType::kSnapshot,
          flotilla::metadata::RoleType::kTimestamp}) {
      ASSIGN_OR_RETURN(auto key,
                       flotilla::metadata::LoadRoleKey(FleetKeyPath(repo, role), root, role));
      out.online_.Add(key);
    }
    return out;
  }
  flotilla::Result<bool> Publish(const std::string& id, const std::string& document) const {
    auto& clock = flotilla::SystemClock::Instance();
    const std::string dir = repo_.root + "/baseline/" + id;
    if (!std::filesystem::exists(dir + "/metadata/timestamp.json")) {
      RETURN_IF_ERROR(flotilla::metadata::Repository::CreateWithRoot(
                          dir, root_bytes_, online_, clock, FleetRepositoryOptions())
                          .status());
    }
    ASSIGN_OR_RETURN(auto opened,
                     flotilla::metadata::Repository::Open(dir, clock, FleetRepositoryOptions()));
    const auto& listed = opened->targets().targets;
    auto current = listed.find(kFleetDocumentTarget);
    if (current != listed.end() &&
        current->second.hashes.at("sha256") == flotilla::Digest::Of(document).Hex()) {
      return false;
    }
    RETURN_IF_ERROR(opened->AddTargets({{kFleetDocumentTarget, document, nullptr}}, online_));
    return true;
  }

 private:
  RepositoryLayout repo_;
  std::string root_bytes_;
  flotilla::metadata::KeyRing online_;
};

// Publishes release `release` of kiosk to every device, each re-signed or
// (`changed` false) found unchanged; the time it took.
template <typename Signer>
Cost PublishAll(const Signer& signer, size_t devices, int release, bool changed = true) {
  const double cpu = CpuSeconds();
  const auto wall = std::chrono::steady_clock::now();
  for (size_t i = 0; i < devices; ++i) {
    const std::string id = "dev-" + std::to_string(i);
    Json doc = {{"device", id}, {"apps", {{"kiosk", {{"release", release}}}}}};
    auto resigned = signer.Publish(id, flotilla::CanonicalJson(doc).value());
    if (!resigned.ok() || *resigned != changed) {
      std::fprintf(stderr, "%s: %s\n", id.c_str(), resigned.status().ToString().c_str());
      std::exit(1);
    }
  }
  return {CpuSeconds() - cpu,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[3] : "";
  if (argc != 4 || (mode != "state" && mode != "read-repository")) {
    std::fprintf(stderr, "usage: flotilla-fleet-sign DIR DEVICES state|read-repository\n");
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/repo";
  const size_t devices = std::stoul(argv[2]);
  auto& clock = flotilla::SystemClock::Instance();
  if (auto st = InitRepository(dir, {}, clock); !st.ok()) {
    std::fprintf(stderr, "init: %s\n", st.ToString().c_str());
    return 1;
  }
  if (auto init = InitFleet({dir, "", std::string(argv[1]) + "/off"}, clock); !init.ok()) {
    std::fprintf(stderr, "fleet init: %s\n", init.status().ToString().c_str());
    return 1;
  }
  auto run = [&](const auto& signer) {
    const Cost first = PublishAll(signer, devices, 1);
    const Cost change = PublishAll(signer, devices, 2);
    const Cost same = PublishAll(signer, devices, 2, /*changed=*/false);
    std::printf(
        "{\"devices\": %zu, \"first_cpu_s\": %.3f, \"first_wall_s\": %.3f, "
        "\"resign_cpu_s\": %.3f, \"resign_wall_s\": %.3f, \"unchanged_cpu_s\": %.3f}\n",
        devices, first.cpu, first.wall, change.cpu, change.wall, same.cpu);
  };
  if (mode == "state") {
    auto signer = FleetSigner::Open(RepositoryLayout{dir}, clock);
    if (!signer.ok()) {
      std::fprintf(stderr, "fleet signer: %s\n", signer.status().ToString().c_str());
      return 1;
    }
    run(**signer);
  } else {
    auto baseline = RepositoryPerDevice::Open(RepositoryLayout{dir});
    if (!baseline.ok()) {
      std::fprintf(stderr, "baseline: %s\n", baseline.status().ToString().c_str());
      return 1;
    }
    run(*baseline);
  }
  return 0;
}
