// Peers an artifact banned, kept out of its torrent for the artifact's life.
//
// libtorrent forgets its own bans when a torrent is removed, and the fetcher
// removes and re-adds a torrent to undo 2.0.8's false bans (docs/transfer.md,
// "Corrupt peers"). The gate is a libtorrent torrent plugin given to every
// add of the artifact's torrent: it closes each connection, incoming or
// outgoing, to an address banned here, and drops a connected peer within a
// second of its ban.
//
// Thread-safety: Ban() is called on the fetcher's worker, Banned() on
// libtorrent's network thread; both take the gate's lock.
#pragma once

#include <functional>
#include <libtorrent/extensions.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <memory>
#include <mutex>
#include <set>

namespace flotilla::node::transfer {

class PeerGate {
 public:
  // True when `address` was not banned before.
  bool Ban(const lt::address& address);
  bool Banned(const lt::address& address) const;

 private:
  mutable std::mutex mu_;
  std::set<lt::address> banned_;
};

using TorrentPluginFactory = std::function<std::shared_ptr<lt::torrent_plugin>(
    lt::torrent_handle const&, lt::client_data_t)>;

// The plugin for add_torrent_params::extensions.
TorrentPluginFactory GatePlugin(std::shared_ptr<PeerGate> gate);

}  // namespace flotilla::node::transfer
