// flotilla-corrupt-seed: a peer that serves corrupt pieces. Test-only.
//
//   flotilla-corrupt-seed --listen 127.0.0.9:0 --torrent T.torrent --file BAD
//
// A libtorrent session with seed_mode over the corrupted copy BAD and hash
// checks disabled, so it claims every piece and sends the bad bytes: the real
// fetcher cannot be made to do this (it only serves verified data). Prints
// {"port":N} and runs until SIGTERM.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/torrent_flags.hpp>
#include <string>
#include <thread>

#include "core/file_io.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  std::string listen, torrent, file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--listen") listen = argv[i + 1];
    if (flag == "--torrent") torrent = argv[i + 1];
    if (flag == "--file") file = argv[i + 1];
  }
  if (listen.empty() || torrent.empty() || file.empty()) return 2;
  ::signal(SIGTERM, OnSignal);
  lt::settings_pack s;
  s.set_str(lt::settings_pack::listen_interfaces, listen);
  s.set_str(lt::settings_pack::outgoing_interfaces, listen.substr(0, listen.rfind(':')));
  s.set_bool(lt::settings_pack::enable_dht, false);
  s.set_bool(lt::settings_pack::enable_lsd, false);
  s.set_bool(lt::settings_pack::enable_upnp, false);
  s.set_bool(lt::settings_pack::enable_natpmp, false);
  s.set_bool(lt::settings_pack::enable_outgoing_utp, false);
  s.set_bool(lt::settings_pack::enable_incoming_utp, false);
  s.set_bool(lt::settings_pack::disable_hash_checks, true);
  lt::session session(s);
  auto bytes = flotilla::ReadTextFileBounded(torrent, 8 << 20);
  if (!bytes.ok()) return 1;
  lt::add_torrent_params p;
  p.ti = std::make_shared<lt::torrent_info>(*bytes, lt::from_span);
  p.save_path = std::filesystem::path(file).parent_path().string();
  for (lt::file_index_t i : p.ti->files().file_range()) {
    if (!p.ti->files().pad_file_at(i)) {
      p.renamed_files[i] = std::filesystem::path(file).filename().string();
    }
  }
  p.flags = lt::torrent_flags::seed_mode;
  session.add_torrent(std::move(p));
  while (session.listen_port() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::printf("{\"port\":%d}\n", session.listen_port());
  std::fflush(stdout);
  while (!g_stop) {
    std::vector<lt::alert*> alerts;
    session.pop_alerts(&alerts);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}
