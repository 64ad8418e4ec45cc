#include "runtime/app_config.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "core/bytes.h"
#include "core/canonical_json.h"
#include "core/file_io.h"

namespace flotilla::runtime {
namespace {

const appspec::ConfigVariableSpec* Declared(const appspec::AppSpec& spec, const std::string& name) {
  for (const auto& v : spec.config) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

}  // namespace

std::string ConfigId(const appspec::ConfigValues& values,
                     const std::map<std::string, std::string>& secret_boxes) {
  if (values.empty() && secret_boxes.empty()) return "";
  Json json = Json::object();
  for (const auto& [name, value] : values) json[name] = value;
  if (!secret_boxes.empty()) {
    // Another shape than values alone: the ids of configurations without
    // secrets stay what 0.1.0 nodes computed.
    Json boxes = Json::object();
    for (const auto& [name, box] : secret_boxes) boxes[name] = box;
    json = Json{{"config", std::move(json)}, {"secrets", std::move(boxes)}};
  }
  // libsodium, not core's Sha256Hasher (OpenSSL): the static front end
  // links the runtime without OpenSSL, as runtime.cpp's ShortSha256.
  const std::string canonical = CanonicalJson(json).value_or("");
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(canonical.data()),
                     canonical.size());
  return HexEncode(ByteSpan(digest, sizeof digest)).substr(0, 12);
}

std::string ConfigJsonFile(const appspec::AppSpec& spec, const appspec::ConfigValues& values) {
  Json json = Json::object();
  for (const auto& [name, value] : values) {
    const auto* v = Declared(spec, name);
    if (v != nullptr && v->file) json[name] = value;
  }
  return CanonicalJson(json).value_or("{}") + "\n";
}

std::string ConfigEnvFile(const appspec::AppSpec& spec, const appspec::ConfigValues& values) {
  std::string out;
  for (const auto& [name, value] : values) {
    const auto* v = Declared(spec, name);
    if (v == nullptr || !v->file) continue;
    out += name + "='";
    for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += "'\n";
  }
  return out;
}

Result<appspec::AppSpec> ApplyConfig(const appspec::AppSpec& spec,
                                     const appspec::ConfigValues& values,
                                     const std::string& files_dir, Env& env) {
  RETURN_IF_ERROR(appspec::CheckConfigValues(spec, values).WithContext("configuration"));
  appspec::AppSpec out = spec;
  if (values.empty()) return out;
  // The mount's source must be a clean absolute path (a data_dir given as
  // "data/" or "/var/lib//flotilla" is not).
  std::error_code ec;
  std::string source = std::filesystem::absolute(files_dir, ec).lexically_normal().string();
  while (source.size() > 1 && source.back() == '/') source.pop_back();
  if (ec || !appspec::IsCleanAbsolutePath(source)) {
    return InvalidArgument("configuration directory " + files_dir + " is not a clean path");
  }
  for (const auto& [name, value] : values) {
    if (!Declared(spec, name)->env) continue;
    const std::string prefix = name + "=";
    std::erase_if(out.env, [&](const std::string& e) { return e.starts_with(prefix); });
    out.env.push_back(prefix + value);
  }
  // Written again whole each time (a directory left by a cut-short write is
  // replaced), then closed to writes.
  if (::chmod(files_dir.c_str(), 0755) != 0 && errno != ENOENT) {
    return IOErrorFromErrno("chmod " + files_dir, errno);
  }
  RETURN_IF_ERROR(CreateDurableDirectories(env, files_dir, 0755));
  RETURN_IF_ERROR(
      WriteFileAtomic(files_dir + "/config.json", ConfigJsonFile(spec, values), 0444, env));
  RETURN_IF_ERROR(
      WriteFileAtomic(files_dir + "/config.env", ConfigEnvFile(spec, values), 0444, env));
  if (::chmod(files_dir.c_str(), 0555) != 0) return IOErrorFromErrno("chmod " + files_dir, errno);
  out.mounts.push_back(appspec::MountSpec{
      .type = "bind", .source = source, .destination = kConfigMountPoint, .read_only = true});
  return out;
}

}  // namespace flotilla::runtime
