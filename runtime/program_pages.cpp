#include "runtime/program_pages.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_io.h"

extern "C" const char __executable_start[];  // GNU ld: the program's first byte

namespace flotilla::runtime {
namespace {

struct Mapping {
  uintptr_t start = 0, end = 0;
  bool writable = false;
  std::string file;  // "device inode", identifies the backing file
  uint64_t anonymous_kb = 0;
};

// /proc/self/smaps as mappings; a mapping header is "start-end perms offset dev inode path".
std::vector<Mapping> ReadMappings(const std::string& smaps) {
  std::vector<Mapping> out;
  size_t pos = 0;
  while (pos < smaps.size()) {
    size_t eol = smaps.find('\n', pos);
    if (eol == std::string::npos) eol = smaps.size();
    std::string line = smaps.substr(pos, eol - pos);
    pos = eol + 1;
    unsigned long long start, end, offset, inode;
    char perms[8] = {}, dev[16] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu", &start, &end, perms, &offset, dev,
                    &inode) == 6) {
      out.push_back({start, end, perms[1] == 'w', std::string(dev) + " " + std::to_string(inode)});
      if (inode == 0) out.back().file.clear();
    } else if (!out.empty() && line.rfind("Anonymous:", 0) == 0) {
      out.back().anonymous_kb = std::strtoull(line.c_str() + 10, nullptr, 10);
    }
  }
  return out;
}

}  // namespace

void DropProgramPages() {
  std::vector<Mapping> mappings;
  {
    auto smaps = ReadTextFileBounded("/proc/self/smaps", 1 << 20);
    if (!smaps.ok()) return;
    mappings = ReadMappings(*smaps);
  }
  const auto anchor = reinterpret_cast<uintptr_t>(__executable_start);
  std::string program;
  for (const auto& m : mappings) {
    if (m.start <= anchor && anchor < m.end) program = m.file;
  }
  if (program.empty()) return;
  for (const auto& m : mappings) {
    if (m.file == program && !m.writable && m.anonymous_kb == 0) {
      ::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED);
    }
  }
  ::malloc_trim(0);  // and the heap the start-up used and freed
}

}  // namespace flotilla::runtime
