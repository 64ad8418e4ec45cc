// HTTPS: serve with a certificate and key from the configuration; a client
// told to trust the self-signed certificate talks to it, one that is not
// refuses it.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file_io.h"
#include "http/http_client.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"
#include "tests/support/tracker_process.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {
namespace {

TEST(TrackerTlsTest, ServesHttpsWithTheConfiguredCertificate) {
  const std::string dir = MakeTempDir("tracker-tls");
  auto gen = RunShell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir + "/key.pem -out " + dir + "/cert.pem");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  // The configuration file names the certificate; flags give the rest.
  ASSERT_TRUE(WriteFileAtomic(dir + "/tracker.json", R"({"tls_certificate":")" + dir +
                                                         R"(/cert.pem","tls_private_key":")" + dir +
                                                         R"(/key.pem","log_level":"info"})")
                  .ok());
  TrackerProcess tracker;
  ASSERT_TRUE(tracker.Start(dir, dir + "/repo", {"--config", dir + "/tracker.json"}))
      << tracker.Log();
  const std::string url = "https://127.0.0.1:" + std::to_string(tracker.port());

  http::Client trusting({.ca_file = dir + "/cert.pem"});
  auto trusted = trusting.Fetch({.url = url + "/healthz"});
  ASSERT_TRUE(trusted.ok()) << trusted.status().ToString();
  EXPECT_EQ(trusted->body, "ok\n");

  http::Client system_store;
  EXPECT_EQ(system_store.Fetch({.url = url + "/healthz"}).status().code(), StatusCode::kUnavailable)
      << "an unknown certificate must not be accepted";

  // Enrolment over TLS returns a credential; the announce URL is https.
  tracker::TrackerClient client(url, {.ca_file = dir + "/cert.pem"});
  auto enrol = client.Enrol({TrackerProcess::FleetToken(), "tls-pi", ""});
  ASSERT_TRUE(enrol.ok()) << enrol.status().ToString();
  EXPECT_EQ(enrol->announce_url, url + "/announce/" + enrol->passkey);

  // Plain HTTP on the TLS port gets nothing useful and the server carries on.
  EXPECT_EQ(ParseResponse(
                SendRaw(tracker.port(), "GET /healthz HTTP/1.1\r\n\r\n", std::chrono::seconds(5)))
                .status,
            0);
  EXPECT_EQ(trusting.Fetch({.url = url + "/healthz"})->body, "ok\n");
  EXPECT_NE(tracker.Log().find("(https)"), std::string::npos);
  tracker.Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flotilla::testing
