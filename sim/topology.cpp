#include "sim/topology.h"

#include <sys/wait.h>

#include <cerrno>

#include "sim/command.h"
#include "sim/names.h"

namespace flotilla::sim {
namespace {

Status Ip(const std::string& ns, std::vector<std::string> args) {
  std::vector<std::string> argv = {"ip", "-n", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunChecked(argv).status();
}

Status Nft(const std::string& ns, const std::string& script) {
  return RunChecked(InNetns(ns, {"nft", "-f", "-"}), script).status();
}

std::string SiteRole(int site) { return "s" + std::to_string(site); }

// Masquerade on wan; from the WAN side only replies get in.
std::string NatRules() {
  return "table ip fsim_nat {\n"
         "  chain postrouting { type nat hook postrouting priority srcnat; oifname \"wan\" "
         "masquerade; }\n"
         "  chain forward { type filter hook forward priority filter; policy accept;\n"
         "    ct state established,related accept\n"
         "    iifname \"wan\" drop\n"
         "  }\n"
         "}\n";
}

}  // namespace

Status ValidateTopologySpec(const TopologySpec& spec) {
  if (spec.sites.empty()) return InvalidArgument("a topology needs at least one site");
  if (spec.sites.size() > kMaxSites) return InvalidArgument("more than 200 sites");
  RETURN_IF_ERROR(ValidateLinkShape(spec.cloud_down).WithContext("cloud down"));
  RETURN_IF_ERROR(ValidateLinkShape(spec.cloud_up).WithContext("cloud up"));
  for (size_t i = 0; i < spec.sites.size(); ++i) {
    const SiteSpec& s = spec.sites[i];
    std::string where = "site " + std::to_string(i);
    if (s.devices < 0 || s.devices > kMaxDevicesPerSite) {
      return InvalidArgument(where + ": devices must be 0.." + std::to_string(kMaxDevicesPerSite));
    }
    for (const LinkShape* l : {&s.wan_down, &s.wan_up, &s.lan_down, &s.lan_up}) {
      RETURN_IF_ERROR(ValidateLinkShape(*l).WithContext(where));
    }
  }
  return Status::Ok();
}

Topology::Topology(std::string run_id, TopologySpec spec)
    : run_id_(std::move(run_id)), spec_(std::move(spec)) {}

Topology::~Topology() { Down().IgnoreError(); }

Result<std::unique_ptr<Topology>> Topology::Up(const std::string& run_id,
                                               const TopologySpec& spec) {
  RETURN_IF_ERROR(ValidateRunId(run_id));
  RETURN_IF_ERROR(ValidateTopologySpec(spec));
  std::unique_ptr<Topology> topo(new Topology(run_id, spec));
  Status st = topo->Build();
  if (!st.ok()) {
    topo->Down().IgnoreError();
    return st.WithContext("build topology " + run_id);
  }
  return topo;
}

std::string Topology::InetNetns() const { return NetnsName(run_id_, "inet"); }
std::string Topology::CloudNetns() const { return NetnsName(run_id_, "cloud"); }
std::string Topology::RouterNetns(int site) const { return NetnsName(run_id_, SiteRole(site)); }
std::string Topology::DeviceNetns(int site, int device) const {
  return NetnsName(run_id_, SiteRole(site) + "d" + std::to_string(device));
}

std::vector<std::string> Topology::AllNetns() const {
  std::vector<std::string> all = {InetNetns(), CloudNetns()};
  for (int i = 0; i < static_cast<int>(spec_.sites.size()); ++i) {
    all.push_back(RouterNetns(i));
    for (int j = 0; j < spec_.sites[i].devices; ++j) all.push_back(DeviceNetns(i, j));
  }
  all.insert(all.end(), delay_netns_.begin(), delay_netns_.end());
  return all;
}

std::string Topology::RouterWanAddress(int site) {
  return "198.18." + std::to_string(site + 1) + ".2";
}
std::string Topology::RouterLanAddress(int site) {
  return "10." + std::to_string(site + 1) + ".0.1";
}
std::string Topology::DeviceAddress(int site, int device) {
  return "10." + std::to_string(site + 1) + ".0." + std::to_string(device + 10);
}

Status Topology::AddLink(const LinkSpec& spec) {
  CreatedLink created;
  Status st = CreateLink(spec, created);
  if (!created.delay_netns.empty()) delay_netns_.push_back(created.delay_netns);
  if (created.delay_line_pid > 0) delay_pids_.push_back(created.delay_line_pid);
  return st;
}

Status Topology::Build() {
  RETURN_IF_ERROR(BuildCore());
  for (int i = 0; i < static_cast<int>(spec_.sites.size()); ++i) {
    RETURN_IF_ERROR(BuildSite(i).WithContext("site " + std::to_string(i)));
  }
  return Status::Ok();
}

Status Topology::BuildCore() {
  const std::string inet = InetNetns(), cloud = CloudNetns();
  RETURN_IF_ERROR(CreateNetns(inet));
  RETURN_IF_ERROR(SetSysctl(inet, "net.ipv4.ip_forward", "1"));
  RETURN_IF_ERROR(CreateNetns(cloud));
  RETURN_IF_ERROR(AddLink(LinkSpec{LinkEnd{inet, "c0"}, LinkEnd{cloud, "wan"}, spec_.cloud_down,
                                   spec_.cloud_up, NetnsName(run_id_, "lc")}));
  RETURN_IF_ERROR(Ip(inet, {"addr", "add", "198.18.0.1/24", "dev", "c0"}));
  RETURN_IF_ERROR(Ip(cloud, {"addr", "add", CloudAddress() + "/24", "dev", "wan"}));
  return Ip(cloud, {"route", "add", "default", "via", "198.18.0.1"});
}

Status Topology::BuildSite(int site) {
  const SiteSpec& s = spec_.sites[site];
  const std::string inet = InetNetns(), router = RouterNetns(site);
  const std::string wan_net = "198.18." + std::to_string(site + 1);
  const std::string inet_port = "s" + std::to_string(site);
  RETURN_IF_ERROR(CreateNetns(router));
  RETURN_IF_ERROR(SetSysctl(router, "net.ipv4.ip_forward", "1"));
  RETURN_IF_ERROR(AddLink(LinkSpec{LinkEnd{inet, inet_port}, LinkEnd{router, "wan"}, s.wan_down,
                                   s.wan_up, NetnsName(run_id_, "lw" + std::to_string(site))}));
  RETURN_IF_ERROR(Ip(inet, {"addr", "add", wan_net + ".1/24", "dev", inet_port}));
  RETURN_IF_ERROR(Ip(router, {"addr", "add", wan_net + ".2/24", "dev", "wan"}));
  RETURN_IF_ERROR(Ip(router, {"route", "add", "default", "via", wan_net + ".1"}));
  RETURN_IF_ERROR(
      Ip(router, {"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"}));
  RETURN_IF_ERROR(Ip(router, {"addr", "add", RouterLanAddress(site) + "/24", "dev", "br0"}));
  RETURN_IF_ERROR(Ip(router, {"link", "set", "dev", "br0", "up"}));
  if (s.nat) {
    RETURN_IF_ERROR(Nft(router, NatRules()));
  } else {
    RETURN_IF_ERROR(Ip(inet, {"route", "add", "10." + std::to_string(site + 1) + ".0.0/24", "via",
                              wan_net + ".2"}));
  }
  for (int j = 0; j < s.devices; ++j) {
    RETURN_IF_ERROR(BuildDevice(site, j).WithContext("device " + std::to_string(j)));
  }
  return Status::Ok();
}

Status Topology::BuildDevice(int site, int device) {
  const SiteSpec& s = spec_.sites[site];
  const std::string router = RouterNetns(site), dev = DeviceNetns(site, device);
  const std::string port = "d" + std::to_string(device);
  RETURN_IF_ERROR(CreateNetns(dev));
  RETURN_IF_ERROR(
      AddLink(LinkSpec{LinkEnd{router, port}, LinkEnd{dev, "eth0"}, s.lan_down, s.lan_up,
                       NetnsName(run_id_, "l" + SiteRole(site) + "d" + std::to_string(device))}));
  RETURN_IF_ERROR(Ip(router, {"link", "set", "dev", port, "master", "br0"}));
  RETURN_IF_ERROR(Ip(dev, {"addr", "add", DeviceAddress(site, device) + "/24", "dev", "eth0"}));
  return Ip(dev, {"route", "add", "default", "via", RouterLanAddress(site)});
}

Status Topology::Down() {
  if (down_) return Status::Ok();
  down_ = true;
  Status first;
  for (const std::string& ns : AllNetns()) {
    Status st = DestroyNetns(ns);
    if (!st.ok() && first.ok()) first = st;
  }
  for (pid_t pid : delay_pids_) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  delay_pids_.clear();
  return first;
}

void Topology::Detach() { down_ = true; }

Status Topology::SetSiteWanUp(int site, bool up) {
  if (site < 0 || site >= static_cast<int>(spec_.sites.size()))
    return InvalidArgument("no such site");
  RETURN_IF_ERROR(SetReceiving(LinkEnd{RouterNetns(site), "wan"}, up));
  return SetReceiving(LinkEnd{InetNetns(), "s" + std::to_string(site)}, up);
}

Status Topology::SetDeviceLinkUp(int site, int device, bool up) {
  if (site < 0 || site >= static_cast<int>(spec_.sites.size()) || device < 0 ||
      device >= spec_.sites[site].devices) {
    return InvalidArgument("no such device");
  }
  RETURN_IF_ERROR(SetReceiving(LinkEnd{DeviceNetns(site, device), "eth0"}, up));
  return SetReceiving(LinkEnd{RouterNetns(site), "d" + std::to_string(device)}, up);
}

Result<InterfaceCounters> Topology::SiteWanCounters(int site) const {
  if (site < 0 || site >= static_cast<int>(spec_.sites.size()))
    return InvalidArgument("no such site");
  return ReadInterfaceCounters(RouterNetns(site), "wan");
}

Result<InterfaceCounters> Topology::OriginCounters() const {
  return ReadInterfaceCounters(CloudNetns(), "wan");
}

}  // namespace flotilla::sim
