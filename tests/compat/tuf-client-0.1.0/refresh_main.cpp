// flotilla-tuf-client-0.1.0: what a flotilla-node 0.1.0 does with the
// tracker's metadata on each refresh, built from 0.1.0's own code (core/ and
// metadata/ beside this file, copied unchanged from commit b3bfcca): open the
// trusted state, run the TUF client workflow, take the newest release of each
// app from the signed targets. The repository is read from a directory, as
// 0.1.0's DirectoryRemote does (trust never depends on the transport).
//
//   flotilla-tuf-client-0.1.0 TRUSTED_DIR METADATA_DIR TARGETS_DIR NOW
//
// NOW is the calendar time the client runs at (RFC 3339, e.g.
// 2026-12-01T10:00:00Z). Prints one line per app, "<app> <version>", and exits
// 0; on any refusal prints the error and exits 1. TRUSTED_DIR is updated as a
// 0.1.0 device's tuf/ would be.
#include <iostream>

#include "core/clock.h"
#include "metadata/release.h"
#include "metadata/remote_repository.h"
#include "metadata/tuf_client.h"
#include "metadata/tuf_time.h"

using namespace flotilla;
using namespace flotilla::metadata;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: flotilla-tuf-client-0.1.0 TRUSTED_DIR METADATA_DIR TARGETS_DIR NOW\n";
    return 2;
  }
  auto now = ParseTufTime(argv[4]);
  if (!now.ok()) {
    std::cerr << "NOW: " << now.status().ToString() << "\n";
    return 2;
  }
  FakeClock clock(*now);
  DirectoryRemote remote(argv[2], argv[3]);
  auto client = TufClient::Open(argv[1], remote, clock);
  if (!client.ok()) {
    std::cerr << client.status().ToString() << "\n";
    return 1;
  }
  Status refreshed = (*client)->Refresh();
  if (!refreshed.ok()) {
    std::cerr << refreshed.ToString() << "\n";
    return 1;
  }
  auto releases = LatestReleases(*(*client)->targets());
  if (!releases.ok()) {
    std::cerr << releases.status().ToString() << "\n";
    return 1;
  }
  for (const auto& [app, release] : *releases) std::cout << app << " " << release.version << "\n";
  return 0;
}
