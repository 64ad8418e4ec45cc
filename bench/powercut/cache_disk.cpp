// An nbdkit plugin: a disk with an SD card's volatile write cache, for the
// power-cut harness (docs/durability.md, "The harness").
//
// The backing file is the card's flash. Every write the guest sends stays in
// a volatile cache (reads see it) until the guest flushes (NBD_CMD_FLUSH, or
// a FUA write, which nbdkit turns into a flush): then the cache goes to the
// flash in arrival order. When the connection ends (the harness killed the
// VM) the power is cut: what is still cached is lost, except for what the
// cut mode keeps, in 4 KiB pages (a flash page is written whole or not):
//   drop     nothing
//   keep     everything (a clean power-off: no cut)
//   prefix   the first k pages in arrival order, k uniform in 0..n
//   subset   each page with probability p, p uniform in [0, 1] per cut: the
//            card wrote its cache back in any order
//   random   prefix or subset, half the cuts each
// Every byte the guest writes is counted (what wears the card), also per
// named region of the disk (the ext4 journal...) from a regions file.
//
// nbdkit --foreground --unix SOCK ./cache_disk.so file=DISK mode=random
//        seed=N report=STATS.json [regions=FILE] [flush_delay_ms=N]
// regions FILE: one "NAME FIRST_BYTE END_BYTE" per line (END exclusive).
// STATS.json (one JSON object) is rewritten after every flush and when the
// plugin unloads.
#define NBDKIT_API_VERSION 2
#include <fcntl.h>
#include <nbdkit-plugin.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kPage = 4096;

struct Region {
  std::string name;
  uint64_t first = 0, end = 0;
  uint64_t bytes = 0;
};

// One write as the guest sent it, widened to whole sectors.
struct CachedWrite {
  uint64_t offset = 0;
  std::string data;
};

// A page-sized piece of a cached write: the unit a cut keeps or loses.
struct CachePage {
  size_t write = 0;
  uint64_t begin = 0, size = 0;  // within the write's data
};

struct Config {
  std::string file, report, regions_file, mode = "drop";
  uint64_t seed = 0;
  unsigned flush_delay_ms = 0;
};

struct Stats {
  uint64_t writes = 0, write_bytes = 0, reads = 0, read_bytes = 0, flushes = 0;
  uint64_t flash_bytes = 0;  // bytes the cache wrote to the flash (at flushes and the cut)
  std::string cut_mode = "none";
  uint64_t cut_pages = 0, cut_kept_pages = 0, cut_bytes = 0, cut_kept_bytes = 0;
  double cut_keep_probability = 0;
};

Config config;
Stats stats;
std::vector<Region> regions;
uint8_t* flash = nullptr;
uint64_t flash_size = 0;
std::vector<CachedWrite> cache;
// Sector number -> (index in `cache`, byte offset in its data) of the newest
// cached copy of that sector; what reads see.
std::unordered_map<uint64_t, std::pair<size_t, uint64_t>> newest;

void WriteReport();

// The disk as the guest sees it: cache over flash.
void ReadThrough(uint8_t* out, uint64_t count, uint64_t offset) {
  std::memcpy(out, flash + offset, count);
  if (newest.empty()) return;
  for (uint64_t sector = offset / kSector; sector * kSector < offset + count; ++sector) {
    auto it = newest.find(sector);
    if (it == newest.end()) continue;
    const auto& [index, at] = it->second;
    const uint64_t s_begin = sector * kSector;
    const uint64_t from = std::max(s_begin, offset),
                   to = std::min(s_begin + kSector, offset + count);
    std::memcpy(out + (from - offset), cache[index].data.data() + at + (from - s_begin), to - from);
  }
}

void CountRegions(uint64_t offset, uint64_t count) {
  for (auto& r : regions) {
    const uint64_t from = std::max(offset, r.first), to = std::min(offset + count, r.end);
    if (from < to) r.bytes += to - from;
  }
}

void ApplyToFlash(const CachedWrite& w, uint64_t begin, uint64_t size) {
  std::memcpy(flash + w.offset + begin, w.data.data() + begin, size);
  stats.flash_bytes += size;
}

void DropCache() {
  cache.clear();
  newest.clear();
}

