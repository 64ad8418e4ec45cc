#include "tracker/registry/registry_client.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>

#include "core/canonical_json.h"
#include "core/fd.h"
#include "core/file_io.h"
#include "http/http_client.h"
#include "layerstore/types.h"
#include "tracker/registry/registry_credentials.h"

namespace flotilla::tracker::registry {
namespace {

constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr uint64_t kMaxTokenAnswerBytes = 64 << 10;
constexpr size_t kMaxTokenBytes = 16 << 10;

bool IsIndexType(std::string_view type) { return type == kOciIndex || type == kDockerList; }
bool IsManifestType(std::string_view type) {
  return type == kOciManifest || type == kDockerManifest;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Query-string escaping: RFC 3986 unreserved characters kept.
std::string QueryEscape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The scheme and host name (no port, brackets or user info) of `url`.
bool UrlSchemeAndHost(std::string_view url, std::string& scheme, std::string& hostname) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return false;
  scheme = Lower(std::string(url.substr(0, sep)));
  std::string_view authority = url.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    hostname = std::string(authority.substr(1, close - 1));
  } else {
    hostname = Lower(std::string(authority.substr(0, authority.find(':'))));
  }
  return !hostname.empty();
}

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  Json platform;  // the index entry's platform object, or null
};

Result<Descriptor> ParseDescriptor(const Json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned()) {
    return Corruption(what + ": a descriptor needs a digest and a size");
  }
  Descriptor d;
  auto digest = Digest::Parse(j["digest"].get<std::string>());
  if (!digest.ok()) return Corruption(what + ": only sha256 digests are supported");
  d.digest = *digest;
  d.size = j["size"].get<uint64_t>();
  if (j.contains("mediaType") && j["mediaType"].is_string()) {
    d.media_type = j["mediaType"].get<std::string>();
  }
  if (j.contains("platform") && j["platform"].is_object()) d.platform = j["platform"];
  return d;
}

Result<layerstore::Platform> PlatformOf(const Json& j) {
  if (!j.contains("os") || !j["os"].is_string() || !j.contains("architecture") ||
      !j["architecture"].is_string()) {
    return Corruption("an index entry's platform needs os and architecture");
  }
  layerstore::Platform p;
  p.os = j["os"].get<std::string>();
  p.architecture = j["architecture"].get<std::string>();
  if (j.contains("variant") && j["variant"].is_string())
    p.variant = j["variant"].get<std::string>();
  return p;
}

// One registry, one repository: requests with what authentication the
// registry has asked for so far.
class Session {
 public:
  Session(const RegistryReference& ref, const PullOptions& options,
          std::optional<RegistryCredentials> credentials)
      : ref_(ref),
        options_(options),
        credentials_(std::move(credentials)),
        client_(http::ClientOptions{
            .connect_timeout = std::chrono::milliseconds(options.connect_timeout_ms),
            .read_timeout = std::chrono::milliseconds(options.read_timeout_ms),
            .ca_file = options.ca_file}) {
    // A CA given is TLS asked for, on loopback too.
    const bool plain =
        options.insecure || (IsLoopbackHost(ref.hostname) && options.ca_file.empty());
    base_ = (plain ? "http://" : "https://") + ref.host;
  }

  // Where messages name the registry: scheme://host:port, nothing else.
  std::string Name() const { return http::RedactUrl(base_); }
  const std::string& repository() const { return ref_.repository; }

