// A real repository (metadata::Repository in a temp dir) and a real client
// (TufClient over DirectoryRemote on that dir) for the adversarial suite.
// Attacks are made by rewriting the repository's files the way an attacker
// who controls the server or the link could, then refreshing.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ed25519.h"
#include "metadata/repository.h"
#include "metadata/tuf_client.h"

namespace flotilla::metadata::testing {

class AdversarialTest : public ::testing::Test {
 public:
  void SetUp() override;
  void TearDown() override;

  // Creates the repository (threshold 1 for every role unless `root_threshold`).
  void CreateRepository(uint32_t root_threshold = 1);
  // Writes 1.root.json into the client's metadata dir.
  void InitClient();
  // Opens a client and refreshes it.
  Status Refresh(ClientLimits limits = {});
  // A client after a successful refresh (for target tests).
  std::unique_ptr<TufClient> RefreshedClient();

  // signed.version of the client's trusted `file` ("root.json"), 0 when absent.
  uint64_t TrustedVersionOf(const std::string& file) const;
  // Every file of the client's metadata dir (and of target_dir_), name -> bytes.
  std::map<std::string, std::string> TrustedState() const;
  // Refreshes and expects `code` with `message_part` in the message, and the
  // trusted state byte-for-byte unchanged, except for the files in
  // `may_advance`: metadata of an earlier step that verified before the
  // rejected one and that TUF persists (e.g. the timestamp that named a bad
  // snapshot). The rejected role's file is never among them.
  void ExpectRefreshRejected(StatusCode code, std::string_view message_part,
                             ClientLimits limits = {},
                             const std::set<std::string>& may_advance = {});

  // Repository file access for attacks.
  std::string MetadataPath(const std::string& name) const;
  Json ReadSigned(const std::string& name) const;
  // Writes `name` holding `signed_json` signed by `keys` (in order).
  void WriteSigned(const std::string& name, const Json& signed_json,
                   const std::vector<const Ed25519PrivateKey*>& keys) const;
  void WriteRaw(const std::string& name, const std::string& bytes) const;
  std::string ReadRaw(const std::string& name) const;
  // Re-signs `name` after `mutate` changed its signed part.
  void Tamper(const std::string& name, const std::function<void(Json&)>& mutate,
              const std::vector<const Ed25519PrivateKey*>& keys) const;
  // A timestamp.json naming snapshot `name` (its real length and hash), `version`.
  void RewriteTimestampFor(const std::string& snapshot_name, uint64_t version) const;
  // A snapshot `name` naming targets `targets_name`, re-signed; then a timestamp for it.
  void RewriteSnapshotFor(const std::string& snapshot_name, uint64_t snapshot_version,
                          const std::string& targets_name, uint64_t targets_version,
                          uint64_t timestamp_version) const;

  KeyRing AllKeys() const;

  FakeClock clock_;
  std::string temp_dir_;
  std::string repo_dir_;
  std::string client_dir_;
  std::string target_dir_;
  std::vector<Ed25519PrivateKey> root_keys_;
  Ed25519PrivateKey targets_key_ = Ed25519PrivateKey::Generate();
  Ed25519PrivateKey snapshot_key_ = Ed25519PrivateKey::Generate();
  Ed25519PrivateKey timestamp_key_ = Ed25519PrivateKey::Generate();
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<DirectoryRemote> remote_;
};

// Names of files that differ between two TrustedState() results.
std::vector<std::string> ChangedFiles(const std::map<std::string, std::string>& before,
                                      const std::map<std::string, std::string>& after);

// Expects `status` to have `code` and contain `part`.
void ExpectStatus(const Status& status, StatusCode code, std::string_view part);

}  // namespace flotilla::metadata::testing