std::vector<CachePage> Pages() {
  std::vector<CachePage> pages;
  for (size_t i = 0; i < cache.size(); ++i) {
    const CachedWrite& w = cache[i];
    for (uint64_t at = 0; at < w.data.size();) {
      const uint64_t page_end = (w.offset + at) / kPage * kPage + kPage;
      const uint64_t size = std::min<uint64_t>(page_end - (w.offset + at), w.data.size() - at);
      pages.push_back({i, at, size});
      at += size;
    }
  }
  return pages;
}

// The power is cut: keep what the mode keeps, in arrival order, lose the rest.
void Cut() {
  std::mt19937_64 rng(config.seed);
  std::string mode = config.mode;
  if (mode == "random") mode = (rng() & 1) ? "subset" : "prefix";
  const std::vector<CachePage> pages = Pages();
  std::vector<bool> keep(pages.size(), mode == "keep");
  if (mode == "prefix") {
    const uint64_t k = std::uniform_int_distribution<uint64_t>(0, pages.size())(rng);
    std::fill(keep.begin(), keep.begin() + static_cast<std::ptrdiff_t>(k), true);
  } else if (mode == "subset") {
    stats.cut_keep_probability = std::uniform_real_distribution<double>(0, 1)(rng);
    std::bernoulli_distribution coin(stats.cut_keep_probability);
    for (size_t i = 0; i < pages.size(); ++i) keep[i] = coin(rng);
  }
  stats.cut_mode = mode;
  for (size_t i = 0; i < pages.size(); ++i) {
    stats.cut_pages++;
    stats.cut_bytes += pages[i].size;
    if (!keep[i]) continue;
    stats.cut_kept_pages++;
    stats.cut_kept_bytes += pages[i].size;
    ApplyToFlash(cache[pages[i].write], pages[i].begin, pages[i].size);
  }
  DropCache();
}

int LoadRegions() {
  std::ifstream in(config.regions_file);
  if (!in) {
    nbdkit_error("cannot read regions file %s", config.regions_file.c_str());
    return -1;
  }
  Region r;
  while (in >> r.name >> r.first >> r.end) regions.push_back(r);
  return 0;
}

int OnConfig(const char* key, const char* value) {
  const std::string k = key;
  if (k == "file") {
    config.file = value;
  } else if (k == "report") {
    config.report = value;
  } else if (k == "regions") {
    config.regions_file = value;
  } else if (k == "mode") {
    config.mode = value;
    if (config.mode != "drop" && config.mode != "keep" && config.mode != "prefix" &&
        config.mode != "subset" && config.mode != "random") {
      nbdkit_error("mode must be drop, keep, prefix, subset or random, not '%s'", value);
      return -1;
    }
  } else if (k == "seed") {
    config.seed = std::strtoull(value, nullptr, 10);
  } else if (k == "flush_delay_ms") {
    config.flush_delay_ms = static_cast<unsigned>(std::strtoul(value, nullptr, 10));
  } else {
    nbdkit_error("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

int OnConfigComplete() {
  if (config.file.empty()) {
    nbdkit_error("file=DISK is required");
    return -1;
  }
  if (!config.regions_file.empty() && LoadRegions() != 0) return -1;
  int fd = ::open(config.file.c_str(), O_RDWR | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size == 0 || st.st_size % kPage != 0) {
    nbdkit_error("%s: cannot open, or not a whole number of 4 KiB pages", config.file.c_str());
    if (fd >= 0) ::close(fd);
    return -1;
  }
  flash_size = static_cast<uint64_t>(st.st_size);
  void* map = ::mmap(nullptr, flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    nbdkit_error("mmap %s: %s", config.file.c_str(), std::strerror(errno));
    return -1;
  }
  flash = static_cast<uint8_t*>(map);
  return 0;
}

void* OnOpen(int) { return &stats; }

// The guest's connection ends only when the harness killed qemu: the cut.
// The report tells the harness it happened (it stops nbdkit after that).
void OnClose(void*) {
  Cut();
  WriteReport();
}

int64_t OnGetSize(void*) { return static_cast<int64_t>(flash_size); }

int OnCanFlush(void*) { return 1; }

int OnCanFua(void*) { return NBDKIT_FUA_EMULATE; }

int OnPread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  stats.reads++;
  stats.read_bytes += count;
  ReadThrough(static_cast<uint8_t*>(buf), count, offset);
  return 0;
}

int OnPwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t) {
  stats.writes++;
  stats.write_bytes += count;
  CountRegions(offset, count);
  // Widen to whole sectors (read-modify-write of the edges) so that every
  // cached write covers whole sectors.
  const uint64_t begin = offset / kSector * kSector;
  const uint64_t end = std::min(flash_size, (offset + count + kSector - 1) / kSector * kSector);
  CachedWrite w{begin, std::string(end - begin, '\0')};
  auto* data = reinterpret_cast<uint8_t*>(w.data.data());
  if (begin != offset || end != offset + count) ReadThrough(data, end - begin, begin);
  std::memcpy(data + (offset - begin), buf, count);
  const size_t index = cache.size();
  cache.push_back(std::move(w));
  for (uint64_t s = begin; s < end; s += kSector) newest[s / kSector] = {index, s - begin};
  return 0;
}

int OnFlush(void*, uint32_t) {
  stats.flushes++;
  for (const CachedWrite& w : cache) ApplyToFlash(w, 0, w.data.size());
  DropCache();
  WriteReport();  // the harness reads the counters between flushes
  if (config.flush_delay_ms != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(config.flush_delay_ms));
  }
  return 0;
}

