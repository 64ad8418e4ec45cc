// ControlServer and ControlRequest over real Unix sockets: the protocol, its
// edge cases, and that no client can stall the daemon's loop.
#include "node/control/control_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "core/file_io.h"
#include "node/control/control_protocol.h"
#include "tests/control/control_test_support.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;
using node::ControlRequest;
using node::ControlServer;

int ConnectRaw(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until EOF or `timeout`; sets `closed` when EOF was seen.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed = nullptr) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (closed) *closed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buffer[65536];
    ssize_t n = ::read(fd, buffer, sizeof buffer);  // sockets and pipes
    if (n <= 0) {
      if (closed) *closed = true;
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// The raw response to `request` bytes, parsed.
Json RawExchange(const std::string& path, const std::string& request) {
  int fd = ConnectRaw(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ::shutdown(fd, SHUT_WR);
  std::string text = ReadUntilClosed(fd, 5s);
  ::close(fd);
  return Json::parse(text, nullptr, false);
}

// A child process, as user nobody, that sends {"op":"status"} to `path`
// when Run() tells it to and reports the outcome.
class NobodyClient {
 public:
  explicit NobodyClient(const std::string& path) {
    int go[2], result[2];
    EXPECT_EQ(::pipe(go), 0);
    EXPECT_EQ(::pipe(result), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(go[1]);
      ::close(result[0]);
      char byte;
      if (::read(go[0], &byte, 1) != 1) _exit(2);
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(3);
      auto r = ControlRequest(path, {{"op", "status"}}, 2s);
      std::string text = r.ok() ? "ok" : r.status().ToString();
      _exit(::write(result[1], text.data(), text.size()) > 0 ? 0 : 4);
    }
    ::close(go[0]);
    ::close(result[1]);
    go_ = go[1];
    result_ = result[0];
  }
  ~NobodyClient() {
    ::close(go_);
    ::close(result_);
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
  }
  std::string Run() {
    EXPECT_EQ(::write(go_, "g", 1), 1);
    return ReadUntilClosed(result_, 5s);
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1, result_ = -1;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("control-");
    path_ = dir_ + "/control.sock";
    control_.SetView(SampleView());
  }
  void TearDown() override { RunShell("rm -rf " + dir_); }
  std::unique_ptr<ControlServer> Listen() {
    auto server = ControlServer::Listen(path_, control_);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }
  std::string dir_, path_;
  ScriptedControl control_;
};

TEST_F(ControlServerTest, StatusUpdateRollbackAndLogsRoundTrip) {
  auto server = Listen();
  ASSERT_TRUE(server);
  control_.logs = std::string(100, 'a') + "last line\n";
  PollLoop loop({[&] { server->Poll(); }});

  auto status = ControlRequest(path_, {{"op", "status"}}, 5s);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  auto view = node::ViewFromJson(*status);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->device_name, "kiosk-lobby");
  ASSERT_EQ(view->apps.size(), 2u);
  EXPECT_EQ(view->apps[0].name, "signage");
  EXPECT_EQ(view->apps[0].target_release, 4u);
  EXPECT_EQ(view->apps[0].bytes_done, 12'000'000u);
  EXPECT_DOUBLE_EQ(view->apps[0].rate_bytes_per_s, 524288.5);
  EXPECT_EQ(view->apps[0].eta_s, 69);
  EXPECT_EQ(view->apps[1].last_error, "rolled back by the operator from release 8");
  EXPECT_EQ(view->store_bytes, 123'456'789u);

  auto update = ControlRequest(path_, {{"op", "update"}}, 5s);
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  EXPECT_EQ(control_.updates.load(), 1);
  EXPECT_TRUE((*update)["message"].is_string());

  auto rollback = ControlRequest(path_, {{"op", "rollback"}, {"app", "signage"}}, 5s);
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString();
  EXPECT_EQ((*rollback)["message"], "signage: release 1 runs (rolled back from 2)");

  auto logs = ControlRequest(path_, {{"op", "logs"}, {"app", "sensor"}, {"max_bytes", 10}}, 5s);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ((*logs)["logs"], "last line\n");
}

// A rollback answers once its health-gated switch is done: the daemon replies
// later, the client's 5 s deadline does not run meanwhile, other clients are
// served, and a reply for a client that gave up is dropped harmlessly.
TEST_F(ControlServerTest, ALateReplyOutlivesTheClientDeadlineWhileOthersAreServed) {
  auto server = Listen();
  ASSERT_TRUE(server);
  control_.hold_rollbacks = true;
  PollLoop loop({[&] { server->Poll(); }, [&] { control_.ReleaseHeldRollbacks(); }});

  // A client that gives up after 1 s: its reply comes after it left.
  auto gave_up = ControlRequest(path_, {{"op", "rollback"}, {"app", "signage"}}, 1s);
  EXPECT_EQ(gave_up.status().code(), StatusCode::kDeadlineExceeded) << gave_up.status().ToString();
  control_.release_rollbacks = true;
  ASSERT_TRUE(WaitUntil([&] { return !control_.release_rollbacks; }, 5s));

  Result<Json> rollback = Unavailable("not answered");
  std::thread client([&] {
    rollback = ControlRequest(path_, {{"op", "rollback"}, {"app", "signage"}}, 30s);
  });
  ASSERT_TRUE(WaitUntil([&] { return control_.held.load() == 2; }, 5s));
  const auto held_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - held_since < 6s) {
    const auto asked = std::chrono::steady_clock::now();
    auto status = ControlRequest(path_, {{"op", "status"}}, 5s);
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
    std::this_thread::sleep_for(200ms);
  }
  control_.release_rollbacks = true;
  client.join();
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString();
  EXPECT_EQ((*rollback)["message"], "signage: release 1 runs (rolled back from 2)");
}