  // GET base + path; a 2xx body goes to `sink`; a 401 is answered once.
  Result<http::Response> Get(const std::string& path, std::string_view accept, uint64_t max_bytes,
                             const http::BodySink& sink) {
    for (int attempt = 0;; ++attempt) {
      http::Call call;
      call.url = base_ + path;
      call.max_body_bytes = max_bytes;
      call.response_headers = {"WWW-Authenticate", "Docker-Content-Digest", "Content-Type"};
      call.answered_statuses = {401};
      if (!accept.empty()) call.headers.emplace_back("Accept", std::string(accept));
      if (!authorization_.empty()) call.headers.emplace_back("Authorization", authorization_);
      auto answer = client_.Stream(call, sink);
      if (!answer.ok() && IsCertificateRefusal(answer.status())) {
        return CertificateRefused("registry " + Name(), answer.status());
      }
      if (!answer.ok() && base_.starts_with("http://") && !options_.insecure &&
          answer.status().message().find("HTTP 400") != std::string::npos &&
          Lower(answer.status().message()).find("https") != std::string::npos) {
        // A TLS port answers plain http with a 400 naming https ("Client sent
        // an HTTP request to an HTTPS server", "plain HTTP request was sent to
        // HTTPS port").
        return Status(answer.status().code(),
                      answer.status().message() +
                          " (a loopback registry is spoken to in plain http; for https give "
                          "--registry-ca FILE)");
      }
      if (!answer.ok()) return answer.status();
      http::Response response = std::move(answer).value();
      if (response.status != 401) return response;
      if (attempt > 0) {
        return PermissionDenied(fmt::format("registry {} refused {}", Name(), WhatWasSent()));
      }
      RETURN_IF_ERROR(Answer(response));
    }
  }

 private:
  // libcurl's refusal of a server certificate (CURLE_PEER_FAILED_VERIFICATION:
  // an Unavailable whose message names the certificate; a CA file libcurl
  // cannot load is an InvalidArgument, not this).
  static bool IsCertificateRefusal(const Status& st) {
    return st.code() == StatusCode::kUnavailable &&
           st.message().find("certificate") != std::string::npos;
  }
  // That refusal in the operator's terms: which CAs the certificate was
  // checked against and what to give instead (libcurl's words kept after).
  Status CertificateRefused(const std::string& server, const Status& st) const {
    const std::string against = options_.ca_file.empty()
                                    ? "the system's CAs (for a private CA give --registry-ca FILE)"
                                    : "the CAs in --registry-ca " + options_.ca_file;
    return PermissionDenied(fmt::format("{}: its TLS certificate did not verify against {} ({})",
                                        server, against, st.message()));
  }

  std::string WhatWasSent() const {
    if (credentials_) {
      return fmt::format("the credentials for {} in {}", ref_.host, options_.auth_file);
    }
    return "an anonymous token";
  }

  Status NeedCredentials() const {
    return PermissionDenied(fmt::format(
        "registry {} asks for credentials: give --registry-auth FILE with an entry for {}{}",
        Name(), ref_.host,
        options_.auth_file.empty() ? "" : " (" + options_.auth_file + " has none)"));
  }

  // Sets authorization_ from a 401's challenge.
  Status Answer(const http::Response& response) {
    auto header = response.headers.find("www-authenticate");
    if (header == response.headers.end()) {
      return PermissionDenied("registry " + Name() + " answered 401 without a challenge");
    }
    ASSIGN_OR_RETURN(Challenge challenge, ParseChallenge(header->second));
    if (challenge.scheme == "basic") {
      if (!credentials_) return NeedCredentials();
      authorization_ = "Basic " + Base64Encode(credentials_->user + ":" + credentials_->password);
      return Status::Ok();
    }
    if (challenge.scheme == "bearer") return FetchToken(challenge);
    return PermissionDenied("registry " + Name() + " asks for " + challenge.scheme.substr(0, 32) +
                            " authentication, which flotilla does not speak (Basic, Bearer)");
  }