// The counters as one JSON object, written to `report` through a temporary
// file and a rename, so a reader never sees half of it.
void WriteReport() {
  if (config.report.empty()) return;
  const std::string temp = config.report + ".tmp";
  FILE* out = std::fopen(temp.c_str(), "w");
  if (out == nullptr) return;
  std::fprintf(out,
               "{\"writes\":%llu,\"write_bytes\":%llu,\"reads\":%llu,\"read_bytes\":%llu,"
               "\"flushes\":%llu,\"flash_bytes\":%llu,\"cut\":{\"mode\":\"%s\",\"pages\":%llu,"
               "\"kept_pages\":%llu,\"bytes\":%llu,\"kept_bytes\":%llu,\"keep_probability\":%.3f},"
               "\"regions\":{",
               (unsigned long long)stats.writes, (unsigned long long)stats.write_bytes,
               (unsigned long long)stats.reads, (unsigned long long)stats.read_bytes,
               (unsigned long long)stats.flushes, (unsigned long long)stats.flash_bytes,
               stats.cut_mode.c_str(), (unsigned long long)stats.cut_pages,
               (unsigned long long)stats.cut_kept_pages, (unsigned long long)stats.cut_bytes,
               (unsigned long long)stats.cut_kept_bytes, stats.cut_keep_probability);
  for (size_t i = 0; i < regions.size(); ++i) {
    std::fprintf(out, "%s\"%s\":%llu", i ? "," : "", regions[i].name.c_str(),
                 (unsigned long long)regions[i].bytes);
  }
  std::fprintf(out, "}}\n");
  std::fclose(out);
  std::rename(temp.c_str(), config.report.c_str());
}

void OnUnload() {
  if (flash != nullptr) {
    ::msync(flash, flash_size, MS_SYNC);
    ::munmap(flash, flash_size);
  }
  WriteReport();
}

nbdkit_plugin MakePlugin() {
  nbdkit_plugin p{};
  p.name = "flotilla-cache-disk";
  p.longname = "a disk with an SD card's volatile write cache, lost at a power cut";
  p.version = "1";
  p.unload = OnUnload;
  p.config = OnConfig;
  p.config_complete = OnConfigComplete;
  p.config_help =
      "file=DISK (required) mode=drop|keep|prefix|subset|random seed=N report=FILE "
      "regions=FILE flush_delay_ms=N";
  p.open = OnOpen;
  p.close = OnClose;
  p.get_size = OnGetSize;
  p.can_flush = OnCanFlush;
  p.can_fua = OnCanFua;
  p.pread = OnPread;
  p.pwrite = OnPwrite;
  p.flush = OnFlush;
  p.errno_is_preserved = 1;
  return p;
}

nbdkit_plugin plugin = MakePlugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
