// Branch filters (docs/delta.md, "Branch filters"): bijective on any bytes,
// streamed decoding equals whole decoding, ELF headers pick the filter and
// range, and calls to functions that did not move become identical bytes.
#include "layerstore/delta_filter.h"

#include <gtest/gtest.h>

#include <random>

#include "core/file_io.h"
#include "layerstore/test_elf.h"

namespace flotilla::layerstore::delta_internal {
namespace {

using testing::CodeBody;
using testing::ElfFile;
using testing::kElfAarch64;
using testing::kElfArm;
using testing::kElfBodyOffset;
using testing::kElfX8664;

Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

const BranchFilter kFilters[] = {BranchFilter::kX86, BranchFilter::kArm64, BranchFilter::kArmThumb};

uint16_t MachineOf(BranchFilter filter) {
  return filter == BranchFilter::kX86     ? kElfX8664
         : filter == BranchFilter::kArm64 ? kElfAarch64
                                          : kElfArm;
}

// Decodes `filtered` in random pieces through FilterDecoder.
Bytes StreamDecode(const FilterSpec& spec, const Bytes& filtered, std::mt19937_64& rng) {
  FilterDecoder decoder(spec);
  Bytes out;
  const ByteSink sink = [&](ByteSpan b) {
    out.insert(out.end(), b.begin(), b.end());
    return Status::Ok();
  };
  for (size_t at = 0; at < filtered.size();) {
    size_t n = std::min<size_t>(filtered.size() - at, rng() % 9);
    EXPECT_TRUE(decoder.Write(ByteSpan(filtered).subspan(at, n), sink).ok());
    at += n;
  }
  EXPECT_TRUE(decoder.Finish(sink).ok());
  return out;
}

TEST(DeltaFilterTest, EveryFilterIsABijectionWholeAndStreamed) {
  std::mt19937_64 rng(7);
  for (BranchFilter filter : kFilters) {
    for (int round = 0; round < 60; ++round) {
      SCOPED_TRACE(std::to_string(static_cast<int>(filter)) + " round " + std::to_string(round));
      // Code-like bytes (many branches), plain random bytes, or bytes dense
      // in opcodes and in the values a branch's operand checks (overlapping
      // candidates, where a conversion may rewrite a byte an earlier
      // decision read), any range.
      const size_t n = 1 + rng() % 3000;
      std::string raw = round % 3 == 0 ? CodeBody(rng, n, MachineOf(filter), {0, 99, 4096}, 0)
                                       : std::string(n, '\0');
      const uint8_t dense[] = {0xE8, 0xE9, 0x00, 0xFF, 0xFE, 0xF0, 0xF8, 0x94};
      if (round % 3 == 1) {
        for (char& c : raw) c = static_cast<char>(rng());
      } else if (round % 3 == 2) {
        for (char& c : raw) c = static_cast<char>(rng() % 3 ? dense[rng() % 8] : rng());
      }
      Bytes original = ToBytes(raw);
      FilterSpec spec{filter, rng() % (n + 1), 0};
      spec.length = rng() % (n - spec.start + 1);
      Bytes filtered = original;
      ApplyFilter(spec, 0, filtered, /*encode=*/true);
      Bytes decoded = filtered;
      ApplyFilter(spec, 0, decoded, /*encode=*/false);
      EXPECT_TRUE(decoded == original);
      EXPECT_TRUE(StreamDecode(spec, filtered, rng) == original);
      if (round % 3 == 0 && spec.length > 512) {
        EXPECT_FALSE(filtered == original);
      }
    }
  }
}

// An E8 whose operand does not look like a near call, followed within its
// operand by one that does: converting the second rewrites the byte the first
// was judged by (here FE -> FF, the carry of FFFF + pc), and the decoder must
// still judge the first as the encoder did.
TEST(DeltaFilterTest, X86CandidateInsideAnotherKeepsItsDecision) {
  const Bytes original = {0xE8, 0xE8, 0xFF, 0xFF, 0xFE, 0xFF, 0x90,
                          0x90, 0xE9, 0x10, 0x00, 0x00, 0x00};
  const FilterSpec spec{BranchFilter::kX86, 0, original.size()};
  Bytes filtered = original;
  ApplyFilter(spec, 0, filtered, /*encode=*/true);
  EXPECT_FALSE(filtered == original);
  Bytes decoded = filtered;
  ApplyFilter(spec, 0, decoded, /*encode=*/false);
  EXPECT_TRUE(decoded == original);
  std::mt19937_64 rng(3);
  EXPECT_TRUE(StreamDecode(spec, filtered, rng) == original);
}

TEST(DeltaFilterTest, CallsToAFunctionThatDidNotMoveBecomeTheSameBytes) {
  for (BranchFilter filter : kFilters) {
    SCOPED_TRACE(static_cast<int>(filter));
    std::mt19937_64 rng(11);
    const std::string code = CodeBody(rng, 4096, MachineOf(filter), {64}, 1000);
    // The same code 1000 bytes further on: every call changed, the calls'
    // target (offset 64) did not move.
    std::mt19937_64 again(11);
    const std::string moved = CodeBody(again, 4096, MachineOf(filter), {64}, 2000);
    ASSERT_NE(code, moved);
    Bytes a = ToBytes(code), b = ToBytes(moved);
    ApplyFilter({filter, 1000, a.size()}, 1000, a, /*encode=*/true);
    ApplyFilter({filter, 2000, b.size()}, 2000, b, /*encode=*/true);
    EXPECT_TRUE(a == b);
  }
}

TEST(DeltaFilterTest, PieceFilteringMatchesTheWholeFileAwayFromTheEdges) {
  std::mt19937_64 rng(3);
  Bytes file = ToBytes(CodeBody(rng, 8192, kElfAarch64, {0, 512}, 0));
  const FilterSpec spec{BranchFilter::kArm64, 100, 8000};
  Bytes whole = file;
  ApplyFilter(spec, 0, whole, /*encode=*/true);
  Bytes piece(file.begin() + 1000, file.begin() + 3000);
  ApplyFilter(spec, 1000, piece, /*encode=*/true);
  EXPECT_TRUE(std::equal(piece.begin(), piece.end(), whole.begin() + 1000));
}

TEST(DeltaFilterTest, ElfHeadersChooseTheFilterAndTheExecutableRange) {
  std::mt19937_64 rng(5);
  const std::string body(5000, '\x90');
  struct Case {
    uint16_t machine;
    bool wide;
    BranchFilter want;
  };
  for (const Case& c :
       {Case{kElfX8664, true, BranchFilter::kX86}, Case{kElfAarch64, true, BranchFilter::kArm64},
        Case{kElfArm, false, BranchFilter::kArmThumb}}) {
    Bytes elf = ToBytes(ElfFile(c.machine, body, c.wide));
    EXPECT_EQ(FilterForElf(elf, elf.size()), (FilterSpec{c.want, kElfBodyOffset, body.size()}));
    // A segment past the file's end, a header cut short, another machine: none.
    EXPECT_EQ(FilterForElf(elf, elf.size() - 1), FilterSpec{});
    EXPECT_EQ(FilterForElf(ByteSpan(elf).first(60), elf.size()), FilterSpec{});
    Bytes other = elf;
    other[18] = 8;  // MIPS
    EXPECT_EQ(FilterForElf(other, other.size()), FilterSpec{});
  }
  EXPECT_EQ(FilterForElf(ToBytes(std::string(100, 'x')), 100), FilterSpec{});
  // A real executable of this machine.
  auto self = ReadFileBounded("/proc/self/exe", 1 << 30);
  ASSERT_TRUE(self.ok());
  FilterSpec spec = FilterForElf(ByteSpan(*self).first(4096), self->size());
#if defined(__x86_64__)
  EXPECT_EQ(spec.filter, BranchFilter::kX86);
#elif defined(__aarch64__)
  EXPECT_EQ(spec.filter, BranchFilter::kArm64);
#endif
  EXPECT_GT(spec.length, 4096u);
  EXPECT_LE(spec.start + spec.length, self->size());
}

}  // namespace
}  // namespace flotilla::layerstore::delta_internal