  Status FetchToken(const Challenge& challenge) {
    const std::string realm = challenge.Param("realm");
    std::string scheme, hostname;
    if (realm.empty() || !UrlSchemeAndHost(realm, scheme, hostname) ||
        (scheme != "https" && scheme != "http")) {
      return PermissionDenied("registry " + Name() + ": its bearer challenge has no usable realm");
    }
    const std::string shown = http::RedactUrl(realm);
    if (scheme == "http" && !IsLoopbackHost(hostname) && !options_.insecure) {
      return PermissionDenied("registry " + Name() + " sends for a token to " + shown +
                              ", plain http: refused without --insecure-registry");
    }
    std::string scope = challenge.Param("scope");
    if (scope.empty()) scope = "repository:" + ref_.repository + ":pull";
    std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
    if (std::string service = challenge.Param("service"); !service.empty()) {
      url += "service=" + QueryEscape(service) + "&";
    }
    url += "scope=" + QueryEscape(scope);
    http::Call call;
    call.url = url;
    call.max_body_bytes = kMaxTokenAnswerBytes;
    if (credentials_) {
      call.headers.emplace_back("Authorization", "Basic " + Base64Encode(credentials_->user + ":" +
                                                                         credentials_->password));
    }
    auto answer = client_.Fetch(call);
    if (!answer.ok()) {
      Status st = answer.status();
      if (IsCertificateRefusal(st)) return CertificateRefused("token server " + shown, st);
      if (st.code() == StatusCode::kPermissionDenied) {
        return PermissionDenied("token server " + shown + " for registry " + Name() + " refused " +
                                WhatWasSent());
      }
      return st.WithContext("token server " + shown);
    }
    auto json = ParseJsonStrict(answer->body);
    std::string token;
    if (json.ok() && json->is_object()) {
      for (const char* key : {"token", "access_token"}) {
        if (json->contains(key) && (*json)[key].is_string()) {
          token = (*json)[key].get<std::string>();
          break;
        }
      }
    }
    const bool printable = std::all_of(token.begin(), token.end(),
                                       [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (token.empty() || token.size() > kMaxTokenBytes || !printable) {
      return PermissionDenied("token server " + shown + " answered without a usable token");
    }
    authorization_ = "Bearer " + token;
    return Status::Ok();
  }

  const RegistryReference& ref_;
  const PullOptions& options_;
  std::optional<RegistryCredentials> credentials_;
  http::Client client_;
  std::string base_;
  std::string authorization_;  // never logged
};

struct Manifest {
  std::string bytes;
  Digest digest;
  std::string media_type;
  Json json;
};

// GETs a manifest or index by tag or digest and checks its bytes: against
// `expected` (a digest reference or an index entry) and the registry's
// Docker-Content-Digest.
Result<Manifest> FetchManifest(Session& session, const std::string& reference,
                               const std::optional<Descriptor>& expected) {
  const std::string what = "manifest " + session.repository() + ":" + reference.substr(0, 80) +
                           " from " + session.Name();
  static const std::string accept =
      fmt::format("{}, {}, {}, {}", kOciIndex, kOciManifest, kDockerList, kDockerManifest);
  Manifest m;
  ASSIGN_OR_RETURN(http::Response response,
                   session.Get("/v2/" + session.repository() + "/manifests/" + reference, accept,
                               kMaxManifestBytes, [&](ByteSpan chunk) {
                                 m.bytes.append(AsStringView(chunk));
                                 return Status::Ok();
                               }));
  m.digest = Digest::Of(m.bytes);
  if (expected && (m.digest != expected->digest || m.bytes.size() != expected->size)) {
    return Corruption(fmt::format("{}: its {} bytes hash to {}, not the {} bytes of {}", what,
                                  m.bytes.size(), m.digest.ToString(), expected->size,
                                  expected->digest.ToString()));
  }
  if (auto said = response.headers.find("docker-content-digest"); said != response.headers.end()) {
    auto digest = Digest::Parse(said->second);
    if (digest.ok() && *digest != m.digest) {
      return Corruption(fmt::format("{}: its bytes hash to {}, but the registry says {}", what,
                                    m.digest.ToString(), digest->ToString()));
    }
  }
  auto json = ParseJsonStrict(m.bytes);
  if (!json.ok() || !json->is_object()) return Corruption(what + ": not a JSON object");
  m.json = std::move(json).value();
  if (m.json.contains("mediaType") && m.json["mediaType"].is_string()) {
    m.media_type = m.json["mediaType"].get<std::string>();
  } else if (auto type = response.headers.find("content-type"); type != response.headers.end()) {
    m.media_type = type->second.substr(0, type->second.find(';'));
  }
  if (!IsIndexType(m.media_type) && !IsManifestType(m.media_type)) {
    return InvalidArgument(fmt::format("{}: media type '{}' is not an image index or manifest",
                                       what, m.media_type.substr(0, 100)));
  }
  return m;
}

// Streams a blob into `path`, hashing as it arrives; Corruption unless its
// length and digest are the descriptor's.
// `say` gets a line per `every` bytes.
Status FetchBlob(Session& session, const Descriptor& d, const std::string& path, uint64_t every,
                 const std::function<void(const std::string&)>& say) {
  const std::string what = "blob " + d.digest.ToString() + " from " + session.Name();
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return IOErrorFromErrno("create " + path, errno);
  Sha256Hasher hasher;
  uint64_t next_line = every;
  auto response =
      session.Get("/v2/" + session.repository() + "/blobs/" + d.digest.ToString(), "", d.size,
                  [&](ByteSpan chunk) {
                    hasher.Update(chunk);
                    if (every > 0 && hasher.bytes_hashed() >= next_line) {
                      say(fmt::format("    {}: {} of {} bytes", d.digest.ToString().substr(0, 19),
                                      hasher.bytes_hashed(), d.size));
                      while (next_line <= hasher.bytes_hashed()) next_line += every;
                    }
                    return WriteAll(fd.get(), chunk).WithContext(path);
                  });
  Status st = response.status();
  if (st.code() == StatusCode::kResourceExhausted) {
    st = Corruption(what + ": longer than the " + std::to_string(d.size) +
                    " bytes its descriptor says");
  } else if (st.ok() && hasher.bytes_hashed() != d.size) {
    st = Corruption(
        fmt::format("{}: {} bytes, its descriptor says {}", what, hasher.bytes_hashed(), d.size));
  } else if (st.ok()) {
    const Digest got = hasher.Finish();
    if (got != d.digest) {
      st = Corruption(what + ": its bytes hash to " + got.ToString());
    }
  }
  if (::close(fd.Release()) != 0 && st.ok()) st = IOErrorFromErrno("close " + path, errno);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

// The image entries of `index` with their platforms (attestations and other
// entries without a platform left out), in the index's order.
struct IndexEntry {
  layerstore::Platform platform;
  Descriptor descriptor;
};
Result<std::vector<IndexEntry>> ImageEntries(const Manifest& index, const std::string& what) {
  if (!index.json.contains("manifests") || !index.json["manifests"].is_array()) {
    return Corruption(what + ": an index without a manifests list");
  }
  std::vector<IndexEntry> entries;
  size_t i = 0;
  for (const Json& entry : index.json["manifests"]) {
    ASSIGN_OR_RETURN(Descriptor d,
                     ParseDescriptor(entry, fmt::format("{}: manifests[{}]", what, i++)));
    if (IsIndexType(d.media_type)) {
      return InvalidArgument(what + ": an index inside an index is not supported");
    }
    if (d.platform.is_null()) continue;
    ASSIGN_OR_RETURN(layerstore::Platform p, PlatformOf(d.platform));
    if (p.os == "unknown") continue;  // attestations and other non-images
    entries.push_back({std::move(p), std::move(d)});
  }
  return entries;
}

std::string OfferedText(const std::vector<IndexEntry>& entries) {
  std::string offered;
  for (const auto& entry : entries) offered += " " + entry.platform.ToString();
  return offered.empty() ? " none" : offered;
}

// The entry of `index` for `wanted`; NotFound lists what the index offers.
Result<Descriptor> PickPlatform(const Manifest& index, const layerstore::Platform& wanted,
                                const std::string& what) {
  ASSIGN_OR_RETURN(std::vector<IndexEntry> entries, ImageEntries(index, what));
  for (const auto& entry : entries) {
    if (wanted.Accepts(entry.platform)) return entry.descriptor;
  }
  return NotFound(fmt::format("{}: no image for platform {}; the index offers{}", what,
                              wanted.ToString(), OfferedText(entries)));
}

Json DescriptorJson(const Descriptor& d) {
  Json j{{"mediaType", d.media_type}, {"digest", d.digest.ToString()}, {"size", d.size}};
  if (!d.platform.is_null()) j["platform"] = d.platform;
  return j;
}

}  // namespace

Status CheckCaFile(const std::string& path) {
  auto text = ReadTextFileBounded(path, 1 << 20);
  if (!text.ok()) return text.status().WithContext("--registry-ca");
  if (text->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgument("--registry-ca " + path + ": no PEM certificate in it");
  }
  return Status::Ok();
}

std::string Challenge::Param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return "";
}

Result<Challenge> ParseChallenge(std::string_view header) {
  Challenge c;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
  };
  skip_space();
  const size_t start = i;
  while (i < header.size() && header[i] != ' ') ++i;
  c.scheme = Lower(std::string(header.substr(start, i - start)));
  if (c.scheme.empty()) return PermissionDenied("registry challenge without a scheme");
  while (i < header.size()) {
    skip_space();
    const size_t name_start = i;
    while (i < header.size() && header[i] != '=' && header[i] != ',') ++i;
    std::string name = Lower(std::string(header.substr(name_start, i - name_start)));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (i >= header.size() || header[i] == ',') {
      ++i;
      continue;
    }
    ++i;  // '='
    skip_space();
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value += header[i++];
      }
      if (i >= header.size()) return PermissionDenied("registry challenge: unterminated quote");
      ++i;
    } else {
      while (i < header.size() && header[i] != ',' && header[i] != ' ') value += header[i++];
    }
    c.params.emplace_back(std::move(name), std::move(value));
    skip_space();
    if (i < header.size() && header[i] == ',') ++i;
  }
  return c;
}

