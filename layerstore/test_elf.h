// Test helper: small ELF files whose executable segment holds code-like bytes
// (branches to a few fixed functions among random filler), for the delta
// codec's branch filters.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace flotilla::layerstore::testing {

inline constexpr uint16_t kElfX8664 = 62, kElfArm = 40, kElfAarch64 = 183;
// Where the executable segment (the body) starts in an ElfFile.
inline constexpr size_t kElfBodyOffset = 256;

// A 64-bit (or, !wide, 32-bit) little-endian ELF shared object for `machine`:
// header, one PT_LOAD R+X program header covering `body`, padding to
// kElfBodyOffset, `body`.
inline std::string ElfFile(uint16_t machine, const std::string& body, bool wide = true) {
  std::string f(kElfBodyOffset, '\0');
  auto put = [&](size_t at, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) f[at + k] = static_cast<char>(v >> (8 * k));
  };
  f[0] = 0x7f, f[1] = 'E', f[2] = 'L', f[3] = 'F';
  f[4] = wide ? 2 : 1;  // class
  f[5] = 1;             // little-endian
  f[6] = 1;             // version
  put(16, 3, 2);        // ET_DYN
  put(18, machine, 2);
  const size_t phoff = wide ? 64 : 52;
  put(wide ? 32 : 28, phoff, wide ? 8 : 4);  // e_phoff
  put(wide ? 54 : 42, wide ? 56 : 32, 2);    // e_phentsize
  put(wide ? 56 : 44, 1, 2);                 // e_phnum
  put(phoff, 1, 4);                          // PT_LOAD
  if (wide) {
    put(phoff + 4, 5, 4);  // R+X
    put(phoff + 8, kElfBodyOffset, 8);
    put(phoff + 32, body.size(), 8);  // p_filesz
  } else {
    put(phoff + 4, kElfBodyOffset, 4);
    put(phoff + 16, body.size(), 4);  // p_filesz
    put(phoff + 24, 5, 4);            // R+X
  }
  return f + body;
}

// `n` bytes of code for `machine` as it would sit at file offset `at`: random
// filler with, every 8-24 bytes, a call to one of `targets` (file offsets).
inline std::string CodeBody(std::mt19937_64& rng, size_t n, uint16_t machine,
                            const std::vector<uint64_t>& targets, uint64_t at) {
  std::string out;
  auto put32 = [&](uint32_t v) {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>(v >> (8 * k)));
  };
  while (out.size() + 8 < n) {
    const uint64_t here = at + out.size();
    const uint64_t target = targets[rng() % targets.size()];
    if (machine == kElfX8664) {
      out.push_back(static_cast<char>(0xE8));
      put32(static_cast<uint32_t>(target - (here + 5)));
    } else if (machine == kElfAarch64 && here % 4 == 0) {
      put32(0x94000000u | (static_cast<uint32_t>((target - here) >> 2) & 0x03FFFFFFu));
    } else if (machine == kElfArm && here % 2 == 0) {
      const uint32_t v = static_cast<uint32_t>((target - (here + 4)) >> 1) & 0x3FFFFFu;
      out.push_back(static_cast<char>(v >> 11));
      out.push_back(static_cast<char>(0xF0 | ((v >> 19) & 7)));
      out.push_back(static_cast<char>(v));
      out.push_back(static_cast<char>(0xF8 | ((v >> 8) & 7)));
    }
    for (int k = 4 + static_cast<int>(rng() % 16); k > 0; --k) {
      // (below 0x80: no filler byte starts or completes a branch)
      out.push_back(static_cast<char>(rng() % 4 == 0 ? rng() % 0x80 : rng() % 16));
    }
  }
  out.resize(n, '\x90');
  return out;
}

}  // namespace flotilla::layerstore::testing
