#include "sim/probe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flotilla::sim {
namespace {

constexpr uint8_t kMagic[4] = {'F', 'S', 'I', 'M'};
constexpr uint64_t kMaxTrackedSeq = 10'000'000;

void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Bytes EncodeProbe(const ProbeDatagram& d, size_t size) {
  Bytes out(std::max(size, kProbeHeaderSize), 0);
  std::memcpy(out.data(), kMagic, 4);
  out[4] = static_cast<uint8_t>(d.kind);
  PutU64(&out[5], d.seq);
  PutU64(&out[13], d.sent_ns);
  return out;
}

std::optional<ProbeDatagram> DecodeProbe(ByteSpan data) {
  if (data.size() < kProbeHeaderSize || std::memcmp(data.data(), kMagic, 4) != 0)
    return std::nullopt;
  if (data[4] > static_cast<uint8_t>(ProbeKind::kEnd)) return std::nullopt;
  return ProbeDatagram{static_cast<ProbeKind>(data[4]), GetU64(&data[5]), GetU64(&data[13])};
}

void ProbeStats::AddData(uint64_t seq, int64_t one_way_ns, size_t bytes) {
  if (seq >= kMaxTrackedSeq) return;  // bounded memory: a sink is not a sponge
  if (seq >= seen_.size()) seen_.resize(seq + 1, false);
  if (seen_[seq]) {
    ++duplicates_;
    return;
  }
  seen_[seq] = true;
  if (received_ > 0 && seq < highest_seq_) ++reordered_;
  highest_seq_ = std::max(highest_seq_, seq);
  ++received_;
  bytes_ += bytes;
  delays_ns_.push_back(one_way_ns);
}

Json ProbeStats::ToJson() const {
  Json out = {{"received", received_},
              {"bytes", bytes_},
              {"duplicates", duplicates_},
              {"reordered", reordered_}};
  out["sent"] = sent_ ? Json(*sent_) : Json(nullptr);
  if (delays_ns_.empty()) return out;
  std::vector<int64_t> sorted = delays_ns_;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0, sq = 0;
  for (int64_t d : sorted) sum += d;
  double mean = sum / sorted.size();
  for (int64_t d : sorted) sq += (d - mean) * (d - mean);
  out["delay_us"] = {{"min", sorted.front() / 1000},
                     {"p50", sorted[sorted.size() / 2] / 1000},
                     {"p95", sorted[sorted.size() * 95 / 100] / 1000},
                     {"max", sorted.back() / 1000},
                     {"mean", static_cast<int64_t>(mean / 1000)},
                     {"stddev", static_cast<int64_t>(std::sqrt(sq / sorted.size()) / 1000)}};
  return out;
}

}  // namespace flotilla::sim
