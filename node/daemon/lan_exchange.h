// LAN metadata exchange (docs/node.md, "LAN exchange"): how a node gets newer
// signed metadata from a neighbour when the tracker is out of reach.
//
// Discovery: every `beacon_interval_s` each node sends one UDP datagram to the
// site's multicast group (default 239.192.70.76:7476, TTL 1, so it never
// leaves the LAN):
//   {"flotilla_beacon":1,"device":"kiosk-2","site":"shop-7","port":41231,
//    "root":1,"timestamp":57}
// Receivers take the sender's address from the datagram's source, ignore
// their own beacons, other sites' and anything malformed or over 512 bytes,
// and keep the newest beacon per device for 3 intervals.
//
// Exchange: each node serves, on `lan.http_listen`, GET /metadata/NAME (its
// trusted, already-verified metadata: timestamp.json, <v>.snapshot.json,
// <v>.targets.json, <v>.root.json for the versions it trusts, each delegated
// targets role's <v>.<role>.json for the version it trusts, and the
// unversioned names) and GET /torrents/<hex>.torrent (torrents of artifacts
// it holds). A neighbour's bytes are trusted only after the TUF client
// verified them, exactly like the tracker's.
//
// The endpoint and the beacon socket run on the exchange's own thread, so a
// neighbour is answered while the daemon's loop waits on the WAN. Every
// method is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "node/daemon/node_config.h"

namespace flotilla::node {

struct Neighbour {
  std::string device;
  std::string http_base;  // "http://ip:port"
  uint64_t root_version = 0;
  uint64_t timestamp_version = 0;
  MonoTime last_seen{};
};

struct ServedMetadata {
  uint64_t root_version = 0;
  uint64_t snapshot_version = 0;
  uint64_t targets_version = 0;
  uint64_t timestamp_version = 0;
};

class LanExchange {
 public:
  // Binds the exchange endpoint and joins the beacon group. `tuf_dir` and
  // `torrents_dir` are what the endpoint serves from.
  static Result<std::unique_ptr<LanExchange>> Start(const LanConfig& config, std::string device,
                                                    std::string site, std::string tuf_dir,
                                                    std::string torrents_dir, const Clock& clock);
  ~LanExchange();

  // The port the exchange endpoint listens on.
  uint16_t http_port() const;
  // What the endpoint serves, and what the next beacon announces.
  void SetServed(const ServedMetadata& served);
  // Sends one beacon (on the exchange's thread; a failure to send is logged
  // at debug level: the next beacon tries again).
  void SendBeacon();
  // Neighbours heard within the last 3 beacon intervals, newest timestamp
  // first.
  std::vector<Neighbour> Neighbours() const;

 private:
  struct Impl;
  explicit LanExchange(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flotilla::node
