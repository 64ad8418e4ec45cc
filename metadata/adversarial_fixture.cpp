#include "metadata/adversarial_fixture.h"

#include <filesystem>

#include "core/file_io.h"
#include "metadata/tuf_signing.h"

namespace flotilla::metadata::testing {
namespace fs = std::filesystem;

void ExpectStatus(const Status& status, StatusCode code, std::string_view part) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_NE(status.message().find(part), std::string::npos)
      << "message '" << status.message() << "' lacks '" << part << "'";
}

void AdversarialTest::SetUp() {
  std::string pattern = fs::temp_directory_path().string() + "/flotilla-tuf-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  temp_dir_ = pattern;
  repo_dir_ = temp_dir_ + "/repo";
  client_dir_ = temp_dir_ + "/client";
  target_dir_ = temp_dir_ + "/targets";
  for (int i = 0; i < 3; ++i) root_keys_.push_back(Ed25519PrivateKey::Generate());
}

void AdversarialTest::TearDown() { fs::remove_all(temp_dir_); }

KeyRing AdversarialTest::AllKeys() const {
  KeyRing ring;
  for (const auto& k : root_keys_) ring.Add(k);
  ring.Add(targets_key_);
  ring.Add(snapshot_key_);
  ring.Add(timestamp_key_);
  return ring;
}

void AdversarialTest::CreateRepository(uint32_t root_threshold) {
  std::map<RoleType, RoleKeyConfig> roles;
  roles[RoleType::kRoot] = {{root_keys_[0].public_key(), root_keys_[1].public_key()},
                            root_threshold};
  roles[RoleType::kTargets] = {{targets_key_.public_key()}, 1};
  roles[RoleType::kSnapshot] = {{snapshot_key_.public_key()}, 1};
  roles[RoleType::kTimestamp] = {{timestamp_key_.public_key()}, 1};
  auto repo = Repository::Create(repo_dir_, roles, AllKeys(), clock_);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  repo_ = std::move(repo).value();
  ASSERT_TRUE(
      repo_->AddTargets({{"apps/demo/release-1.json", "hello fleet\n", Json()}}, AllKeys()).ok());
  remote_ = std::make_unique<DirectoryRemote>(repo_->metadata_dir(), repo_->targets_dir());
}

void AdversarialTest::InitClient() {
  ASSERT_TRUE(TufClient::Initialize(client_dir_, ReadRaw("1.root.json")).ok());
}

Status AdversarialTest::Refresh(ClientLimits limits) {
  auto client = TufClient::Open(client_dir_, *remote_, clock_, limits);
  if (!client.ok()) return client.status();
  return (*client)->Refresh();
}

std::unique_ptr<TufClient> AdversarialTest::RefreshedClient() {
  auto client = TufClient::Open(client_dir_, *remote_, clock_);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  if (!client.ok()) return nullptr;
  Status st = (*client)->Refresh();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return std::move(client).value();
}

uint64_t AdversarialTest::TrustedVersionOf(const std::string& file) const {
  auto text = ReadTextFileBounded(client_dir_ + "/" + file, 1 << 20);
  if (!text.ok()) return 0;
  return Json::parse(*text)["signed"]["version"].get<uint64_t>();
}

std::map<std::string, std::string> AdversarialTest::TrustedState() const {
  std::map<std::string, std::string> state;
  for (const std::string& dir : {client_dir_, target_dir_}) {
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      state[entry.path().string()] = ReadTextFileBounded(entry.path().string(), 64 << 20).value();
    }
  }
  return state;
}

std::vector<std::string> ChangedFiles(const std::map<std::string, std::string>& before,
                                      const std::map<std::string, std::string>& after) {
  std::vector<std::string> changed;
  for (const auto& [path, bytes] : before) {
    auto it = after.find(path);
    if (it == after.end() || it->second != bytes) changed.push_back(fs::path(path).filename());
  }
  for (const auto& [path, bytes] : after) {
    if (!before.contains(path)) changed.push_back(fs::path(path).filename());
  }
  return changed;
}

void AdversarialTest::ExpectRefreshRejected(StatusCode code, std::string_view message_part,
                                            ClientLimits limits,
                                            const std::set<std::string>& may_advance) {
  auto before = TrustedState();
  ASSERT_FALSE(before.empty());
  ExpectStatus(Refresh(limits), code, message_part);
  for (const auto& name : ChangedFiles(before, TrustedState())) {
    EXPECT_TRUE(may_advance.contains(name)) << name << " changed after a rejection";
  }
}

std::string AdversarialTest::MetadataPath(const std::string& name) const {
  return repo_dir_ + "/metadata/" + name;
}

std::string AdversarialTest::ReadRaw(const std::string& name) const {
  return ReadTextFileBounded(MetadataPath(name), 64 << 20).value();
}

Json AdversarialTest::ReadSigned(const std::string& name) const {
  return ParseSignedDocument(ReadRaw(name), 64 << 20).value().signed_json;
}

void AdversarialTest::WriteRaw(const std::string& name, const std::string& bytes) const {
  ASSERT_TRUE(WriteFileAtomic(MetadataPath(name), bytes).ok());
}

void AdversarialTest::WriteSigned(const std::string& name, const Json& signed_json,
                                  const std::vector<const Ed25519PrivateKey*>& keys) const {
  SignedDocument doc = MakeUnsignedDocument(signed_json).value();
  for (const auto* key : keys) AddSignature(doc, *key);
  WriteRaw(name, SerializeDocument(doc));
}

void AdversarialTest::Tamper(const std::string& name, const std::function<void(Json&)>& mutate,
                             const std::vector<const Ed25519PrivateKey*>& keys) const {
  Json signed_json = ReadSigned(name);
  mutate(signed_json);
  WriteSigned(name, signed_json, keys);
}

void AdversarialTest::RewriteTimestampFor(const std::string& snapshot_name,
                                          uint64_t version) const {
  std::string snapshot = ReadRaw(snapshot_name);
  Json ts = ReadSigned("timestamp.json");
  ts["version"] = version;
  ts["meta"]["snapshot.json"] =
      ToJson(MetaFileInfo{ReadSigned(snapshot_name)["version"].get<uint64_t>(),
                          snapshot.size(),
                          {{"sha256", Digest::Of(snapshot).Hex()}}});
  WriteSigned("timestamp.json", ts, {&timestamp_key_});
}

void AdversarialTest::RewriteSnapshotFor(const std::string& snapshot_name,
                                         uint64_t snapshot_version, const std::string& targets_name,
                                         uint64_t targets_version,
                                         uint64_t timestamp_version) const {
  std::string targets = ReadRaw(targets_name);
  Json sn = ReadSigned("snapshot.json");
  sn["version"] = snapshot_version;
  sn["meta"]["targets.json"] = ToJson(
      MetaFileInfo{targets_version, targets.size(), {{"sha256", Digest::Of(targets).Hex()}}});
  WriteSigned(snapshot_name, sn, {&snapshot_key_});
  RewriteTimestampFor(snapshot_name, timestamp_version);
}

}  // namespace flotilla::metadata::testing
