// MetricsServer over real TCP on loopback: the Prometheus text parsed back
// line by line and checked against the view; 404, 405, 400.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "node/control/control_server.h"
#include "node/control/metrics_text.h"
#include "tests/control/control_test_support.h"

namespace flotilla::testing {
namespace {

using namespace std::chrono_literals;

// Sends `request` to 127.0.0.1:`port` and returns everything until the server closes.
std::string HttpExchange(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buffer[16384];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// Undoes the format's label escaping; fails the test on a bad escape.
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    EXPECT_LT(i + 1, text.size());
    char c = text[++i];
    EXPECT_TRUE(c == '\\' || c == '"' || c == 'n') << text;
    out += c == 'n' ? '\n' : c;
  }
  return out;
}

// name{label="value",...} -> value, as parsed from the exposition text, with
// the sample key written as name|label=value|label=value (labels in order).
struct ParsedMetrics {
  std::map<std::string, std::string> type_of;
  std::map<std::string, double> samples;
};

ParsedMetrics ParseExposition(const std::string& text) {
  ParsedMetrics parsed;
  std::set<std::string> helped;
  static const std::regex kSample(R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)re");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$))re");
  std::istringstream lines(text);
  std::string line;
  EXPECT_EQ(text.back(), '\n');
  while (std::getline(lines, line)) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice: " << name;
      EXPECT_GT(line.size(), 8 + name.size()) << "empty help: " << line;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(helped.count(name)) << "TYPE before HELP: " << line;
      EXPECT_TRUE(type == "gauge" || type == "counter") << line;
      EXPECT_TRUE(parsed.type_of.emplace(name, type).second) << "TYPE twice: " << line;
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "not a sample line: " << line;
      continue;
    }
    const std::string name = m[1];
    EXPECT_EQ(name.rfind("flotilla_node_", 0), 0u) << line;
    EXPECT_TRUE(parsed.type_of.count(name)) << "sample without TYPE: " << line;
    if (parsed.type_of[name] == "counter") {
      EXPECT_EQ(name.substr(name.size() - 6), "_total");
    }
    std::string key = name;
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it) {
      key += "|" + (*it)[1].str() + "=" + Unescape((*it)[2].str());
    }
    EXPECT_TRUE(parsed.samples.emplace(key, std::stod(m[4])).second) << "duplicate: " << line;
  }
  return parsed;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = node::MetricsServer::Listen("127.0.0.1:0", control_);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    server_ = std::move(*made);
    ASSERT_NE(server_->port(), 0);
  }
  ScriptedControl control_;
  std::unique_ptr<node::MetricsServer> server_;
};

TEST_F(MetricsServerTest, MetricsParseBackToTheView) {
  node::NodeView view = SampleView();
  view.apps[1].name = "we\"ird\\app\nname";  // every escaped character in a label value
  control_.SetView(view);
  PollLoop loop({[&] { server_->Poll(); }});
  std::string response = HttpExchange(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  std::string body = Body(response);
  EXPECT_NE(response.find("Content-Length: " + std::to_string(body.size())), std::string::npos);
  ParsedMetrics m = ParseExposition(body);

  auto at = [&](const std::string& key) {
    EXPECT_TRUE(m.samples.count(key)) << "missing " << key;
    return m.samples.count(key) ? m.samples[key] : -1;
  };
  EXPECT_EQ(at("flotilla_node_info|device=kiosk-lobby|site=shop-7|transfer_mode=p2p|version=0.1.0"),
            1);
  EXPECT_EQ(at("flotilla_node_refreshes_total|result=ok"), 12);
  EXPECT_EQ(at("flotilla_node_refreshes_total|result=failed"), 3);
  EXPECT_EQ(at("flotilla_node_deploys_total|result=ok"), 2);
  EXPECT_EQ(at("flotilla_node_deploys_total|result=failed"), 1);
  EXPECT_EQ(at("flotilla_node_hash_failures_total"), 4);
  EXPECT_EQ(at("flotilla_node_peers_banned_total"), 2);
  EXPECT_EQ(at("flotilla_node_bytes_wasted_total"), 32768);
  EXPECT_EQ(at("flotilla_node_disk_free_bytes"), 3e9);
  EXPECT_EQ(at("flotilla_node_store_bytes"), 123456789);
  EXPECT_EQ(at("flotilla_node_last_refresh_timestamp_seconds"), 1.8e9);
  EXPECT_EQ(at("flotilla_node_enrolled"), 1);
  EXPECT_EQ(m.type_of["flotilla_node_refreshes_total"], "counter");
  EXPECT_EQ(m.type_of["flotilla_node_disk_free_bytes"], "gauge");
  for (const auto& a : view.apps) {
    const std::string app = "|app=" + a.name;
    EXPECT_EQ(at("flotilla_node_app_running_release" + app), a.running_release);
    EXPECT_EQ(at("flotilla_node_app_previous_release" + app), a.previous_release);
    EXPECT_EQ(at("flotilla_node_app_ready_release" + app), a.ready_release);
    EXPECT_EQ(at("flotilla_node_app_target_release" + app), a.target_release);
    EXPECT_EQ(at("flotilla_node_app_transfer_bytes_done" + app), a.bytes_done);
    EXPECT_EQ(at("flotilla_node_app_transfer_bytes_total" + app), a.bytes_total);
    EXPECT_DOUBLE_EQ(at("flotilla_node_app_transfer_rate_bytes_per_second" + app),
                     a.rate_bytes_per_s);
    EXPECT_EQ(at("flotilla_node_app_peers" + app), a.peers);
    EXPECT_EQ(at("flotilla_node_app_container_restarts" + app), a.restarts);
    EXPECT_EQ(at("flotilla_node_app_bytes_from_peers_total" + app), a.bytes_from_peers);
    EXPECT_EQ(at("flotilla_node_app_bytes_from_origin_total" + app), a.bytes_from_origin);
    EXPECT_EQ(at("flotilla_node_app_container_state" + app + "|state=" + a.container_state), 1);
    for (std::string_view phase : node::kAppPhases) {
      EXPECT_EQ(at("flotilla_node_app_phase" + app + "|phase=" + std::string(phase)),
                phase == a.phase ? 1 : 0);
    }
  }
  // Nothing but what was checked above: 10 node samples + 19 per app.
  EXPECT_EQ(m.samples.size(), 12u + 19u * view.apps.size());
}

TEST_F(MetricsServerTest, OtherPathsMethodsAndGarbageAreRefused) {
  PollLoop loop({[&] { server_->Poll(); }});
  EXPECT_EQ(HttpExchange(server_->port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(
      HttpExchange(server_->port(), "GET /metricsx HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 404", 0), 0u);
  std::string post = HttpExchange(server_->port(), "POST /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(HttpExchange(server_->port(), "hello\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(HttpExchange(server_->port(), huge).rfind("HTTP/1.1 431", 0), 0u);
  // A query string is ignored; still served after all of the above.
  EXPECT_EQ(
      HttpExchange(server_->port(), "GET /metrics?x=1 HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200", 0),
      0u);
}

TEST(MetricsServerListen, BadAddressesAreErrors) {
  ScriptedControl control;
  auto bad = node::MetricsServer::Listen("127.0.0.1", control);
  EXPECT_FALSE(bad.ok());
  auto first = node::MetricsServer::Listen("127.0.0.1:0", control);
  ASSERT_TRUE(first.ok());
  auto taken =
      node::MetricsServer::Listen("127.0.0.1:" + std::to_string((*first)->port()), control);
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("metrics"), std::string::npos);
}

}  // namespace
}  // namespace flotilla::testing
