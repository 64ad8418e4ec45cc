#include "node/transfer/peer_gate.h"

#include <libtorrent/error_code.hpp>
#include <libtorrent/operations.hpp>
#include <libtorrent/peer_connection_handle.hpp>
#include <stdexcept>

namespace flotilla::node::transfer {
namespace {

// Drops its connection at the first tick after the peer's ban.
class GatedPeer final : public lt::peer_plugin {
 public:
  GatedPeer(lt::peer_connection_handle connection, std::shared_ptr<PeerGate> gate)
      : connection_(std::move(connection)), gate_(std::move(gate)) {}

  void tick() override {
    if (connection_.is_disconnecting() || !gate_->Banned(connection_.remote().address())) return;
    connection_.disconnect(lt::errors::banned_by_ip_filter, lt::operation_t::bittorrent);
  }

 private:
  lt::peer_connection_handle connection_;
  std::shared_ptr<PeerGate> gate_;
};

class GateTorrentPlugin final : public lt::torrent_plugin {
 public:
  explicit GateTorrentPlugin(std::shared_ptr<PeerGate> gate) : gate_(std::move(gate)) {}

  // libtorrent closes a connection whose new_connection throws.
  std::shared_ptr<lt::peer_plugin> new_connection(lt::peer_connection_handle const& c) override {
    if (gate_->Banned(c.remote().address())) throw std::runtime_error("peer banned");
    return std::make_shared<GatedPeer>(c, gate_);
  }

 private:
  std::shared_ptr<PeerGate> gate_;
};

}  // namespace

bool PeerGate::Ban(const lt::address& address) {
  std::lock_guard<std::mutex> lock(mu_);
  return banned_.insert(address).second;
}

bool PeerGate::Banned(const lt::address& address) const {
  std::lock_guard<std::mutex> lock(mu_);
  return banned_.count(address) != 0;
}

TorrentPluginFactory GatePlugin(std::shared_ptr<PeerGate> gate) {
  return
      [gate](lt::torrent_handle const&, lt::client_data_t) -> std::shared_ptr<lt::torrent_plugin> {
        return std::make_shared<GateTorrentPlugin>(gate);
      };
}

}  // namespace flotilla::node::transfer
