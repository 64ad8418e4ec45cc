// Operators in the database on both engines: accounts and the last-admin
// rule, tokens (expiry, revocation, disabled accounts), sessions (idle and
// absolute expiry), the role table, the audit log; and a 0.1.0 tracker.db
// migrated.
#include "tracker/storage/operator_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "tests/support/engine_test.h"
#include "tracker/storage/device_db.h"

namespace flotilla::tracker {
namespace {

constexpr char kPassword[] = "correct horse battery";

class OperatorStoreTest : public testing::EngineTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpEngine("operators"));
    auto store = OperatorStore::Open(url_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    store_->set_actor("local:test");
  }

  std::vector<AuditEntry> Audit(const std::string& actor = "") {
    return ListAudit(store_->engine(), {.actor = actor}).value();
  }

  FakeClock clock_;
  std::unique_ptr<OperatorStore> store_;
};

TEST_P(OperatorStoreTest, AccountsKeepAnEnabledAdmin) {
  EXPECT_FALSE(store_->HasOperators().value());
  EXPECT_EQ(store_->Add("viewer", "read-only", kPassword).code(), StatusCode::kFailedPrecondition)
      << "the first account is an admin";
  EXPECT_EQ(store_->Add("alice", "admin", "short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Add("al ice", "admin", kPassword).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Add("alice", "root", kPassword).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Add("alice", "admin", kPassword).ok());
  EXPECT_TRUE(store_->HasOperators().value());
  EXPECT_EQ(store_->Add("alice", "admin", kPassword).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->Add("dave", "deployer", kPassword).ok());

  // The only admin can be neither removed, disabled nor demoted.
  EXPECT_EQ(store_->Remove("alice").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetDisabled("alice", true).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetRole("alice", "deployer").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetRole("nobody", "admin").code(), StatusCode::kNotFound);
  // With a second admin it can.
  ASSERT_TRUE(store_->SetRole("dave", "admin").ok());
  ASSERT_TRUE(store_->SetRole("alice", "read-only").ok());
  ASSERT_TRUE(store_->SetDisabled("alice", true).ok());
  auto accounts = store_->List().value();
  ASSERT_EQ(accounts.size(), 2u);
  EXPECT_EQ(accounts[0].name, "alice");
  EXPECT_EQ(accounts[0].role, "read-only");
  EXPECT_TRUE(accounts[0].disabled);
  EXPECT_EQ(accounts[1].role, "admin");
  ASSERT_TRUE(store_->Remove("alice").ok());
  EXPECT_EQ(store_->Remove("alice").code(), StatusCode::kNotFound);

  std::vector<std::string> actions;
  for (const AuditEntry& e : Audit()) {
    EXPECT_EQ(e.actor, "local:test");
    EXPECT_EQ(e.outcome, "ok");
    actions.push_back(e.action + " " + e.target);
  }
  // Newest first; refused changes left no row.
  EXPECT_EQ(actions, (std::vector<std::string>{"operator.remove alice", "operator.disable alice",
                                               "operator.set-role alice", "operator.set-role dave",
                                               "operator.add dave", "operator.add alice"}));
}

TEST_P(OperatorStoreTest, TokensActAsTheirAccountUntilRevokedExpiredOrDisabled) {
  ASSERT_TRUE(store_->Add("alice", "admin", kPassword).ok());
  ASSERT_TRUE(store_->Add("ci", "deployer", kPassword).ok());
  auto token = store_->CreateToken("ci", "prometheus", 3600);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_TRUE(token->starts_with("flop_"));
  EXPECT_EQ(token->size(), 5u + 64u);
  auto forever = store_->CreateToken("ci", "", 0).value();
  EXPECT_EQ(store_->CreateToken("nobody", "", 0).status().code(), StatusCode::kNotFound);

  auto who = store_->AuthenticateToken(*token);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->name, "ci");
  EXPECT_EQ(who->role, "deployer");
  // A role change applies to the next request.
  ASSERT_TRUE(store_->SetRole("ci", "read-only").ok());
  EXPECT_EQ(store_->AuthenticateToken(*token)->role, "read-only");

  // Not a token: the same bytes without the prefix, a guess.
  EXPECT_EQ(store_->AuthenticateToken(token->substr(5)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->AuthenticateToken("flop_" + std::string(64, '0')).status().code(),
            StatusCode::kPermissionDenied);

  // Disabled: refused; enabled again: accepted.
  ASSERT_TRUE(store_->SetDisabled("ci", true).ok());
  EXPECT_EQ(store_->AuthenticateToken(*token).status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(store_->SetDisabled("ci", false).ok());
  EXPECT_TRUE(store_->AuthenticateToken(*token).ok());

  clock_.Advance(std::chrono::seconds(3600));
  EXPECT_EQ(store_->AuthenticateToken(*token).status().message(), "operator token expired");
  EXPECT_TRUE(store_->AuthenticateToken(forever).ok());
  auto tokens = store_->Tokens("ci").value();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].StateAt(1'800'003'600), "expired");
  EXPECT_EQ(tokens[1].StateAt(1'800'003'600), "active");
  EXPECT_GT(tokens[1].last_used_at, 0);
  ASSERT_TRUE(store_->RevokeToken(tokens[1].id).ok());
  EXPECT_EQ(store_->AuthenticateToken(forever).status().message(), "operator token revoked");
  EXPECT_EQ(store_->RevokeToken(999).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->List().value()[1].tokens, 0);

  // Removing the account deletes its tokens.
  ASSERT_TRUE(store_->Remove("ci").ok());
  EXPECT_TRUE(store_->Tokens("ci").value().empty());
}

TEST_P(OperatorStoreTest, SessionsExpireAndLoginsAreAudited) {
  ASSERT_TRUE(store_->Add("alice", "admin", kPassword).ok());
  ASSERT_TRUE(store_->Add("bob", "deployer", kPassword).ok());
  EXPECT_EQ(store_->Login("alice", "wrong password!", "127.0.0.1").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(store_->Login("nobody", kPassword, "127.0.0.1").status().message(),
            "wrong name or password");
  EXPECT_EQ(store_->Login("<script>", kPassword, "127.0.0.1").status().code(),
            StatusCode::kPermissionDenied);
  auto session = store_->Login("alice", kPassword, "127.0.0.1");
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_EQ(session->cookie.size(), 64u);
  EXPECT_EQ(session->csrf, CsrfTokenOf(session->cookie));
  EXPECT_NE(session->csrf, session->cookie);
  EXPECT_EQ(store_->AuthenticateSession(session->cookie)->name, "alice");
  EXPECT_FALSE(store_->AuthenticateSession(session->csrf).ok());

  // Idle: each request within 30 minutes keeps it.
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(std::chrono::minutes(20));
    ASSERT_TRUE(store_->AuthenticateSession(session->cookie).ok()) << i;
  }
  clock_.Advance(std::chrono::minutes(31));
  EXPECT_EQ(store_->AuthenticateSession(session->cookie).status().message(), "session expired");

  // Absolute: 12 hours whatever the activity.
  auto second = store_->Login("alice", kPassword, "127.0.0.1").value();
  for (int i = 0; i < 36; ++i) {
    clock_.Advance(std::chrono::minutes(20));
    if (i < 35) {
      ASSERT_TRUE(store_->AuthenticateSession(second.cookie).ok()) << i;
    }
  }
  EXPECT_FALSE(store_->AuthenticateSession(second.cookie).ok());

  // Disabling ends sessions; logout ends one.
  auto bobs = store_->Login("bob", kPassword, "10.0.0.2").value();
  ASSERT_TRUE(store_->SetDisabled("bob", true).ok());
  EXPECT_FALSE(store_->AuthenticateSession(bobs.cookie).ok());
  EXPECT_EQ(store_->Login("bob", kPassword, "10.0.0.2").status().code(),
            StatusCode::kPermissionDenied)
      << "a disabled account cannot log in";
  auto third = store_->Login("alice", kPassword, "127.0.0.1").value();
  ASSERT_TRUE(store_->Logout(third.cookie).ok());
  EXPECT_FALSE(store_->AuthenticateSession(third.cookie).ok());

  std::vector<std::string> logins;
  for (const AuditEntry& e : Audit()) {
    if (e.action == "login" || e.action == "logout") {
      logins.push_back(e.actor + " " + e.action + " " + e.outcome);
    }
  }
  EXPECT_EQ(logins, (std::vector<std::string>{"alice logout ok", "alice login ok",
                                              "bob login failed", "bob login ok", "alice login ok",
                                              "alice login ok", "? login failed",
                                              "nobody login failed", "alice login failed"}));
}

TEST(OperatorRolesTest, EachRoleMayDoWhatTheTableSays) {
  for (const char* action : {"dashboard", "fleet.read", "metrics"}) {
    EXPECT_TRUE(RoleAllows("read-only", action)) << action;
    EXPECT_TRUE(RoleAllows("deployer", action)) << action;
    EXPECT_TRUE(RoleAllows("admin", action)) << action;
  }
  for (const char* action : {"pin", "unpin", "recall", "rollout.start", "rollout.pause",
                             "rollout.resume", "rollout.abort", "config.set"}) {
    EXPECT_FALSE(RoleAllows("read-only", action)) << action;
    EXPECT_TRUE(RoleAllows("deployer", action)) << action;
    EXPECT_TRUE(RoleAllows("admin", action)) << action;
  }
  for (const char* action : {"audit.read", "operator.add", "token.create", "device.approve",
                             "logs.request", "secret.set"}) {
    EXPECT_FALSE(RoleAllows("read-only", action)) << action;
    EXPECT_FALSE(RoleAllows("deployer", action)) << action;
    EXPECT_TRUE(RoleAllows("admin", action)) << action;
  }
  EXPECT_FALSE(RoleAllows("admin", "no.such.action"));
  EXPECT_FALSE(RoleAllows("root", "dashboard"));
}

TEST_P(OperatorStoreTest, AuditFiltersAndNoSecretInTheDatabase) {
  ASSERT_TRUE(store_->Add("alice", "admin", kPassword).ok());
  clock_.Advance(std::chrono::seconds(100));
  store_->set_actor("alice");
  auto token = store_->CreateToken("alice", "ci", 0).value();
  auto session = store_->Login("alice", kPassword, "127.0.0.1").value();
  ASSERT_TRUE(store_
                  ->Audit({.actor = "alice",
                           .action = "recall",
                           .target = "kiosk",
                           .detail = Json{{"release", 8}},
                           .outcome = "denied"})
                  .ok());
  EXPECT_EQ(ListAudit(store_->engine(), {.actor = "alice"}).value().size(), 3u);
  EXPECT_EQ(ListAudit(store_->engine(), {.actor = "local:test"}).value().size(), 1u);
  EXPECT_EQ(ListAudit(store_->engine(), {.since = 1'800'000'050}).value().size(), 3u);
  EXPECT_EQ(ListAudit(store_->engine(), {.limit = 1}).value().size(), 1u);
  const AuditEntry newest = ListAudit(store_->engine(), {.limit = 1}).value()[0];
  EXPECT_EQ(AuditEntryToJson(newest), (Json{{"id", newest.id},
                                            {"at", "2027-01-15T08:01:40Z"},
                                            {"actor", "alice"},
                                            {"action", "recall"},
                                            {"target", "kiosk"},
                                            {"detail", {{"release", 8}}},
                                            {"outcome", "denied"}}));

  // Neither the password, the token nor the cookie is in the database in
  // clear, in any table (SQLite: the file and its WAL).
  if (GetParam() == SqlEngineKind::kSqlite) {
    std::string bytes;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      bytes += ReadTextFileBounded(entry.path().string(), 64 << 20).value();
    }
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes.find(kPassword), std::string::npos);
    EXPECT_EQ(bytes.find(token.substr(5)), std::string::npos);
    EXPECT_EQ(bytes.find(session.cookie), std::string::npos);
    EXPECT_EQ(bytes.find(session.csrf), std::string::npos);
  }
  // Every text column of the operator tables, on either engine.
  for (const char* query :
       {"SELECT name || role || password_hash FROM operators",
        "SELECT operator || label || token_sha256 FROM operator_tokens",
        "SELECT session_sha256 || operator FROM operator_sessions",
        "SELECT actor || action || target || detail || outcome FROM audit_log"}) {
    auto rows = store_->engine().Query(query).value();
    ASSERT_FALSE(rows.empty()) << query;
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::string cell = rows.Text(r, 0);
      EXPECT_EQ(cell.find(kPassword), std::string::npos) << query;
      EXPECT_EQ(cell.find(token.substr(5)), std::string::npos) << query;
      EXPECT_EQ(cell.find(session.cookie), std::string::npos) << query;
    }
  }
}

FLOTILLA_ON_BOTH_ENGINES(OperatorStoreTest);

// A 0.1.0 tracker.db gets the operator tables: no account (the endpoints
// stay open), and its devices keep working.
TEST(OperatorCompatTest, A010DatabaseHasNoOperatorsThenTakesOne) {
  const std::string dir = ::testing::TempDir() + "/operators-0.1.0";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(
      std::string(FLOTILLA_SOURCE_DIR) + "/tracker/storage/testdata/tracker-0.1.0.db",
      dir + "/tracker.db");
  FakeClock clock;
  auto store = OperatorStore::Open(dir + "/tracker.db", clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->engine().SchemaVersion().value(), TrackerMigrations().back().version);
  EXPECT_FALSE((*store)->HasOperators().value());
  ASSERT_TRUE((*store)->Add("alice", "admin", kPassword).ok());
  EXPECT_TRUE((*store)->Login("alice", kPassword, "::1").ok());
  auto db = DeviceDb::Open(dir + "/tracker.db", clock);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_TRUE((*db)->AuthenticatePasskey(std::string(64, '2')).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::tracker
