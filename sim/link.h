// A link between two namespaces, shaped in each direction.
//
// A link is a veth pair whose ends are created directly inside the two
// namespaces. Each direction can be shaped by three elements:
//   rate   tbf on the sending end's egress (serialisation and a bounded queue);
//   delay  the harness's own user-space delay line (sim/delay_line.h): when a
//          direction of the link has a delay or jitter, the pair is cut in
//          two and a "link namespace" in the middle bridges each side to a
//          TAP device that a delay-line process reads and writes, a
//          transparent L2 wire (ARP included) with latency; netem is used
//          instead when the kernel has it;
//   loss   nft `numgen random` in a netdev ingress chain of the receiving end,
//          so a lost frame has used the rate, as on a radio link.
// Order on the wire: sender egress -> tbf -> delay line -> loss -> receiver.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace flotilla::sim {

// How one direction of a link is shaped. Zero means "not shaped".
struct LinkShape {
  uint64_t rate_kbit = 0;    // L2 bit rate (Ethernet headers count), 0 = unlimited
  uint32_t delay_us = 0;     // one-way latency added
  uint32_t jitter_us = 0;    // each frame's delay is delay +- uniform(jitter); order kept
  uint32_t loss_ppm = 0;     // frames lost per million (10000 = 1%)
  uint32_t queue_bytes = 0;  // tbf queue; 0 = max(64 KiB, 200 ms at the rate)

  bool delayed() const { return delay_us > 0 || jitter_us > 0; }
  bool shaped() const { return rate_kbit > 0 || delayed() || loss_ppm > 0; }
  friend bool operator==(const LinkShape&, const LinkShape&) = default;
};

// Refuses values a Pi fleet could not mean: > 10 Gbit, > 10 s delay,
// jitter > delay, loss >= 100%, queues > 64 MiB.
Status ValidateLinkShape(const LinkShape& shape);

struct LinkEnd {
  std::string netns;
  std::string ifname;  // name inside `netns`, at most 15 characters
};

struct LinkSpec {
  LinkEnd a;
  LinkEnd b;
  LinkShape a_to_b;
  LinkShape b_to_a;
  // Namespace created for the delay line when the link is delayed and the
  // kernel has no netem; unused otherwise.
  std::string delay_netns;
};

// What CreateLink made that someone must tear down.
struct CreatedLink {
  std::string delay_netns;   // empty if none was made
  pid_t delay_line_pid = 0;  // a child of this process; 0 if none
};

// True when `tc qdisc add ... netem` works on this kernel (probed once).
bool KernelHasNetem();

// Creates the veth pair (ends up, no addresses) and shapes it. `created` is
// filled as things are made, so that on failure too the caller knows the
// delay namespace and the child to reap; destroying the namespaces named
// (ends and delay namespace) removes everything else.
Status CreateLink(const LinkSpec& spec, CreatedLink& created);

// Replaces the rate and loss of a live link's direction (delay is fixed at
// creation). `sender`/`receiver` are the ends for that direction.
Status ApplyRate(const LinkEnd& sender, const LinkShape& shape);
Status ApplyLoss(const LinkEnd& receiver, const LinkShape& shape);

// Cuts (or restores) one end's reception entirely: every frame arriving at
// `end` is dropped, as when a radio loses coverage. Interfaces stay up, so
// routes, ARP entries and sockets survive and traffic resumes on restore.
Status SetReceiving(const LinkEnd& end, bool receiving);

}  // namespace flotilla::sim