// The credentials for `ref`'s host, after checking the CA file: what every
// session needs before its first request.
Result<std::optional<RegistryCredentials>> CredentialsFor(const RegistryReference& ref,
                                                          const PullOptions& options) {
  if (!options.ca_file.empty()) RETURN_IF_ERROR(CheckCaFile(options.ca_file));
  if (options.auth_file.empty()) return std::optional<RegistryCredentials>();
  return LoadRegistryCredentials(options.auth_file, ref.host);
}

Result<Digest> ResolvePlatforms(const RegistryReference& ref, const PullOptions& options,
                                const std::vector<std::string>& platforms) {
  ASSIGN_OR_RETURN(std::optional<RegistryCredentials> credentials, CredentialsFor(ref, options));
  Session session(ref, options, std::move(credentials));
  ASSIGN_OR_RETURN(Manifest top, FetchManifest(session, ref.ManifestRef(), std::nullopt));
  if (ref.digest && top.digest != *ref.digest) {
    return Corruption(fmt::format("manifest {} from {}: its bytes hash to {}", ref.ManifestRef(),
                                  session.Name(), top.digest.ToString()));
  }
  if (!IsIndexType(top.media_type)) {
    if (platforms.size() > 1) {
      return InvalidArgument(fmt::format(
          "{} is a single image, not an index of platforms: --platforms {} needs an index",
          ref.text, fmt::join(platforms, ",")));
    }
    return top.digest;
  }
  const std::string what = "index " + ref.text;
  ASSIGN_OR_RETURN(std::vector<IndexEntry> entries, ImageEntries(top, what));
  std::vector<std::string> missing;
  for (const auto& text : platforms) {
    ASSIGN_OR_RETURN(layerstore::Platform wanted, layerstore::Platform::Parse(text));
    if (std::none_of(entries.begin(), entries.end(),
                     [&](const IndexEntry& entry) { return wanted.Accepts(entry.platform); })) {
      missing.push_back(wanted.ToString());
    }
  }
  if (!missing.empty()) {
    return NotFound(fmt::format("{} ({}): no image for {}; the index offers{}", what,
                                top.digest.ToString().substr(0, 19), fmt::join(missing, ", "),
                                OfferedText(entries)));
  }
  return top.digest;
}

