#include "node/daemon/carried_fleet_files.h"

#include <charconv>

#include "core/file_io.h"

namespace flotilla::node {
namespace {

// K of "K.root.json", or 0 when `name` is not a versioned root.
uint64_t RootVersionOf(std::string_view name) {
  constexpr std::string_view kSuffix = ".root.json";
  if (!name.ends_with(kSuffix)) return 0;
  const std::string_view digits = name.substr(0, name.size() - kSuffix.size());
  uint64_t version = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return 0;
  return version;
}

Status ReadStrings(const Json& json, const char* member, std::map<std::string, std::string>& out,
                   uint64_t& bytes) {
  const auto it = json.find(member);
  if (it == json.end()) return Status::Ok();
  if (!it->is_object())
    return InvalidArgument(std::string("fleet_files.") + member + " is not an object");
  for (const auto& [name, value] : it->items()) {
    if (!value.is_string()) {
      return InvalidArgument(std::string("fleet_files.") + member + " holds a non-string");
    }
    bytes += name.size() + value.get_ref<const std::string&>().size();
    out.emplace(name, value.get<std::string>());
  }
  return Status::Ok();
}

}  // namespace

Result<CarriedFleetFiles> ParseCarriedFleetFiles(const Json& json, size_t max_files,
                                                 uint64_t max_bytes) {
  if (!json.is_object()) return InvalidArgument("fleet_files is not an object");
  const auto root = json.find("root");
  if (root == json.end() || !root->is_number_unsigned()) {
    return InvalidArgument("fleet_files lacks its root version");
  }
  CarriedFleetFiles carried{.root = root->get<uint64_t>()};
  uint64_t bytes = 0;
  RETURN_IF_ERROR(ReadStrings(json, "metadata", carried.metadata, bytes));
  RETURN_IF_ERROR(ReadStrings(json, "targets", carried.targets, bytes));
  if (carried.metadata.size() + carried.targets.size() > max_files || bytes > max_bytes) {
    return ResourceExhausted("fleet_files carries more than " + std::to_string(max_files) +
                             " files or " + std::to_string(max_bytes) + " bytes");
  }
  return carried;
}

Result<std::string> CarriedRemote::FetchMetadata(const std::string& name, uint64_t max_bytes) {
  if (const auto it = carried_.metadata.find(name); it != carried_.metadata.end()) {
    if (it->second.size() > max_bytes) {
      return ResourceExhausted("carried " + name + " is longer than " + std::to_string(max_bytes) +
                               " bytes");
    }
    return std::string(it->second);
  }
  // What the fleet route answers for a root above the one the roles are signed under.
  if (const uint64_t version = RootVersionOf(name); version > carried_.root) {
    return NotFound(name + ": the tracker offers fleet root versions up to " +
                    std::to_string(carried_.root));
  }
  ++network_fetches_;
  return network_.FetchMetadata(name, max_bytes);
}

Status CarriedRemote::FetchTarget(const std::string& url_path, uint64_t max_bytes,
                                  const std::string& dest_path) {
  if (const auto it = carried_.targets.find(url_path); it != carried_.targets.end()) {
    if (it->second.size() > max_bytes) {
      return ResourceExhausted("carried " + url_path + " is longer than " +
                               std::to_string(max_bytes) + " bytes");
    }
    return WriteFileAtomic(dest_path, it->second, 0644);
  }
  ++network_fetches_;
  return network_.FetchTarget(url_path, max_bytes, dest_path);
}

Result<std::string> NoNetworkRemote::FetchMetadata(const std::string& name, uint64_t) {
  return Unavailable("metadata " + name + " is not carried, and there is no network here");
}

Status NoNetworkRemote::FetchTarget(const std::string& url_path, uint64_t, const std::string&) {
  return Unavailable("target " + url_path + " is not carried, and there is no network here");
}

}  // namespace flotilla::node
