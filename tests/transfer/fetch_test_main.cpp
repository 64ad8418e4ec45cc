// flotilla-fetch-test: one TorrentFetcher in its own process, for tests that
// need separate nodes they can SIGKILL. Test-only.
//
//   flotilla-fetch-test --data DIR --listen 127.0.0.2:0 --torrents REPO/torrents
//       [--tracker URL --passkey P] [--web-seed URL] [--down B/s] [--up B/s]
//       [--no-lsd] [--stall S (LAN follower too)] [--no-origin] [--origin-cap B/s] [--peer
//       IP:PORT]...
//       [--exit-when-complete] [--max-seconds S]
//       --artifact sha256:HEX,LENGTH,INFOHASH_HEX ...
//
// fetch_torrent reads <torrents>/<hex>.torrent (the tracker repository's copy).
// Prints one JSON object per line: first {"event":"listening","port":N}, then
// {"event":"progress",...} every 200 ms and {"event":"exit",...} at the end.
// SIGTERM or SIGINT: clean shutdown (resume data saved).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "node/transfer/torrent_fetcher.h"

namespace {

using flotilla::Digest;
using flotilla::node::ArtifactRequest;
using flotilla::node::FetchState;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Args {
  flotilla::node::TorrentFetcherOptions options;
  std::string torrents;
  std::vector<std::string> peers;
  std::vector<ArtifactRequest> artifacts;
  bool exit_when_complete = false;
  double max_seconds = 600;
};

bool ParseArtifact(const std::string& text, ArtifactRequest& out) {
  const size_t a = text.find(','), b = text.rfind(',');
  if (a == std::string::npos || a == b) return false;
  auto digest = Digest::Parse(text.substr(0, a));
  auto info = Digest::ParseHex(text.substr(b + 1));
  if (!digest.ok() || !info.ok()) return false;
  out.sha256 = *digest;
  out.length = std::strtoull(text.c_str() + a + 1, nullptr, 10);
  out.info_hash = info->bytes();
  return true;
}

bool ParseArgs(int argc, char** argv, Args& args) {
  auto& o = args.options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (flag == "--data")
      o.data_dir = next();
    else if (flag == "--listen")
      o.listen_interfaces = next();
    else if (flag == "--torrents")
      args.torrents = next();
    else if (flag == "--tracker")
      o.tracker_url = next();
    else if (flag == "--passkey")
      o.passkey = next();
    else if (flag == "--web-seed")
      o.web_seed_url = next();
    else if (flag == "--down")
      o.download_rate_limit = std::atoi(next().c_str());
    else if (flag == "--up")
      o.upload_rate_limit = std::atoi(next().c_str());
    else if (flag == "--no-lsd")
      o.enable_lsd = false;
    else if (flag == "--stall") {
      o.origin.stall_seconds = std::atof(next().c_str());
      o.origin.lan_follower_stall_seconds = o.origin.stall_seconds;
      o.origin.stagger_seconds = 0;  // the test chose the wait
    } else if (flag == "--no-origin")
      o.origin.disabled = true;
    else if (flag == "--origin-cap")
      o.origin.origin_rate_limit = std::atoi(next().c_str());
    else if (flag == "--peer")
      args.peers.push_back(next());
    else if (flag == "--exit-when-complete")
      args.exit_when_complete = true;
    else if (flag == "--max-seconds")
      args.max_seconds = std::atof(next().c_str());
    else if (flag == "--artifact") {
      ArtifactRequest r;
      if (!ParseArtifact(next(), r)) return false;
      args.artifacts.push_back(r);
    } else {
      return false;
    }
  }
  return !o.data_dir.empty() && !args.torrents.empty() && !args.artifacts.empty();
}

const char* StateName(FetchState s) {
  switch (s) {
    case FetchState::kQueued:
      return "queued";
    case FetchState::kFetching:
      return "fetching";
    case FetchState::kComplete:
      return "complete";
    case FetchState::kFailed:
      return "failed";
  }
  return "?";
}

nlohmann::json BadPeerIps(const flotilla::node::FetchProgress& p) {
  nlohmann::json ips = nlohmann::json::array();
  for (const auto& bad : p.bad_peers) ips.push_back(bad.ip);
  return ips;
}

// Prints a progress line; returns true when every artifact is complete.
bool PrintProgress(const flotilla::node::TorrentFetcher& fetcher, const Args& args,
                   const char* event) {
  nlohmann::json line = {{"event", event}};
  bool all_complete = true;
  for (const auto& r : args.artifacts) {
    auto p = fetcher.Progress(r.sha256);
    if (!p.ok()) continue;
    all_complete = all_complete && p->state == FetchState::kComplete;
    line["artifacts"].push_back({{"sha256", r.sha256.ToString()},
                                 {"state", StateName(p->state)},
                                 {"verified", p->bytes_verified},
                                 {"from_peers", p->bytes_from_peers},
                                 {"from_origin", p->bytes_from_origin},
                                 {"uploaded", p->bytes_uploaded},
                                 {"peers", p->peers},
                                 {"hash_failures", p->hash_failures},
                                 {"wasted", p->bytes_wasted},
                                 {"bad_peers", BadPeerIps(*p)},
                                 {"error", p->error}});
  }
  const auto c = fetcher.GetCounters();
  line["counters"] = {{"from_peers", c.bytes_from_peers}, {"from_origin", c.bytes_from_origin},
                      {"uploaded", c.bytes_uploaded},     {"payload", c.payload_received},
                      {"wasted", c.bytes_wasted},         {"hash_failures", c.hash_failures},
                      {"banned", c.peers_banned},         {"origin_attaches", c.origin_attaches},
                      {"readds", c.torrent_readds}};
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
  return all_complete;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, args)) {
    std::fprintf(stderr, "usage: see the comment at the top of fetch_test_main.cpp\n");
    return 2;
  }
  ::signal(SIGTERM, OnSignal);
  ::signal(SIGINT, OnSignal);
  const std::string torrents = args.torrents;
  args.options.fetch_torrent = [torrents](const ArtifactRequest& r) {
    return flotilla::ReadTextFileBounded(torrents + "/" + r.sha256.Hex() + ".torrent", 8 << 20);
  };
  auto fetcher = flotilla::node::TorrentFetcher::Create(args.options);
  if (!fetcher.ok()) {
    std::fprintf(stderr, "create: %s\n", fetcher.status().ToString().c_str());
    return 1;
  }
  std::printf("{\"event\":\"listening\",\"port\":%d}\n", (*fetcher)->GetCounters().listen_port);
  std::fflush(stdout);
  for (const auto& r : args.artifacts) {
    if (auto st = (*fetcher)->Want(r); !st.ok()) {
      std::fprintf(stderr, "want: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  for (const auto& peer : args.peers) {
    if (auto st = (*fetcher)->AddPeer(peer); !st.ok()) {
      std::fprintf(stderr, "peer: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  while (!g_stop && std::chrono::steady_clock::now() - start <
                        std::chrono::duration<double>(args.max_seconds)) {
    const bool done = PrintProgress(**fetcher, args, "progress");
    if (done && args.exit_when_complete) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  fetcher->reset();  // clean shutdown: resume data saved
  std::printf("{\"event\":\"exit\"}\n");
  return 0;
}
