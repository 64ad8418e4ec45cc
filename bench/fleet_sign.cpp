// Times a fleet-wide change in the fleet repository (tracker/fleet/
// fleet_repository.h): every device's document changes and is re-signed
// (targets, snapshot, timestamp, each written durably). Prints one JSON line:
// the devices, and the CPU seconds (user + system) and wall seconds of the
// first publish (which also makes each device's repository), of the
// re-signing pass, and the CPU of a pass where nothing changed.
//   flotilla-fleet-sign DIR DEVICES indexed|read-repository
// "indexed" is the fleet signer as the tracker runs it; "read-repository"
// opens and verifies each device's whole repository at every publish (the
// baseline).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/canonical_json.h"
#include "core/clock.h"
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

// Publishes release `release` of kiosk to every device, each re-signed or
// (`changed` false) found unchanged; the time it took.
Cost PublishAll(const FleetSigner& signer, size_t devices, int release, bool changed = true) {
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
  const std::string mode_name = argc == 4 ? argv[3] : "";
  if (argc != 4 || (mode_name != "indexed" && mode_name != "read-repository")) {
    std::fprintf(stderr, "usage: flotilla-fleet-sign DIR DEVICES indexed|read-repository\n");
    return 2;
  }
  const FleetSigner::Mode mode =
      mode_name == "indexed" ? FleetSigner::Mode::kIndexed : FleetSigner::Mode::kReadRepository;
  const std::string dir = std::string(argv[1]) + "/repo";
  const size_t devices = std::stoul(argv[2]);
  auto& clock = flotilla::SystemClock::Instance();
  if (auto st = InitRepository(dir, {}, clock); !st.ok()) {
    std::fprintf(stderr, "init: %s\n", st.ToString().c_str());
    return 1;
  }
  auto init = InitFleet({dir, "", std::string(argv[1]) + "/off"}, clock);
  auto signer = FleetSigner::Open(RepositoryLayout{dir}, clock, mode);
  if (!init.ok() || !signer.ok()) {
    std::fprintf(stderr, "fleet init failed\n");
    return 1;
  }
  const Cost first = PublishAll(**signer, devices, 1);
  const Cost change = PublishAll(**signer, devices, 2);
  const Cost same = PublishAll(**signer, devices, 2, /*changed=*/false);
  std::printf(
      "{\"devices\": %zu, \"first_cpu_s\": %.3f, \"first_wall_s\": %.3f, "
      "\"resign_cpu_s\": %.3f, \"resign_wall_s\": %.3f, \"unchanged_cpu_s\": %.3f}\n",
      devices, first.cpu, first.wall, change.cpu, change.wall, same.cpu);
  return 0;
}
