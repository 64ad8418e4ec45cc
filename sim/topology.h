// A virtual fleet's network: sites behind shaped WAN links, a cloud.
//
//   [cloud]--wan · c0--[inet]--s<i> · wan--[router s<i>]--br0--d<j> · eth0--[device s<i>d<j>]
//
// - inet: the internet core, a router namespace. Its c0 leads to the cloud
//   namespace (where the tracker runs), its s<i> to site i's router.
// - router s<i>: forwards between its WAN (wan) and the site LAN bridge br0;
//   with NAT (the default) it masquerades on wan and drops connections
//   opened from the WAN side, as a cellular router does. Without NAT the
//   inet namespace routes the site's LAN prefix to it, so sites reach
//   each other directly.
// - device s<i>d<j>: one veth (eth0) into its site's bridge.
// Links (sim/link.h): cloud link (c0/wan), site WAN (s<i>/wan), LAN port
// (d<j>/eth0); "down" is towards the site or device, "up" away from it.
//
// Addresses: cloud 198.18.0.2 (inet 198.18.0.1); site i WAN 198.18.<i+1>.2
// (inet 198.18.<i+1>.1); site i LAN 10.<i+1>.0.0/24, router 10.<i+1>.0.1,
// device j 10.<i+1>.0.<j+10>. Each namespace has its own stack, so two runs
// use the same addresses without meeting.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/link.h"
#include "sim/netns.h"

namespace flotilla::sim {

inline constexpr int kMaxSites = 200;
inline constexpr int kMaxDevicesPerSite = 200;

struct SiteSpec {
  std::string name;
  int devices = 1;
  bool nat = true;
  LinkShape wan_down;  // inet -> router
  LinkShape wan_up;    // router -> inet
  LinkShape lan_down;  // router's bridge port -> device, for each device
  LinkShape lan_up;    // device -> bridge
};

struct TopologySpec {
  std::vector<SiteSpec> sites;
  LinkShape cloud_down;  // inet -> cloud
  LinkShape cloud_up;    // cloud -> inet (origin egress)
};

Status ValidateTopologySpec(const TopologySpec& spec);

class Topology {
 public:
  // Builds the whole network for `run_id` (sim/names.h). On failure it
  // removes whatever it made before returning the error.
  static Result<std::unique_ptr<Topology>> Up(const std::string& run_id, const TopologySpec& spec);

  // Tears down unless Down() or Detach() ran; errors are dropped here.
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Kills every process in the run's namespaces, deletes them, reaps the
  // delay lines. Idempotent.
  Status Down();
  // Leaves the network running after this object is gone (flotilla-sim topo
  // up); `flotilla-sim topo down` or `clean` removes it later.
  void Detach();

  const std::string& run_id() const { return run_id_; }
  const TopologySpec& spec() const { return spec_; }

  std::string InetNetns() const;
  std::string CloudNetns() const;
  std::string RouterNetns(int site) const;
  std::string DeviceNetns(int site, int device) const;
  // Every namespace of the run, delay-line namespaces included.
  std::vector<std::string> AllNetns() const;

  static std::string CloudAddress() { return "198.18.0.2"; }
  static std::string RouterWanAddress(int site);
  static std::string RouterLanAddress(int site);
  static std::string DeviceAddress(int site, int device);

  // Churn: cut or restore both directions of a site's WAN link, or of one
  // device's LAN port (a device switched off also loses its processes: the
  // caller stops them). While cut, every frame on the link is lost.
  Status SetSiteWanUp(int site, bool up);
  Status SetDeviceLinkUp(int site, int device, bool up);

  // Ground truth from the kernel. Site WAN: the router's wan (rx = bytes
  // that came down the WAN link, tx = bytes sent up). Origin: the cloud's
  // wan (tx = origin egress).
  Result<InterfaceCounters> SiteWanCounters(int site) const;
  Result<InterfaceCounters> OriginCounters() const;

 private:
  Topology(std::string run_id, TopologySpec spec);
  Status Build();
  Status BuildCore();
  Status BuildSite(int site);
  Status BuildDevice(int site, int device);
  Status AddLink(const LinkSpec& spec);

  std::string run_id_;
  TopologySpec spec_;
  std::vector<std::string> delay_netns_;
  std::vector<pid_t> delay_pids_;
  bool down_ = false;
};

}  // namespace flotilla::sim
