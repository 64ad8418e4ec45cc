#include "sim/names.h"

#include <sys/random.h>

namespace flotilla::sim {
namespace {

bool IsRunIdChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string NewRunId() {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char random[kRunIdLength];
  size_t got = 0;
  while (got < sizeof random) {
    ssize_t n = ::getrandom(random + got, sizeof random - got, 0);
    if (n > 0) got += n;
  }
  std::string id;
  for (unsigned char r : random) id += kAlphabet[r % kAlphabet.size()];
  return id;
}

Status ValidateRunId(std::string_view run_id) {
  if (run_id.size() != kRunIdLength) {
    return InvalidArgument("run id '" + std::string(run_id) + "' is not " +
                           std::to_string(kRunIdLength) + " characters");
  }
  for (char c : run_id) {
    if (!IsRunIdChar(c))
      return InvalidArgument("run id '" + std::string(run_id) + "' is not [a-z0-9]");
  }
  return Status::Ok();
}

std::string NetnsName(std::string_view run_id, std::string_view role) {
  return std::string(kNetnsPrefix) + std::string(run_id) + "-" + std::string(role);
}

std::optional<std::string> RunIdOfNetns(std::string_view name) {
  if (!name.starts_with(kNetnsPrefix)) return std::nullopt;
  name.remove_prefix(kNetnsPrefix.size());
  if (name.size() < kRunIdLength + 2 || name[kRunIdLength] != '-') return std::nullopt;
  std::string_view id = name.substr(0, kRunIdLength);
  if (!ValidateRunId(id).ok()) return std::nullopt;
  return std::string(id);
}

}  // namespace flotilla::sim
