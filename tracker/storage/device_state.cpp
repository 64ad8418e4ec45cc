// A device's fleet repository as one file: its format (device_state.h).
#include "tracker/storage/device_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "core/fd.h"
#include "core/file_io.h"

namespace flotilla::tracker {
namespace {

constexpr size_t kMaxHeaderBytes = 256;

bool IsDecimal(std::string_view s) {
  return !s.empty() && s.size() <= 19 && s[0] != '0' &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

template <typename T>
bool ParseNumber(std::string_view field, T& out) {
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), out);
  return ec == std::errc() && end == field.data() + field.size() && out > 0;
}

Status Bad(std::string_view why) { return Corruption("fleet device state: " + std::string(why)); }

// Parses the header line (without its newline) into `state`; the file count.
Result<size_t> ParseHeader(std::string_view line, DeviceState& state) {
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    const size_t space = line.find(' ', start);
    fields.push_back(line.substr(start, space - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  if (fields.size() != 8 || fields[0] != kDeviceStateFormat) return Bad("not a state file");
  uint64_t* versions[] = {&state.root, &state.targets, &state.snapshot, &state.timestamp};
  for (size_t i = 0; i < 4; ++i) {
    if (!ParseNumber(fields[1 + i], *versions[i])) return Bad("bad version");
  }
  if (!ParseNumber(fields[5], state.expires)) return Bad("bad expiry");
  if (!IsSha256Hex(fields[6])) return Bad("bad document hash");
  state.document_sha256 = fields[6];
  size_t files = 0;
  if (!ParseNumber(fields[7], files) || files > kMaxDeviceStateFiles) return Bad("bad file count");
  return files;
}

// The regular file at `path` (no symlink in its last component), at most
// `max_bytes`; NotFound when there is none.
Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return NotFound("no such file");
    return IOErrorFromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IOErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return NotFound("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return ResourceExhausted(path + ": too large");
  std::string out(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadExact(fd.get(), std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0));
  return out;
}

Result<std::string> ReadBounded(int fd, uint64_t max_bytes) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return IOErrorFromErrno("stat", errno);
  if (!S_ISREG(st.st_mode)) return Bad("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return Bad("too large");
  std::string out(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(PreadExact(fd, std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0));
  return out;
}

}  // namespace

const std::string* DeviceState::Find(std::string_view name) const {
  for (const auto& [file, bytes] : files) {
    if (file == name) return &bytes;
  }
  return nullptr;
}

bool IsDeviceStateFileName(std::string_view name) {
  if (name == "timestamp.json") return true;
  for (std::string_view role :
       {std::string_view(".targets.json"), std::string_view(".snapshot.json")}) {
    if (name.ends_with(role) && IsDecimal(name.substr(0, name.size() - role.size()))) return true;
  }
  constexpr std::string_view kDocument = ".device.json";
  return name.ends_with(kDocument) && IsSha256Hex(name.substr(0, name.size() - kDocument.size()));
}

std::string FormatDeviceState(const DeviceState& state) {
  size_t size = kMaxHeaderBytes;
  for (const auto& [name, bytes] : state.files) size += name.size() + bytes.size() + 24;
  std::string out;
  out.reserve(size);
  out += kDeviceStateFormat;
  for (uint64_t n : {state.root, state.targets, state.snapshot, state.timestamp}) {
    out += ' ';
    out += std::to_string(n);
  }
  out += ' ';
  out += std::to_string(state.expires);
  out += ' ';
  out += state.document_sha256;
  out += ' ';
  out += std::to_string(state.files.size());
  out += '\n';
  for (const auto& [name, bytes] : state.files) {
    out += name;
    out += ' ';
    out += std::to_string(bytes.size());
    out += '\n';
    out += bytes;
    out += '\n';
  }
  return out;
}

Result<DeviceState> ParseDeviceState(std::string_view text) {
  if (text.size() > kMaxDeviceStateBytes) return Bad("too large");
  const size_t eol = text.find('\n');
  if (eol == std::string_view::npos || eol > kMaxHeaderBytes) return Bad("no header line");
  DeviceState state;
  ASSIGN_OR_RETURN(size_t count, ParseHeader(text.substr(0, eol), state));
  text.remove_prefix(eol + 1);
  for (size_t i = 0; i < count; ++i) {
    const size_t line_end = text.find('\n');
    if (line_end == std::string_view::npos || line_end > kMaxHeaderBytes) return Bad("truncated");
    const std::string_view line = text.substr(0, line_end);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return Bad("bad file line");
    const std::string_view name = line.substr(0, space);
    uint64_t length = 0;
    const std::string_view length_text = line.substr(space + 1);
    auto [end, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (ec != std::errc() || end != length_text.data() + length_text.size() ||
        length > kMaxDeviceStateFileBytes || !IsDeviceStateFileName(name) || state.Find(name)) {
      return Bad("bad file line");
    }
    text.remove_prefix(line_end + 1);
    if (text.size() < length + 1 || text[length] != '\n') return Bad("truncated");
    state.files.emplace_back(std::string(name), std::string(text.substr(0, length)));
    text.remove_prefix(length + 1);
  }
  if (!text.empty()) return Bad("trailing bytes");
  // The current version is whole: what its timestamp names is there.
  for (const std::string& name :
       {std::string("timestamp.json"), std::to_string(state.targets) + ".targets.json",
        std::to_string(state.snapshot) + ".snapshot.json",
        state.document_sha256 + ".device.json"}) {
    if (!state.Find(name)) return Bad("no " + name);
  }
  return state;
}

Result<std::optional<DeviceState>> ReadDeviceState(const std::string& device_dir) {
  const std::string path = device_dir + "/" + kDeviceStateFile;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<DeviceState>();
    return IOErrorFromErrno("open " + path, errno);
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadBounded(fd.get(), kMaxDeviceStateBytes));
  auto state = ParseDeviceState(bytes);
  if (!state.ok()) return state.status().WithContext(path);
  return std::optional<DeviceState>(std::move(state).value());
}

Result<std::optional<DeviceState>> ReadDeviceStateHeader(const std::string& device_dir) {
  const std::string path = device_dir + "/" + kDeviceStateFile;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<DeviceState>();
    return IOErrorFromErrno("open " + path, errno);
  }
  char buffer[kMaxHeaderBytes + 1];
  ssize_t n;
  do {
    n = ::pread(fd.get(), buffer, sizeof buffer, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return IOErrorFromErrno("read " + path, errno);
  auto state = ParseDeviceStateHeader(std::string_view(buffer, static_cast<size_t>(n)));
  if (!state.ok()) return state.status().WithContext(path);
  return std::optional<DeviceState>(std::move(state).value());
}

Result<DeviceState> ParseDeviceStateHeader(std::string_view head) {
  const size_t eol = head.find('\n');
  if (eol == std::string_view::npos || eol > kMaxHeaderBytes) return Bad("no header line");
  DeviceState state;
  RETURN_IF_ERROR(ParseHeader(head.substr(0, eol), state).status());
  return state;
}

Result<std::string> ReadDeviceRepositoryFile(const RepositoryLayout& repo, std::string_view id,
                                             std::string_view kind, std::string_view name) {
  // Nothing named leaves the device's directory.
  auto plain = [](std::string_view part) {
    return !part.empty() && part.size() <= 255 && part[0] != '.' &&
           part.find('/') == std::string_view::npos && part.find('\0') == std::string_view::npos;
  };
  if (!plain(id) || !plain(name)) return NotFound("no such file");
  const std::string dir = repo.fleet_device_dir(id);
  ASSIGN_OR_RETURN(std::optional<DeviceState> state, ReadDeviceState(dir));
  if (!state) {
    if (kind != "metadata" && kind != "targets") return NotFound("no such file");
    return ReadRegularFile(dir + "/" + std::string(kind) + "/" + std::string(name),
                           kMaxDeviceStateFileBytes);
  }
  if (kind == "targets") {
    if (!name.ends_with(".device.json")) return NotFound("no such file");
  } else if (kind == "metadata") {
    if (name.ends_with(".device.json")) return NotFound("no such file");
    constexpr std::string_view kRoot = ".root.json";
    uint64_t version = 0;
    if (name == "root.json") {
      version = state->root;
    } else if (name.ends_with(kRoot)) {
      const std::string_view digits = name.substr(0, name.size() - kRoot.size());
      if (!IsDecimal(digits)) return NotFound("no such file");
      std::from_chars(digits.data(), digits.data() + digits.size(), version);
      if (version > state->root) return NotFound("not offered yet");
    }
    if (version != 0) {
      return ReadRegularFile(repo.fleet_root_version_path(version), kMaxDeviceStateFileBytes);
    }
  } else {
    return NotFound("no such file");
  }
  const std::string* bytes = state->Find(name);
  if (!bytes) return NotFound("no such file");
  return *bytes;
}

}  // namespace flotilla::tracker