TEST_F(ControlServerTest, DaemonErrorsBecomeStatusesWithTheDaemonsText) {
  auto server = Listen();
  ASSERT_TRUE(server);
  PollLoop loop({[&] { server->Poll(); }});
  auto r = ControlRequest(path_, {{"op", "rollback"}, {"app", "nope"}}, 5s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no app 'nope' is followed here");
  r = ControlRequest(path_, {{"op", "logs"}, {"app", "sensor"}, {"max_bytes", 0}}, 5s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_bytes"), std::string::npos);
  r = ControlRequest(path_, {{"op", "logs"}}, 5s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"app\""), std::string::npos);
}

TEST_F(ControlServerTest, MalformedRequestsGetAnErrorAndTheServerCarriesOn) {
  auto server = Listen();
  ASSERT_TRUE(server);
  PollLoop loop({[&] { server->Poll(); }});
  Json bad = RawExchange(path_, "{not json\n");
  ASSERT_TRUE(bad.is_object()) << bad;
  EXPECT_NE(bad["error"].get<std::string>().find("bad request"), std::string::npos) << bad;
  EXPECT_EQ(bad["code"], "InvalidArgument");

  Json unknown = RawExchange(path_, R"({"op":"reboot"})"
                                    "\n");
  EXPECT_NE(unknown["error"].get<std::string>().find("unknown op 'reboot'"), std::string::npos);
  Json extra = RawExchange(path_, R"({"op":"status","verbose":true})"
                                  "\n");
  EXPECT_NE(extra["error"].get<std::string>().find("unknown key 'verbose'"), std::string::npos);
  Json array = RawExchange(path_, "[1,2]\n");
  EXPECT_NE(array["error"].get<std::string>().find("not a JSON object"), std::string::npos);
  Json duplicate = RawExchange(path_, R"({"op":"status","op":"update"})"
                                      "\n");
  EXPECT_TRUE(duplicate.contains("error")) << duplicate;
  EXPECT_EQ(control_.updates.load(), 0);
  // A request ended by shutdown(SHUT_WR) rather than a newline is whole too.
  Json no_newline = RawExchange(path_, R"({"op":"status"})");
  EXPECT_EQ(no_newline["device_name"], "kiosk-lobby") << no_newline;
}

// Lock requests are checked before the daemon sees them: a duration past
// the 24-hour maximum, a reason that is not short printable text, an
// unknown key. A well-formed one reaches the daemon (this one takes none).
TEST_F(ControlServerTest, LockRequestsAreCheckedBeforeTheDaemonSeesThem) {
  auto server = Listen();
  ASSERT_TRUE(server);
  PollLoop loop({[&] { server->Poll(); }});
  const std::vector<std::pair<std::string, std::string>> refused = {
      {R"({"op":"lock","app":"x","for_s":86401})", "at most 24 hours"},
      {R"({"op":"lock","app":"x","for_s":0})", "\"for_s\" must be an integer in 1..86400"},
      {R"({"op":"lock","app":"x","for_s":-5})", "\"for_s\" must be an integer"},
      {R"({"op":"lock","app":"x","reason":"a\nb"})", "printable text"},
      {R"({"op":"lock","app":"x","reason":")" + std::string(201, 'r') + R"("})",
       "at most 200 bytes"},
      {R"({"op":"lock","app":"x","until":5})", "unknown key 'until'"},
      {R"({"op":"unlock","app":"x","for_s":5})", "unknown key 'for_s'"},
      {R"({"op":"lock"})", "needs \"app\""},
  };
  for (const auto& [request, message] : refused) {
    Json answer = RawExchange(path_, request + "\n");
    ASSERT_TRUE(answer.is_object()) << request;
    EXPECT_EQ(answer["code"], "InvalidArgument") << request << " " << answer;
    EXPECT_NE(answer["error"].get<std::string>().find(message), std::string::npos)
        << request << " " << answer;
  }
  Json reached = RawExchange(path_, R"({"op":"lock","app":"x","for_s":60,"reason":"in use"})"
                                    "\n");
  EXPECT_EQ(reached["error"], "this daemon takes no update locks") << reached;
}

TEST_F(ControlServerTest, ImportRequestsNeedAnAbsolutePathBeforeTheDaemonSeesThem) {
  auto server = Listen();
  ASSERT_TRUE(server);
  PollLoop loop({[&] { server->Poll(); }});
  const std::vector<std::pair<std::string, std::string>> refused = {
      {R"({"op":"import"})", "needs \"path\""},
      {R"({"op":"import","path":"web.bundle"})", "absolute path"},
      {R"({"op":"import","path":5})", "needs \"path\""},
      {R"({"op":"import","path":"/a.bundle","app":"x"})", "unknown key 'app'"},
  };
  for (const auto& [request, message] : refused) {
    Json answer = RawExchange(path_, request + "\n");
    ASSERT_TRUE(answer.is_object()) << request;
    EXPECT_EQ(answer["code"], "InvalidArgument") << request << " " << answer;
    EXPECT_NE(answer["error"].get<std::string>().find(message), std::string::npos)
        << request << " " << answer;
  }
  Json reached = RawExchange(path_, R"({"op":"import","path":"/media/usb/web.bundle"})"
                                    "\n");
  EXPECT_EQ(reached["error"], "this daemon imports no bundles") << reached;
}

TEST_F(ControlServerTest, OversizedRequestIsRefusedWithoutReadingItAll) {
  auto server = Listen();
  ASSERT_TRUE(server);
  PollLoop loop({[&] { server->Poll(); }});
  int fd = ConnectRaw(path_);
  ASSERT_GE(fd, 0);
  // 1 MiB without a newline: far over the 64 KiB bound. The server answers
  // once the bound is passed; the rest may never be read.
  std::string huge(1 << 20, ' ');
  std::string response;
  size_t sent = 0;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::send(fd, huge.data() + sent, huge.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) sent += static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN) break;  // the server closed its side
    response += ReadUntilClosed(fd, 20ms);
    if (response.find('\n') != std::string::npos) break;
  }
  ::close(fd);
  Json r = Json::parse(response, nullptr, false);
  ASSERT_TRUE(r.is_object()) << response;
  EXPECT_EQ(r["code"], "ResourceExhausted");
  EXPECT_NE(r["error"].get<std::string>().find("65536"), std::string::npos);
  EXPECT_LT(sent, huge.size());
  // Still serving.
  EXPECT_TRUE(ControlRequest(path_, {{"op", "status"}}, 5s).ok());
}