Result<PulledImage> PullToLayout(const RegistryReference& ref, const PullOptions& options,
                                 const std::string& layout_dir, const PullProgressFn& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  layerstore::Platform wanted = layerstore::Platform::Host();
  if (!options.platform.empty()) {
    ASSIGN_OR_RETURN(wanted, layerstore::Platform::Parse(options.platform));
  }
  ASSIGN_OR_RETURN(std::optional<RegistryCredentials> credentials, CredentialsFor(ref, options));
  Session session(ref, options, std::move(credentials));
  const std::string blobs = layout_dir + "/blobs/sha256";
  RETURN_IF_ERROR(CreateDirectories(blobs, 0700));

  say("fetching " + ref.text + " from " + session.Name());
  // A digest reference pins the bytes (their size is learnt from the answer).
  ASSIGN_OR_RETURN(Manifest top, FetchManifest(session, ref.ManifestRef(), std::nullopt));
  if (ref.digest && top.digest != *ref.digest) {
    return Corruption(fmt::format("manifest {} from {}: its bytes hash to {}", ref.ManifestRef(),
                                  session.Name(), top.digest.ToString()));
  }
  PulledImage pulled;
  pulled.source_digest = top.digest;
  Manifest manifest = top;
  Descriptor entry{manifest.media_type, manifest.digest, manifest.bytes.size(), nullptr};
  pulled.platform = wanted.ToString();
  if (IsIndexType(top.media_type)) {
    RETURN_IF_ERROR(WriteFileAtomic(blobs + "/" + top.digest.Hex(), top.bytes));
    ASSIGN_OR_RETURN(entry, PickPlatform(top, wanted, "index " + ref.text));
    ASSIGN_OR_RETURN(layerstore::Platform picked, PlatformOf(entry.platform));
    pulled.platform = picked.ToString();
    say(fmt::format("  index {}: {} is {}", top.digest.ToString().substr(0, 19), pulled.platform,
                    entry.digest.ToString().substr(0, 19)));
    ASSIGN_OR_RETURN(manifest, FetchManifest(session, entry.digest.ToString(), entry));
    if (!IsManifestType(manifest.media_type)) {
      return InvalidArgument("index " + ref.text + ": the entry for " + pulled.platform +
                             " is not an image manifest");
    }
  }
  pulled.manifest = manifest.digest;
  RETURN_IF_ERROR(WriteFileAtomic(blobs + "/" + manifest.digest.Hex(), manifest.bytes));

  const std::string what = "manifest " + manifest.digest.ToString();
  if (!manifest.json.contains("config") || !manifest.json.contains("layers") ||
      !manifest.json["layers"].is_array()) {
    return Corruption(what + " lacks config or layers");
  }
  ASSIGN_OR_RETURN(Descriptor config, ParseDescriptor(manifest.json["config"], what + ": config"));
  if (config.size > kMaxManifestBytes) {
    return ResourceExhausted(fmt::format("{}: its config is {} bytes, over the bound of {}", what,
                                         config.size, kMaxManifestBytes));
  }
  std::vector<Descriptor> layers;
  for (const Json& layer : manifest.json["layers"]) {
    ASSIGN_OR_RETURN(Descriptor d,
                     ParseDescriptor(layer, fmt::format("{}: layers[{}]", what, layers.size())));
    if (d.size > options.max_blob_bytes) {
      return ResourceExhausted(fmt::format("{}: layer {} is {} bytes, over --registry-max-blob {}",
                                           what, d.digest.ToString(), d.size,
                                           options.max_blob_bytes));
    }
    layers.push_back(std::move(d));
  }
  RETURN_IF_ERROR(FetchBlob(session, config, blobs + "/" + config.digest.Hex(), 0, say));
  for (size_t i = 0; i < layers.size(); ++i) {
    const Descriptor& d = layers[i];
    const std::string path = blobs + "/" + d.digest.Hex();
    if (::access(path.c_str(), F_OK) == 0) continue;  // listed twice
    say(fmt::format("  blob {}/{} {}: {} bytes", i + 1, layers.size(),
                    d.digest.ToString().substr(0, 19), d.size));
    RETURN_IF_ERROR(FetchBlob(session, d, path, options.progress_every_bytes, say));
    pulled.blob_bytes += d.size;
  }
  entry.media_type = manifest.media_type;
  Json index{{"schemaVersion", 2}, {"manifests", Json::array({DescriptorJson(entry)})}};
  RETURN_IF_ERROR(WriteFileAtomic(layout_dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  RETURN_IF_ERROR(WriteFileAtomic(layout_dir + "/index.json", index.dump()));
  return pulled;
}

}  // namespace flotilla::tracker::registry
