#include "node/agent/agent_slots.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/canonical_json.h"
#include "core/file_io.h"
#include "core/json_object_reader.h"

namespace flotilla::node::agent {
namespace {

constexpr uint64_t kMaxFileBytes = 64 * 1024;

void ReadCandidate(JsonObjectReader& r, Candidate& c) {
  r.Require({"release", "tries_left"});
  r.Unsigned("release", c.release, 1);
  r.Unsigned("tries_left", c.tries_left, 0, 1);
  r.Int("pid", c.pid, 0);
  r.String("boot_id", c.boot_id);
  r.Int("started_mono_s", c.started_mono_s, 0);
}

void ReadRolledBack(JsonObjectReader& r, RolledBack& b) {
  r.Require({"release", "reason", "at_unix"});
  r.Unsigned("release", b.release, 1);
  r.String("reason", b.reason);
  r.Int("at_unix", b.at_unix);
  r.Bool("reported", b.reported);
}

Json CandidateToJson(const Candidate& c) {
  Json out = {{"release", c.release}, {"tries_left", c.tries_left}};
  if (c.launched()) {
    out["pid"] = c.pid;
    out["boot_id"] = c.boot_id;
    out["started_mono_s"] = c.started_mono_s;
  }
  return out;
}

}  // namespace

Result<AgentSlots> ParseAgentSlots(std::string_view text, std::string_view where) {
  auto json = ParseJsonStrict(text);
  if (!json.ok()) return json.status().WithContext(where);
  AgentSlots slots;
  // A newer agent may add members: the packaged launcher still reads the file.
  JsonObjectReader r(*json, "", UnknownKeys::kIgnore);
  r.Require({"format", "confirmed"});
  uint64_t format = 0;
  r.Unsigned("format", format);
  if (r.status().ok() && format != kAgentSlotsFormat) {
    return Corruption(std::string(where) + ": format " + std::to_string(format) +
                      " is newer than this agent reads (" + std::to_string(kAgentSlotsFormat) +
                      ")");
  }
  r.Unsigned("confirmed", slots.confirmed);
  r.Unsigned("previous", slots.previous);
  r.Unsigned("floor", slots.floor);
  r.Object("candidate", [&](JsonObjectReader& c) { ReadCandidate(c, slots.candidate.emplace()); });
  r.Object("rolled_back",
           [&](JsonObjectReader& b) { ReadRolledBack(b, slots.rolled_back.emplace()); });
  if (Status read = r.Finish(); !read.ok()) {
    return Corruption(std::string(where) + ": " + read.message());
  }
  return slots;
}

std::string AgentSlotsToJson(const AgentSlots& slots) {
  Json doc = {{"format", kAgentSlotsFormat},
              {"confirmed", slots.confirmed},
              {"previous", slots.previous},
              {"floor", slots.floor}};
  if (slots.candidate) doc["candidate"] = CandidateToJson(*slots.candidate);
  if (const auto& b = slots.rolled_back) {
    doc["rolled_back"] = {{"release", b->release},
                          {"reason", b->reason},
                          {"at_unix", b->at_unix},
                          {"reported", b->reported}};
  }
  return doc.dump(2) + "\n";
}

Result<AgentSlots> LoadAgentSlots(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return AgentSlots{};
    return IOErrorFromErrno("stat " + path, errno);
  }
  ASSIGN_OR_RETURN(std::string text, ReadTextFileBounded(path, kMaxFileBytes));
  return ParseAgentSlots(text, path);
}

Status SaveAgentSlots(const std::string& path, const AgentSlots& slots, Env& env) {
  return WriteFileAtomic(path, AgentSlotsToJson(slots), 0600, env).WithContext("save " + path);
}

Result<SlotsLock> SlotsLock::Acquire(const std::string& lock_path) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IOErrorFromErrno("open " + lock_path, errno);
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    return IOErrorFromErrno("lock " + lock_path, err);
  }
  return SlotsLock(fd);
}

SlotsLock::~SlotsLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace flotilla::node::agent
