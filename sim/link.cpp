#include "sim/link.h"

#include <algorithm>
#include <mutex>

#include "sim/command.h"
#include "sim/delay_line.h"
#include "sim/names.h"
#include "sim/netns.h"

namespace flotilla::sim {
namespace {

constexpr uint64_t kMaxRateKbit = 10'000'000;
constexpr uint32_t kMaxDelayUs = 10'000'000;
constexpr uint32_t kMaxQueueBytes = 64 << 20;

Status ValidateIfname(const std::string& name) {
  if (name.empty() || name.size() > 15) return InvalidArgument("bad interface name '" + name + "'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return InvalidArgument("bad interface name '" + name + "'");
  }
  return Status::Ok();
}

std::vector<std::string> Ip(const std::string& ns, std::vector<std::string> args) {
  std::vector<std::string> argv = {"ip", "-n", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Status AddVeth(const LinkEnd& x, const LinkEnd& y) {
  return RunChecked({"ip", "link", "add", x.ifname, "netns", x.netns, "type", "veth", "peer",
                     "name", y.ifname, "netns", y.netns})
      .status();
}

// gso_max_segs 1: the stack hands the link one frame per packet, as a real
// link sees them, so tbf charges and the counters count every frame's headers
// (with GSO a 64 KiB super-packet counts its headers once: counters read ~4% low).
Status SetUp(const LinkEnd& end) {
  return RunChecked(Ip(end.netns, {"link", "set", "dev", end.ifname, "gso_max_segs", "1", "up"}))
      .status();
}

uint64_t BytesPerSecond(uint64_t rate_kbit) { return rate_kbit * 1000 / 8; }

uint64_t QueueBytes(const LinkShape& shape) {
  if (shape.queue_bytes > 0) return shape.queue_bytes;
  return std::max<uint64_t>(64 << 10, BytesPerSecond(shape.rate_kbit) / 5);
}

// The middle of a delayed link: L has veth ends a and b, each bridged to a
// TAP (ta, tb) that the delay line joins.
Status CreateDelayedPair(const LinkSpec& spec, CreatedLink& created) {
  const std::string& l = spec.delay_netns;
  if (l.empty()) return InvalidArgument("delayed link needs a delay namespace name");
  created.delay_netns = l;
  RETURN_IF_ERROR(CreateNetns(l));
  RETURN_IF_ERROR(AddVeth(spec.a, LinkEnd{l, "a"}));
  RETURN_IF_ERROR(AddVeth(spec.b, LinkEnd{l, "b"}));
  for (const char* side : {"a", "b"}) {
    std::string tap = std::string("t") + side, bridge = std::string("b") + side;
    RETURN_IF_ERROR(RunChecked(Ip(l, {"tuntap", "add", "dev", tap, "mode", "tap"})).status());
    RETURN_IF_ERROR(RunChecked(Ip(l, {"link", "add", bridge, "type", "bridge", "stp_state", "0",
                                      "forward_delay", "0"}))
                        .status());
    for (const std::string& port : {std::string(side), tap}) {
      RETURN_IF_ERROR(
          RunChecked(Ip(l, {"link", "set", "dev", port, "master", bridge, "up"})).status());
    }
    RETURN_IF_ERROR(RunChecked(Ip(l, {"link", "set", "dev", bridge, "up"})).status());
  }
  DelayLineConfig config;
  config.netns = l;
  config.tap_a = "ta";
  config.tap_b = "tb";
  config.a_to_b = DelaySpec{spec.a_to_b.delay_us, spec.a_to_b.jitter_us};
  config.b_to_a = DelaySpec{spec.b_to_a.delay_us, spec.b_to_a.jitter_us};
  config.seed = std::hash<std::string>{}(l);
  ASSIGN_OR_RETURN(created.delay_line_pid, SpawnDelayLine(config));
  return Status::Ok();
}

// netem on the sender's egress carries delay, jitter and rate in one qdisc.
Status ApplyNetem(const LinkEnd& sender, const LinkShape& shape) {
  std::vector<std::string> argv = {"tc",
                                   "-n",
                                   sender.netns,
                                   "qdisc",
                                   "replace",
                                   "dev",
                                   sender.ifname,
                                   "root",
                                   "netem",
                                   "delay",
                                   std::to_string(shape.delay_us) + "us"};
  if (shape.jitter_us > 0) argv.push_back(std::to_string(shape.jitter_us) + "us");
  if (shape.rate_kbit > 0) {
    argv.insert(argv.end(), {"rate", std::to_string(shape.rate_kbit) + "kbit"});
  }
  argv.insert(argv.end(),
              {"limit", std::to_string(std::max<uint64_t>(1000, QueueBytes(shape) / 1000))});
  return RunChecked(argv).status();
}

}  // namespace

Status ValidateLinkShape(const LinkShape& s) {
  if (s.rate_kbit > kMaxRateKbit) return InvalidArgument("rate over 10 Gbit/s");
  if (s.delay_us > kMaxDelayUs) return InvalidArgument("delay over 10 s");
  if (s.jitter_us > s.delay_us) return InvalidArgument("jitter larger than the delay");
  if (s.loss_ppm >= 1'000'000) return InvalidArgument("loss of 100% or more");
  if (s.queue_bytes > kMaxQueueBytes) return InvalidArgument("queue over 64 MiB");
  return Status::Ok();
}

bool KernelHasNetem() {
  static std::once_flag once;
  static bool has = false;
  std::call_once(once, [] {
    // A throwaway namespace, so the probe touches nothing of the host's.
    // Named like a run's namespace (with no run directory), so that a probe
    // killed half-way is an orphan that `flotilla-sim clean` removes.
    std::string ns = NetnsName(NewRunId(), "netem");
    if (!CreateNetns(ns).ok()) return;
    auto r =
        RunCommand({"tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"});
    has = r.ok() && r->exit_code == 0;
    DestroyNetns(ns).IgnoreError();
  });
  return has;
}

Status ApplyRate(const LinkEnd& sender, const LinkShape& shape) {
  RETURN_IF_ERROR(ValidateIfname(sender.ifname));
  if (shape.rate_kbit == 0) {
    auto r = RunCommand({"tc", "-n", sender.netns, "qdisc", "del", "dev", sender.ifname, "root"});
    return r.status();  // "no qdisc" is fine: nothing to remove
  }
  uint64_t burst = std::max<uint64_t>(4096, BytesPerSecond(shape.rate_kbit) / 100);
  return RunChecked({"tc", "-n", sender.netns, "qdisc", "replace", "dev", sender.ifname, "root",
                     "tbf", "rate", std::to_string(shape.rate_kbit) + "kbit", "burst",
                     std::to_string(burst), "limit", std::to_string(QueueBytes(shape))})
      .status()
      .WithContext("rate on " + sender.netns + "/" + sender.ifname);
}

Status ApplyLoss(const LinkEnd& receiver, const LinkShape& shape) {
  RETURN_IF_ERROR(ValidateIfname(receiver.ifname));
  const std::string table = "fsim_loss_" + receiver.ifname;
  std::string script = "table netdev " + table + "\ndelete table netdev " + table + "\n";
  if (shape.loss_ppm > 0) {
    script += "table netdev " + table +
              " {\n  chain ingress {\n    type filter hook ingress device \"" + receiver.ifname +
              "\" priority 0; policy accept;\n    numgen random mod 1000000 < " +
              std::to_string(shape.loss_ppm) + " drop\n  }\n}\n";
  }
  return RunChecked(InNetns(receiver.netns, {"nft", "-f", "-"}), script)
      .status()
      .WithContext("loss on " + receiver.netns + "/" + receiver.ifname);
}

Status SetReceiving(const LinkEnd& end, bool receiving) {
  RETURN_IF_ERROR(ValidateIfname(end.ifname));
  const std::string table = "fsim_cut_" + end.ifname;
  std::string script = "table netdev " + table + "\ndelete table netdev " + table + "\n";
  if (!receiving) {
    script += "table netdev " + table +
              " {\n  chain ingress {\n    type filter hook ingress device \"" + end.ifname +
              "\" priority -10; policy drop;\n  }\n}\n";
  }
  return RunChecked(InNetns(end.netns, {"nft", "-f", "-"}), script)
      .status()
      .WithContext(std::string(receiving ? "restore " : "cut ") + end.netns + "/" + end.ifname);
}

Status CreateLink(const LinkSpec& spec, CreatedLink& created) {
  RETURN_IF_ERROR(ValidateIfname(spec.a.ifname));
  RETURN_IF_ERROR(ValidateIfname(spec.b.ifname));
  RETURN_IF_ERROR(ValidateLinkShape(spec.a_to_b).WithContext("a->b"));
  RETURN_IF_ERROR(ValidateLinkShape(spec.b_to_a).WithContext("b->a"));
  bool delayed = spec.a_to_b.delayed() || spec.b_to_a.delayed();
  bool netem = delayed && KernelHasNetem();
  if (delayed && !netem) {
    RETURN_IF_ERROR(CreateDelayedPair(spec, created));
  } else {
    RETURN_IF_ERROR(AddVeth(spec.a, spec.b));
  }
  RETURN_IF_ERROR(SetUp(spec.a));
  RETURN_IF_ERROR(SetUp(spec.b));
  const std::pair<const LinkEnd*, const LinkEnd*> directions[] = {{&spec.a, &spec.b},
                                                                  {&spec.b, &spec.a}};
  for (int i = 0; i < 2; ++i) {
    const LinkShape& shape = i == 0 ? spec.a_to_b : spec.b_to_a;
    if (netem && shape.delayed()) {
      RETURN_IF_ERROR(ApplyNetem(*directions[i].first, shape));
    } else if (shape.rate_kbit > 0) {
      RETURN_IF_ERROR(ApplyRate(*directions[i].first, shape));
    }
    if (shape.loss_ppm > 0) RETURN_IF_ERROR(ApplyLoss(*directions[i].second, shape));
  }
  return Status::Ok();
}

}  // namespace flotilla::sim
