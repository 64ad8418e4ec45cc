// Adversarial suite, part 2: timestamp, snapshot and targets metadata:
// rollback, mix-and-match, hashes, expiry, the clock, encodings.
#include <gtest/gtest.h>

#include "metadata/adversarial_fixture.h"
#include "metadata/tuf_signing.h"
#include "metadata/tuf_time.h"

namespace flotilla::metadata::testing {
namespace {

using Adversarial = AdversarialTest;

// Files that a refresh rejected at a later step may have advanced: they verified
// first and TUF persists them (5.4.5, 5.5.7). The rejected role's file never changes.
const std::set<std::string> kTimestampMayAdvance{"timestamp.json"};
const std::set<std::string> kTimestampAndSnapshotMayAdvance{"timestamp.json", "snapshot.json"};

class AdversarialRoles : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    CreateRepository();
    InitClient();
    ASSERT_TRUE(Refresh().ok());
  }
  uint64_t TimestampVersion() const { return repo_->timestamp().common.version; }
  uint64_t SnapshotVersion() const { return repo_->snapshot().common.version; }
  uint64_t TargetsVersion() const { return repo_->targets().common.version; }
  std::string SnapshotName() const { return std::to_string(SnapshotVersion()) + ".snapshot.json"; }
  std::string TargetsName() const { return std::to_string(TargetsVersion()) + ".targets.json"; }
};

TEST_F(AdversarialRoles, TimestampVersionRollbackIsRejected) {
  std::string old_timestamp = ReadRaw("timestamp.json");
  ASSERT_TRUE(repo_->ResignTimestamp(AllKeys()).ok());
  ASSERT_TRUE(Refresh().ok());
  WriteRaw("timestamp.json", old_timestamp);
  ExpectRefreshRejected(StatusCode::kCorruption, "timestamp version rollback");
}

TEST_F(AdversarialRoles, EqualTimestampVersionIsAQuietNoOp) {
  auto before = TrustedState();
  // Same version, different (validly signed) content: kept out, no error.
  Tamper("timestamp.json", [](Json& ts) { ts["expires"] = "2150-01-01T00:00:00Z"; },
         {&timestamp_key_});
  ASSERT_TRUE(Refresh().ok());
  EXPECT_EQ(TrustedState(), before);
}

TEST_F(AdversarialRoles, SnapshotVersionRollbackInTimestampIsRejected) {
  std::string old_snapshot_name = SnapshotName();
  ASSERT_TRUE(repo_->ResignSnapshot(AllKeys()).ok());
  ASSERT_TRUE(Refresh().ok());
  RewriteTimestampFor(old_snapshot_name, TimestampVersion() + 1);
  ExpectRefreshRejected(StatusCode::kCorruption, "snapshot version rollback in timestamp");
}

