// Internal to the delta codec: branch filters, the executable-aware transform
// applied to ELF files before they are compressed (docs/delta.md, "Branch
// filters"). A call's target is stored relative to the call in machine code,
// so every call to a function changes when code between them moves; written
// as the absolute target, all calls to one function share their bytes, and
// a call whose target did not move stays the same across versions. The
// transform is a bijection on the bytes of any range, so any FilterSpec, even
// a hostile one, decodes to some bytes: the layer's hash is what decides.
#pragma once

#include <cstdint>
#include <span>

#include "core/bytes.h"
#include "core/status.h"
#include "core/zstd_stream.h"

namespace flotilla::layerstore::delta_internal {

enum class BranchFilter : uint8_t {
  kNone = 0,
  kX86 = 1,       // x86 and x86-64: CALL/JMP rel32 (E8/E9) with |rel| < 2^24
  kArm64 = 2,     // AArch64: BL imm26, at 4-byte aligned offsets
  kArmThumb = 3,  // ARM Thumb-2 (Debian armhf): BL imm22, at 2-byte aligned offsets
};
inline constexpr uint8_t kBranchFilters = 4;

// Which filter applies to a file and to which of its bytes: [start, start+length),
// positions counted from the start of the file.
struct FilterSpec {
  BranchFilter filter = BranchFilter::kNone;
  uint64_t start = 0;
  uint64_t length = 0;
  bool operator==(const FilterSpec&) const = default;
};

// The filter an ELF file calls for (from its machine type) over the file
// bytes of its executable segments; kNone for anything else, or when the
// program headers are not within `head` (the file's first bytes).
FilterSpec FilterForElf(ByteSpan head, uint64_t file_size);

// Transforms, in place, `data` holding the file's bytes [offset, offset +
// data.size()): every branch that lies wholly inside both `data` and the
// spec's range, scanning from the first of those bytes. `encode` writes
// absolute targets, !encode restores the relative ones. Whole-file calls with
// offset 0 and piece calls agree except for branches cut by the piece's edges.
void ApplyFilter(const FilterSpec& spec, uint64_t offset, std::span<uint8_t> data, bool encode);

// Decodes a filtered file that arrives in pieces, from its first byte on:
// holds back at most 4 bytes of a branch not yet complete.
class FilterDecoder {
 public:
  explicit FilterDecoder(FilterSpec spec) : spec_(spec) {}
  // Passes the decoded bytes that are final to `sink`.
  Status Write(ByteSpan bytes, const ByteSink& sink);
  // The file ended: passes what is held back, unchanged.
  Status Finish(const ByteSink& sink);

 private:
  FilterSpec spec_;
  uint64_t position_ = 0;  // file offset of pending_[0]
  uint64_t scan_ = 0;      // file offset where the scan continues
  Bytes pending_;
};

}  // namespace flotilla::layerstore::delta_internal
