#include "node/agent/agent_layout.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>

#include "core/file_io.h"

namespace flotilla::node::agent {

bool IsInstalled(const AgentLayout& layout, uint64_t release) {
  struct stat st {};
  const std::string path = layout.full_binary(release);
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR) != 0;
}

std::optional<uint64_t> InstalledReleaseOf(const AgentLayout& layout, const std::string& exe) {
  std::error_code ec;
  auto releases = std::filesystem::weakly_canonical(layout.releases(), ec);
  if (ec) return std::nullopt;
  const std::string prefix = releases.string() + "/";
  const std::string suffix = "/flotilla-node-full";
  if (exe.size() <= prefix.size() + suffix.size() || exe.compare(0, prefix.size(), prefix) != 0 ||
      exe.compare(exe.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string number = exe.substr(prefix.size(), exe.size() - prefix.size() - suffix.size());
  uint64_t release = 0;
  auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), release);
  if (error != std::errc() || end != number.data() + number.size() || release == 0) {
    return std::nullopt;
  }
  return release;
}

std::string ExecutableOf(int64_t pid) {
  std::error_code ec;
  const std::string link = pid == 0 ? "/proc/self/exe" : "/proc/" + std::to_string(pid) + "/exe";
  auto target = std::filesystem::read_symlink(link, ec);
  return ec ? "" : target.string();
}

bool ProcessRuns(int64_t pid, const std::string& binary) {
  struct stat running {
  }, file{};
  const std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  return pid > 0 && ::stat(exe.c_str(), &running) == 0 && ::stat(binary.c_str(), &file) == 0 &&
         running.st_dev == file.st_dev && running.st_ino == file.st_ino;
}

Result<std::string> BootId() {
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded("/proc/sys/kernel/random/boot_id", 128));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return Corruption("/proc/sys/kernel/random/boot_id is empty");
  return text;
}

}  // namespace flotilla::node::agent