TEST_F(AdversarialRoles, SnapshotVersionOtherThanTimestampSaysIsRejected) {
  // Snapshot file N+1 that says it is version N.
  std::string name = std::to_string(SnapshotVersion() + 1) + ".snapshot.json";
  Json sn = ReadSigned(SnapshotName());
  WriteSigned(name, sn, {&snapshot_key_});
  Json ts = ReadSigned("timestamp.json");
  ts["version"] = TimestampVersion() + 1;
  ts["meta"]["snapshot.json"] = Json{{"version", SnapshotVersion() + 1}};
  WriteSigned("timestamp.json", ts, {&timestamp_key_});
  ExpectRefreshRejected(StatusCode::kCorruption, "the timestamp names version", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, TargetsVersionRollbackInSnapshotIsRejected) {
  std::string old_targets = TargetsName();
  uint64_t old_targets_version = TargetsVersion();
  ASSERT_TRUE(repo_->ResignTargets(AllKeys()).ok());
  ASSERT_TRUE(Refresh().ok());
  RewriteSnapshotFor(std::to_string(SnapshotVersion() + 1) + ".snapshot.json",
                     SnapshotVersion() + 1, old_targets, old_targets_version,
                     TimestampVersion() + 1);
  ExpectRefreshRejected(StatusCode::kCorruption, "version rollback of targets.json", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, TargetsDroppedFromSnapshotIsRejected) {
  Tamper(SnapshotName(),
         [](Json& sn) {
           sn["meta"]["extra.json"] = Json{{"version", 1}};
         },
         {&snapshot_key_});
  RewriteTimestampFor(SnapshotName(), TimestampVersion() + 1);
  ASSERT_TRUE(Refresh().ok());  // trusted snapshot now lists extra.json
  std::string name = std::to_string(SnapshotVersion() + 1) + ".snapshot.json";
  Json sn = ReadSigned(SnapshotName());
  sn["version"] = SnapshotVersion() + 1;
  sn["meta"].erase("extra.json");
  WriteSigned(name, sn, {&snapshot_key_});
  RewriteTimestampFor(name, TimestampVersion() + 2);
  ExpectRefreshRejected(StatusCode::kCorruption, "no longer lists extra.json", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, SnapshotHashMismatchIsRejected) {
  ASSERT_TRUE(repo_->ResignSnapshot(AllKeys()).ok());
  // Same length, one byte changed: the timestamp's sha256 no longer matches.
  std::string bytes = ReadRaw(SnapshotName());
  bytes[bytes.size() - 2] = bytes[bytes.size() - 2] == ' ' ? '\t' : ' ';
  WriteRaw(SnapshotName(), bytes);
  ExpectRefreshRejected(StatusCode::kCorruption, "does not match its signed sha256", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, SnapshotLengthMismatchIsRejected) {
  ASSERT_TRUE(repo_->ResignSnapshot(AllKeys()).ok());
  std::string bytes = ReadRaw(SnapshotName());
  WriteRaw(SnapshotName(), bytes.substr(0, bytes.size() - 1));  // still ends in '}'
  ExpectRefreshRejected(StatusCode::kCorruption, "the signed length is", {}, kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, SnapshotLongerThanSignedLengthIsCutThere) {
  ASSERT_TRUE(repo_->ResignSnapshot(AllKeys()).ok());
  WriteRaw(SnapshotName(), ReadRaw(SnapshotName()) + std::string(4096, ' '));
  ExpectRefreshRejected(StatusCode::kResourceExhausted, "more than the limit of", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, SnapshotServedAsTimestampIsRejected) {
  WriteRaw("timestamp.json", ReadRaw(SnapshotName()));
  ExpectRefreshRejected(StatusCode::kCorruption,
                        "expected timestamp metadata, got _type 'snapshot'");
}

TEST_F(AdversarialRoles, TimestampServedAsSnapshotIsRejected) {
  // Signed by the snapshot key too, so only the type check can catch it.
  std::string name = std::to_string(SnapshotVersion() + 1) + ".snapshot.json";
  Json ts = ReadSigned("timestamp.json");
  ts["version"] = SnapshotVersion() + 1;
  WriteSigned(name, ts, {&snapshot_key_});
  RewriteTimestampFor(name, TimestampVersion() + 1);
  ExpectRefreshRejected(StatusCode::kCorruption,
                        "expected snapshot metadata, got _type 'timestamp'", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, TargetsSignedBySnapshotKeyIsRejected) {
  std::string name = std::to_string(TargetsVersion() + 1) + ".targets.json";
  Json tg = ReadSigned(TargetsName());
  tg["version"] = TargetsVersion() + 1;
  WriteSigned(name, tg, {&snapshot_key_});
  RewriteSnapshotFor(std::to_string(SnapshotVersion() + 1) + ".snapshot.json",
                     SnapshotVersion() + 1, name, TargetsVersion() + 1, TimestampVersion() + 1);
  ExpectRefreshRejected(StatusCode::kCorruption, "targets: 0 valid signature(s)", {},
                        kTimestampAndSnapshotMayAdvance);
}

TEST_F(AdversarialRoles, ExpiredTimestampIsRejected) {
  Tamper("timestamp.json",
         [&](Json& ts) {
           ts["version"] = TimestampVersion() + 1;
           ts["expires"] = "2020-01-01T00:00:00Z";
         },
         {&timestamp_key_});
  ExpectRefreshRejected(StatusCode::kFailedPrecondition, "timestamp metadata expired");
}

TEST_F(AdversarialRoles, ExpiredSnapshotIsRejected) {
  clock_.Advance(std::chrono::hours(24 * 8));  // snapshot lives 7 days
  ASSERT_TRUE(repo_->ResignTimestamp(AllKeys()).ok());
  ExpectRefreshRejected(StatusCode::kFailedPrecondition, "snapshot metadata expired", {},
                        kTimestampMayAdvance);
}

TEST_F(AdversarialRoles, ExpiredTargetsIsRejected) {
  clock_.Advance(std::chrono::hours(24 * 91));  // targets live 90 days
  ASSERT_TRUE(repo_->ResignSnapshot(AllKeys()).ok());
  ExpectRefreshRejected(StatusCode::kFailedPrecondition, "targets metadata expired", {},
                        kTimestampAndSnapshotMayAdvance);
}

TEST_F(AdversarialRoles, ClockSetBackDoesNotRevalidateExpiredMetadata) {
  // A refresh succeeds at T+2 days: the time floor is now T+2d.
  clock_.Advance(std::chrono::hours(48));
  ASSERT_TRUE(repo_->ResignTimestamp(AllKeys()).ok());
  ASSERT_TRUE(Refresh().ok());
  // An attacker replays a newer-versioned timestamp that expired at T+1d
  // (e.g. signed with a leaked key for a past window) and the device reboots
  // without an RTC, its clock back at T.
  Tamper("timestamp.json",
         [&](Json& ts) {
           ts["version"] = TimestampVersion() + 1;
           ts["expires"] = FormatTufTime(clock_.Now() - std::chrono::hours(24));
         },
         {&timestamp_key_});
  clock_.SetWallTime(clock_.Now() - std::chrono::hours(48));
  ExpectRefreshRejected(StatusCode::kFailedPrecondition, "timestamp metadata expired");
}

TEST_F(AdversarialRoles, OversizedTimestampIsCutAtTheLimit) {
  Tamper("timestamp.json",
         [&](Json& ts) {
           ts["version"] = TimestampVersion() + 1;
           ts["padding"] = std::string(20 << 10, 'x');
         },
         {&timestamp_key_});
  ExpectRefreshRejected(StatusCode::kResourceExhausted, "more than the limit of 16384");
}

TEST_F(AdversarialRoles, DuplicateJsonKeysAreRejected) {
  // A second "version" key after a validly signed document: a parser that
  // keeps the last one would see version 99.
  std::string bytes = ReadRaw("timestamp.json");
  Tamper("timestamp.json", [&](Json& ts) { ts["version"] = TimestampVersion() + 1; },
         {&timestamp_key_});
  std::string fresh = ReadRaw("timestamp.json");
  auto pos = fresh.rfind('}', fresh.rfind('}') - 1);
  fresh.insert(pos, ", \"version\": 99\n");
  WriteRaw("timestamp.json", fresh);
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "duplicate JSON key 'version'");
}

TEST_F(AdversarialRoles, SignatureOverNonCanonicalEncodingIsRejected) {
  Json ts = ReadSigned("timestamp.json");
  ts["version"] = TimestampVersion() + 1;
  std::string pretty = ts.dump(2);  // not the canonical form
  Ed25519Signature sig = timestamp_key_.Sign(AsBytes(pretty));
  Json doc{{"signed", ts},
           {"signatures",
            {{{"keyid", MakeTufKey(timestamp_key_.public_key()).keyid}, {"sig", HexEncode(sig)}}}}};
  WriteRaw("timestamp.json", doc.dump(1));
  ExpectRefreshRejected(StatusCode::kCorruption, "timestamp: 0 valid signature(s)");
}

TEST_F(AdversarialRoles, FloatingPointNumberIsRejected) {
  std::string fresh = ReadRaw("timestamp.json");
  auto pos = fresh.find("\"version\": ");
  ASSERT_NE(pos, std::string::npos);
  fresh.insert(fresh.find_first_of(",\n}", pos + 11), ".0");
  WriteRaw("timestamp.json", fresh);
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "floating-point");
}

TEST_F(AdversarialRoles, TrailingBytesAreRejected) {
  Tamper("timestamp.json", [&](Json& ts) { ts["version"] = TimestampVersion() + 1; },
         {&timestamp_key_});
  WriteRaw("timestamp.json", ReadRaw("timestamp.json") + "{}");
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "malformed JSON");
}

TEST_F(AdversarialRoles, NegativeVersionIsRejected) {
  Tamper("timestamp.json", [&](Json& ts) { ts["version"] = -5; }, {&timestamp_key_});
  ExpectRefreshRejected(StatusCode::kInvalidArgument,
                        "signed.version: must be an unsigned integer");
}

TEST_F(AdversarialRoles, MalformedExpiryIsRejected) {
  Tamper("timestamp.json",
         [&](Json& ts) {
           ts["version"] = TimestampVersion() + 1;
           ts["expires"] = "2100-01-01 00:00:00";
         },
         {&timestamp_key_});
  ExpectRefreshRejected(StatusCode::kInvalidArgument, "is not of the form YYYY-MM-DDTHH:MM:SSZ");
}

TEST_F(AdversarialRoles, MissingTimestampIsAnErrorAndChangesNothing) {
  std::filesystem::remove(MetadataPath("timestamp.json"));
  ExpectRefreshRejected(StatusCode::kNotFound, "timestamp.json does not exist");
}

}  // namespace
}  // namespace flotilla::metadata::testing
