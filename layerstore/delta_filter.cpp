#include "layerstore/delta_filter.h"

#include <algorithm>

namespace flotilla::layerstore::delta_internal {
namespace {

uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
void Store32(uint8_t* p, uint32_t v) {
  for (int k = 0; k < 4; ++k) p[k] = static_cast<uint8_t>(v >> (8 * k));
}

// Bytes a branch occupies, and the alignment of its first byte.
struct Shape {
  uint64_t width;
  uint64_t align;
};
Shape ShapeOf(BranchFilter filter) {
  switch (filter) {
    case BranchFilter::kX86:
      return {5, 1};
    case BranchFilter::kArm64:
      return {4, 4};
    case BranchFilter::kArmThumb:
      return {4, 2};
    case BranchFilter::kNone:
      break;
  }
  return {1, 1};
}

// Converts the branch at p (file offset `at`) if it is one. Returns how far
// the scan moves on: past a converted branch, 0 for the next aligned offset.
// Every byte a decision reads is one no later conversion rewrites, so that
// the decoder, reading converted bytes, decides as the encoder did.
uint64_t ConvertBranch(BranchFilter filter, uint8_t* p, uint64_t at, bool encode) {
  switch (filter) {
    case BranchFilter::kX86: {
      // CALL/JMP rel32 whose displacement fits 25 bits (top byte 00 or FF);
      // the result is kept in that set, mod 2^25, so that decoding sees the same.
      if (p[0] != 0xE8 && p[0] != 0xE9) return 0;
      // An opcode left alone: a branch starting within its operand would
      // rewrite p[4], so the scan resumes at p[4].
      if (p[4] != 0x00 && p[4] != 0xFF) return 4;
      const uint32_t pc = static_cast<uint32_t>(at + 5);
      uint32_t v = Load32(p + 1);
      v = encode ? v + pc : v - pc;
      v &= (1u << 25) - 1;
      if (v & (1u << 24)) v |= ~((1u << 25) - 1);  // sign-extend from 25 bits
      Store32(p + 1, v);
      return 5;
    }
    case BranchFilter::kArm64: {
      uint32_t insn = Load32(p);
      if ((insn >> 26) != 0x25) return 0;  // BL imm26
      const uint32_t pc = static_cast<uint32_t>(at >> 2);
      uint32_t imm = encode ? insn + pc : insn - pc;
      Store32(p, (insn & 0xFC000000u) | (imm & 0x03FFFFFFu));
      return 4;
    }
    case BranchFilter::kArmThumb: {
      // BL as two halfwords: 11110 imm(3 bits kept) imm8 | 11111 imm3 imm8.
      if ((p[1] & 0xF8) != 0xF0 || (p[3] & 0xF8) != 0xF8) return 0;
      uint32_t v =
          (uint32_t{p[1] & 7u} << 19) | (uint32_t{p[0]} << 11) | (uint32_t{p[3] & 7u} << 8) | p[2];
      const uint32_t pc = static_cast<uint32_t>((at + 4) >> 1);
      v = (encode ? v + pc : v - pc) & 0x3FFFFFu;
      p[1] = static_cast<uint8_t>(0xF0 | ((v >> 19) & 7));
      p[0] = static_cast<uint8_t>(v >> 11);
      p[3] = static_cast<uint8_t>(0xF8 | ((v >> 8) & 7));
      p[2] = static_cast<uint8_t>(v);
      return 4;
    }
    case BranchFilter::kNone:
      break;
  }
  return 0;
}

// Scans `data` (file bytes from `offset`) from file offset `from` for branches
// wholly inside the spec's range. Returns where it stopped: the end of the
// data, or (when `more` data may follow) the first branch that could not be
// read whole yet.
uint64_t Scan(const FilterSpec& spec, uint64_t offset, std::span<uint8_t> data, bool encode,
              uint64_t from, bool more) {
  const uint64_t data_end = offset + data.size();
  if (spec.filter == BranchFilter::kNone || spec.length == 0) return data_end;
  const Shape shape = ShapeOf(spec.filter);
  const uint64_t range_end = spec.start + std::min(spec.length, UINT64_MAX - spec.start);
  uint64_t i = std::max({from, offset, spec.start});
  i += (shape.align - i % shape.align) % shape.align;
  const uint64_t end = std::min(data_end, range_end);
  while (i + shape.width <= range_end && i < end) {
    if (i + shape.width > data_end) return more ? i : data_end;
    const uint64_t step = ConvertBranch(spec.filter, data.data() + (i - offset), i, encode);
    i += step != 0 ? step : shape.align;
  }
  return data_end;
}

uint16_t Load16(ByteSpan b, size_t at, bool little) {
  return little ? b[at] | b[at + 1] << 8 : b[at] << 8 | b[at + 1];
}
uint32_t Load32(ByteSpan b, size_t at, bool little) {
  return little ? Load32(b.data() + at)
                : uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 |
                      b[at + 3];
}
uint64_t LoadWord(ByteSpan b, size_t at, bool little, bool wide) {
  if (!wide) return Load32(b, at, little);
  uint64_t lo = Load32(b, at + (little ? 0 : 4), little);
  uint64_t hi = Load32(b, at + (little ? 4 : 0), little);
  return hi << 32 | lo;
}

}  // namespace

FilterSpec FilterForElf(ByteSpan head, uint64_t file_size) {
  constexpr uint16_t kMachine386 = 3, kMachineArm = 40, kMachineX8664 = 62, kMachineAarch64 = 183;
  if (head.size() < 64 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
    return {};
  }
  const bool wide = head[4] == 2, little = head[5] == 1;
  if ((head[4] != 1 && !wide) || (head[5] != 1 && head[5] != 2)) return {};
  BranchFilter filter = BranchFilter::kNone;
  switch (Load16(head, 18, little)) {
    case kMachine386:
    case kMachineX8664:
      filter = BranchFilter::kX86;
      break;
    case kMachineAarch64:
      filter = little ? BranchFilter::kArm64 : BranchFilter::kNone;
      break;
    case kMachineArm:
      filter = little ? BranchFilter::kArmThumb : BranchFilter::kNone;
      break;
  }
  if (filter == BranchFilter::kNone) return {};
  const uint64_t phoff = LoadWord(head, wide ? 32 : 28, little, wide);
  const uint16_t phentsize = Load16(head, wide ? 54 : 42, little);
  const uint16_t phnum = Load16(head, wide ? 56 : 44, little);
  const uint64_t entry_min = wide ? 56 : 32;
  if (phentsize < entry_min || phoff > head.size() ||
      uint64_t{phnum} * phentsize > head.size() - phoff) {
    return {};
  }
  constexpr uint32_t kLoad = 1, kExecutable = 1;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint16_t k = 0; k < phnum; ++k) {
    const size_t at = phoff + size_t{k} * phentsize;
    const uint32_t flags = Load32(head, at + (wide ? 4 : 24), little);
    if (Load32(head, at, little) != kLoad || (flags & kExecutable) == 0) continue;
    const uint64_t offset = LoadWord(head, at + (wide ? 8 : 4), little, wide);
    const uint64_t size = LoadWord(head, at + (wide ? 32 : 16), little, wide);
    if (offset > file_size || size > file_size - offset) continue;
    lo = std::min(lo, offset);
    hi = std::max(hi, offset + size);
  }
  if (lo >= hi) return {};
  return {filter, lo, hi - lo};
}

void ApplyFilter(const FilterSpec& spec, uint64_t offset, std::span<uint8_t> data, bool encode) {
  Scan(spec, offset, data, encode, offset, /*more=*/false);
}

Status FilterDecoder::Write(ByteSpan bytes, const ByteSink& sink) {
  if (spec_.filter == BranchFilter::kNone) {
    position_ += bytes.size();
    return sink(bytes);
  }
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  scan_ = Scan(spec_, position_, pending_, /*encode=*/false, scan_, /*more=*/true);
  const size_t ready = scan_ - position_;
  RETURN_IF_ERROR(sink(ByteSpan(pending_).first(ready)));
  pending_.erase(pending_.begin(), pending_.begin() + ready);
  position_ = scan_;
  return Status::Ok();
}

Status FilterDecoder::Finish(const ByteSink& sink) {
  Status st = pending_.empty() ? Status::Ok() : sink(pending_);
  position_ += pending_.size();
  pending_.clear();
  scan_ = position_;
  return st;
}

}  // namespace flotilla::layerstore::delta_internal
