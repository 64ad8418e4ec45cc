#include "tracker/publish/agent_release.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "core/canonical_json.h"
#include "core/digest.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "layerstore/plain_tar.h"

namespace flotilla::tracker {
namespace {

constexpr const char* kBinaries[] = {"flotilla-node", "flotilla-node-full", "flotilla-monitor"};
// Bounds on what is read of a binary: its section headers and their names.
constexpr uint64_t kMaxSections = 4096;
constexpr uint64_t kMaxSectionNamesBytes = 1 << 20;

struct ElfShape {
  uint8_t elf_class = 0;  // ELFCLASS32 / ELFCLASS64
  uint16_t machine = 0;
  uint32_t flags = 0;
  uint64_t section_offset = 0;
  uint64_t section_size = 0;  // of one header
  uint64_t sections = 0;
  uint64_t names_index = 0;
};

// What an architecture's binaries look like, and how a person names one.
struct ArchShape {
  const char* name;
  const char* platform;
  uint8_t elf_class;
  uint16_t machine;
  bool hard_float;  // EF_ARM_ABI_FLOAT_HARD
};
constexpr ArchShape kArchs[] = {
    {"amd64", "linux/amd64", ELFCLASS64, EM_X86_64, false},
    {"arm64", "linux/arm64", ELFCLASS64, EM_AARCH64, false},
    {"armhf", "linux/arm/v7", ELFCLASS32, EM_ARM, true},
};

const ArchShape* ShapeOf(std::string_view name) {
  for (const ArchShape& a : kArchs) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

// How a person names the architecture of an ELF header ("arm64", "i386"...).
std::string Describe(const ElfShape& e) {
  for (const ArchShape& a : kArchs) {
    if (e.elf_class != a.elf_class || e.machine != a.machine) continue;
    if (a.hard_float && (e.flags & EF_ARM_ABI_FLOAT_HARD) == 0) return "armel (soft float)";
    return a.name;
  }
  if (e.machine == EM_386) return "i386";
  return "ELF machine " + std::to_string(e.machine) +
         (e.elf_class == ELFCLASS32 ? " (32-bit)" : " (64-bit)");
}

Status ReadExactly(int fd, uint64_t offset, void* into, size_t size, const std::string& path) {
  const ssize_t n = ::pread(fd, into, size, static_cast<off_t>(offset));
  if (n < 0) return IOErrorFromErrno("read " + path, errno);
  if (static_cast<size_t>(n) != size) return InvalidArgument(path + ": truncated ELF file");
  return Status::Ok();
}

Result<ElfShape> ReadElfHeader(int fd, const std::string& path) {
  std::array<unsigned char, sizeof(Elf64_Ehdr)> raw{};
  const ssize_t n = ::pread(fd, raw.data(), raw.size(), 0);
  if (n < 0) return IOErrorFromErrno("read " + path, errno);
  if (n < static_cast<ssize_t>(sizeof(Elf32_Ehdr)) || std::memcmp(raw.data(), ELFMAG, SELFMAG)) {
    return InvalidArgument(path + ": not an ELF executable");
  }
  if (raw[EI_DATA] != ELFDATA2LSB) {
    return InvalidArgument(path + ": a big-endian ELF file; agents are little-endian");
  }
  ElfShape e;
  e.elf_class = raw[EI_CLASS];
  if (e.elf_class == ELFCLASS64 && n == static_cast<ssize_t>(sizeof(Elf64_Ehdr))) {
    Elf64_Ehdr h;
    std::memcpy(&h, raw.data(), sizeof h);
    e = {ELFCLASS64, h.e_machine, h.e_flags, h.e_shoff, h.e_shentsize, h.e_shnum, h.e_shstrndx};
  } else if (e.elf_class == ELFCLASS32) {
    Elf32_Ehdr h;
    std::memcpy(&h, raw.data(), sizeof h);
    e = {ELFCLASS32, h.e_machine, h.e_flags, h.e_shoff, h.e_shentsize, h.e_shnum, h.e_shstrndx};
  } else {
    return InvalidArgument(path + ": not an ELF executable (unknown class)");
  }
  return e;
}

// The names of the binary's sections that hold debug information.
Result<std::vector<std::string>> DebugSections(int fd, const ElfShape& e, const std::string& path) {
  const bool is64 = e.elf_class == ELFCLASS64;
  const uint64_t header_size = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
  if (e.sections == 0) return std::vector<std::string>{};  // no section table: nothing to strip
  if (e.sections > kMaxSections || e.section_size != header_size || e.names_index >= e.sections) {
    return InvalidArgument(path + ": a damaged ELF section table");
  }
  std::vector<unsigned char> table(e.sections * header_size);
  RETURN_IF_ERROR(ReadExactly(fd, e.section_offset, table.data(), table.size(), path));
  // Each section's name offset, and where the names are.
  auto section = [&](uint64_t i) {
    const unsigned char* at = table.data() + i * header_size;
    if (is64) {
      Elf64_Shdr s;
      std::memcpy(&s, at, sizeof s);
      return std::array<uint64_t, 3>{s.sh_name, s.sh_offset, s.sh_size};
    }
    Elf32_Shdr s;
    std::memcpy(&s, at, sizeof s);
    return std::array<uint64_t, 3>{s.sh_name, s.sh_offset, s.sh_size};
  };
  const auto names_section = section(e.names_index);
  if (names_section[2] > kMaxSectionNamesBytes) {
    return InvalidArgument(path + ": a damaged ELF section table (names too long)");
  }
  std::string names(names_section[2], '\0');
  RETURN_IF_ERROR(ReadExactly(fd, names_section[1], names.data(), names.size(), path));
  std::vector<std::string> debug;
  for (uint64_t i = 0; i < e.sections; ++i) {
    const uint64_t at = section(i)[0];
    if (at >= names.size()) return InvalidArgument(path + ": a damaged ELF section name");
    const std::string name(names.c_str() + at);
    if (name.starts_with(".debug_") || name.starts_with(".zdebug_")) debug.push_back(name);
  }
  return debug;
}

std::string JsonBytes(const Json& json) { return CanonicalJson(json).value_or(json.dump()); }

}  // namespace

Result<AgentArch> ParseAgentArch(std::string_view name) {
  const ArchShape* shape = ShapeOf(name);
  if (shape == nullptr) {
    return InvalidArgument("architecture '" + std::string(name) +
                           "': agents are published for amd64, arm64 and armhf");
  }
  return AgentArch{shape->name, shape->platform};
}

Status CheckAgentBinary(const std::string& path, const AgentArch& arch) {
  const ArchShape* want = ShapeOf(arch.name);
  if (want == nullptr) return InvalidArgument("unknown agent architecture " + arch.name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return IOErrorFromErrno("open " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": not a regular file");
  ASSIGN_OR_RETURN(ElfShape e, ReadElfHeader(fd.get(), path));
  const bool float_ok = !want->hard_float || (e.flags & EF_ARM_ABI_FLOAT_HARD) != 0;
  if (e.elf_class != want->elf_class || e.machine != want->machine || !float_ok) {
    return InvalidArgument(path + ": built for " + Describe(e) + ", not " + arch.name +
                           ": give the binaries of the architecture named by --arch");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> debug, DebugSections(fd.get(), e, path));
  if (!debug.empty()) {
    return InvalidArgument(
        path + ": carries debug sections (" + debug.front() +
        (debug.size() > 1 ? " and " + std::to_string(debug.size() - 1) + " more" : "") +
        "), which every device would download: strip them first, keeping them for yourself, "
        "e.g. `objcopy --only-keep-debug F F.debug && strip --strip-debug F` (for another "
        "architecture its binutils' strip, e.g. aarch64-linux-gnu-strip, or llvm-strip)");
  }
  return Status::Ok();
}

Result<std::map<std::string, std::string>> FindAgentBinaries(
    const std::vector<std::string>& inputs) {
  std::map<std::string, std::string> found;
  std::error_code ec;
  if (inputs.size() == 1 && std::filesystem::is_directory(inputs.front(), ec)) {
    for (const char* name : kBinaries) {
      const std::string path = inputs.front() + "/" + name;
      if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
        return NotFound(inputs.front() + " holds no " + name +
                        ": an agent release is flotilla-node, flotilla-node-full and "
                        "flotilla-monitor");
      }
      found[name] = path;
    }
    return found;
  }
  for (const std::string& input : inputs) {
    const std::string name = std::filesystem::path(input).filename().string();
    const bool known = std::any_of(std::begin(kBinaries), std::end(kBinaries),
                                   [&](const char* binary) { return name == binary; });
    if (!known) {
      return InvalidArgument(input +
                             ": not one of flotilla-node, flotilla-node-full, flotilla-monitor "
                             "(give the three binaries under these names, or their directory)");
    }
    if (!found.emplace(name, input).second) return InvalidArgument(name + " is given twice");
  }
  for (const char* name : kBinaries) {
    if (!found.contains(name)) {
      return InvalidArgument(std::string("no ") + name +
                             " given: an agent release is flotilla-node, flotilla-node-full and "
                             "flotilla-monitor");
    }
  }
  return found;
}

Status WriteAgentImage(const std::map<std::string, std::string>& binaries, const AgentArch& arch,
                       const std::string& layout_dir) {
  const std::string blobs = layout_dir + "/blobs/sha256";
  std::error_code ec;
  std::filesystem::create_directories(blobs, ec);
  if (ec) return IOErrorFromErrno("create " + blobs, ec.value());
  // The layer, then named by its digest (uncompressed: its blob is its diff).
  const std::string layer_path = layout_dir + "/layer.tar";
  {
    ASSIGN_OR_RETURN(auto tar, layerstore::PlainTarWriter::Create(layer_path));
    for (const auto& [name, path] : binaries) {
      const uint64_t size = std::filesystem::file_size(path, ec);
      if (ec) return IOErrorFromErrno("stat " + path, ec.value());
      RETURN_IF_ERROR(tar->AddFile(name, path, size, 0755));
    }
    RETURN_IF_ERROR(tar->Close());
  }
  ASSIGN_OR_RETURN(Digest layer, HashFile(layer_path));
  const uint64_t layer_size = std::filesystem::file_size(layer_path, ec);
  if (ec) return IOErrorFromErrno("stat " + layer_path, ec.value());
  std::filesystem::rename(layer_path, blobs + "/" + layer.Hex(), ec);
  if (ec) return IOErrorFromErrno("rename " + layer_path, ec.value());

  const size_t slash = arch.platform.find('/', 6);  // after "linux/"
  Json config = {{"architecture", arch.platform.substr(6, slash - 6)},
                 {"os", "linux"},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.ToString()}}}}};
  if (slash != std::string::npos) config["variant"] = arch.platform.substr(slash + 1);
  const std::string config_bytes = JsonBytes(config);
  const Digest config_digest = Digest::Of(config_bytes);
  const std::string manifest_bytes =
      JsonBytes({{"schemaVersion", 2},
                 {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                 {"config",
                  {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                   {"digest", config_digest.ToString()},
                   {"size", config_bytes.size()}}},
                 {"layers",
                  {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                    {"digest", layer.ToString()},
                    {"size", layer_size}}}}});
  const Digest manifest_digest = Digest::Of(manifest_bytes);
  const std::string index_bytes =
      JsonBytes({{"schemaVersion", 2},
                 {"manifests",
                  {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                    {"digest", manifest_digest.ToString()},
                    {"size", manifest_bytes.size()}}}}});
  // The publish that imports it is the durable step: the layout is staging.
  const std::vector<std::pair<std::string, std::string>> files = {
      {blobs + "/" + config_digest.Hex(), config_bytes},
      {blobs + "/" + manifest_digest.Hex(), manifest_bytes},
      {layout_dir + "/index.json", index_bytes},
      {layout_dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"}};
  for (const auto& [path, bytes] : files) {
    RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
  }
  return Status::Ok();
}

std::string AgentSpecJson(const AgentArch& arch) {
  return Json{{"name", arch.app()}, {"command", {"/flotilla-node", "--version"}}}.dump(2) + "\n";
}

}  // namespace flotilla::tracker