TEST_F(ControlServerTest, SilentClientNeitherBlocksPollNorOthersAndIsDroppedAfterTheDeadline) {
  auto server = Listen();
  ASSERT_TRUE(server);
  int silent = ConnectRaw(path_);
  ASSERT_GE(silent, 0);
  ::send(silent, "{\"op\":", 6, MSG_NOSIGNAL);  // half a request, then nothing
  // Poll on this thread: it must return at once although a client is stuck.
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    server->Poll();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 50ms);
  }
  auto start = std::chrono::steady_clock::now();
  {
    PollLoop loop({[&] { server->Poll(); }});
    auto other = ControlRequest(path_, {{"op", "status"}}, 5s);
    EXPECT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    bool closed = false;
    std::string got = ReadUntilClosed(silent, 9s, &closed);
    EXPECT_TRUE(closed) << "the silent client was not dropped";
    EXPECT_TRUE(got.empty()) << got;
  }
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 4s);
  EXPECT_LT(waited, 8s);
  ::close(silent);
}

TEST_F(ControlServerTest, ClientGoneMidResponseDoesNotHurtTheServer) {
  auto server = Listen();
  ASSERT_TRUE(server);
  control_.logs = std::string(1 << 20, 'x');  // a response far larger than the socket buffer
  PollLoop loop({[&] { server->Poll(); }});
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectRaw(path_);
    ASSERT_GE(fd, 0);
    std::string request = R"({"op":"logs","app":"signage","max_bytes":1048576})"
                          "\n";
    ASSERT_GT(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), 0);
    char first[100];
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    ASSERT_GT(::recv(fd, first, sizeof first, 0), 0);
    ::close(fd);  // gone with most of the answer unread: the server gets EPIPE, not SIGPIPE
  }
  auto logs =
      ControlRequest(path_, {{"op", "logs"}, {"app", "signage"}, {"max_bytes", 1 << 20}}, 5s);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ((*logs)["logs"].get<std::string>().size(), size_t{1} << 20);
}

