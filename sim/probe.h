// The measuring probes' wire format and statistics (the socket loops are in
// cli_probe.cpp, `flotilla-sim probe ...`).
//
// A UDP probe datagram (all integers big-endian):
//   magic "FSIM" (4) | kind (1) | seq (8) | sent CLOCK_REALTIME ns (8) | padding
// kind 0 = data (counted), 1 = warm-up (echoed by the sink, not counted; the
// sender starts counting once an echo came back, so ARP on every hop of the
// path is resolved and no data waits in a neighbour queue), 2 = end (seq
// holds the number of data datagrams sent; sent several times).
// One-way delay is the sink's kernel receive timestamp (SO_TIMESTAMPNS,
// CLOCK_REALTIME) minus the sender's: every namespace on one machine shares
// that clock, and the kernel stamp leaves the sink's scheduling out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/canonical_json.h"

namespace flotilla::sim {

inline constexpr size_t kProbeHeaderSize = 21;

enum class ProbeKind : uint8_t { kData = 0, kWarmup = 1, kEnd = 2 };

struct ProbeDatagram {
  ProbeKind kind = ProbeKind::kData;
  uint64_t seq = 0;
  uint64_t sent_ns = 0;
};

// Encodes into a buffer of `size` bytes (at least kProbeHeaderSize).
Bytes EncodeProbe(const ProbeDatagram& d, size_t size);
// Decodes a received datagram; nullopt if it is not a probe.
std::optional<ProbeDatagram> DecodeProbe(ByteSpan data);

// Collects what a UDP sink saw.
class ProbeStats {
 public:
  void AddData(uint64_t seq, int64_t one_way_ns, size_t bytes);
  void SetSent(uint64_t sent) { sent_ = sent; }
  // {"received","sent","bytes","duplicates","reordered","delay_us":{min,mean,p50,max,stddev}}
  Json ToJson() const;

 private:
  std::vector<int64_t> delays_ns_;
  std::vector<bool> seen_;
  uint64_t received_ = 0, bytes_ = 0, duplicates_ = 0, reordered_ = 0;
  uint64_t highest_seq_ = 0;
  std::optional<uint64_t> sent_;
};

}  // namespace flotilla::sim