TEST_F(ControlServerTest, SocketIsMode0600AndRemovedWithTheServer) {
  auto server = Listen();
  ASSERT_TRUE(server);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  server.reset();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

TEST_F(ControlServerTest, StaleSocketIsReplacedLiveOneRefusedOtherFilesKept) {
  // A socket file nobody listens on, as a killed daemon leaves it.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  auto first = Listen();
  ASSERT_TRUE(first);
  auto second = ControlServer::Listen(path_, control_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "another daemon is using " + path_);
  {
    PollLoop loop({[&] { first->Poll(); }});
    EXPECT_TRUE(ControlRequest(path_, {{"op", "status"}}, 5s).ok());  // the first still serves
  }
  const std::string file = dir_ + "/not-a-socket";
  ASSERT_TRUE(WriteFileAtomic(file, "data").ok());
  auto third = ControlServer::Listen(file, control_);
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.status().message().find("is not a socket"), std::string::npos);
  EXPECT_EQ(::access(file.c_str(), F_OK), 0);
}

TEST_F(ControlServerTest, NoDaemonAndNonRootClientsGetClearErrors) {
  auto none = ControlRequest(path_, {{"op", "status"}}, 2s);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(none.status().message(),
            "no daemon listens on " + path_ + ": is flotilla-node running?");

  auto server = Listen();
  ASSERT_TRUE(server);
  ::chmod(dir_.c_str(), 0755);
  // Clients running as user nobody, forked before any thread exists: the
  // 0600 socket refuses the first's connect; with the mode loosened by
  // mistake, the server itself refuses the second.
  NobodyClient first(path_), second(path_);
  PollLoop loop({[&] { server->Poll(); }});
  std::string denied = first.Run();
  EXPECT_NE(denied.find("PermissionDenied: permission denied on " + path_), std::string::npos)
      << denied;
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  std::string refused = second.Run();
  EXPECT_NE(refused.find("only root may operate the daemon"), std::string::npos) << refused;
}

}  // namespace
}  // namespace flotilla::testing
