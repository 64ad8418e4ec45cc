// Debian's tinyproxy, started by a test on 127.0.0.1 as a real HTTP proxy
// (plain requests and CONNECT), optionally with Basic authentication. It runs
// as `nobody`, so a test can tell its connections from the test's own (an
// nftables owner match). Its log names every request it forwarded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace flotilla::testing {

class TinyProxy {
 public:
  // Starts tinyproxy with its files in a directory of its own under /tmp
  // (nobody, which it runs as, must reach its log); `user` empty: no
  // authentication. False if it did not listen within 10 s (see Log()).
  bool Start(const std::string& user = "", const std::string& password = "");
  void Stop() { process_.Stop(std::chrono::seconds(5)); }
  // Stops it and removes its directory.
  ~TinyProxy();

  uint16_t port() const { return port_; }
  // http://[user:password@]127.0.0.1:PORT
  std::string Url(bool with_credentials = true) const;
  // Every request line it received ("GET http://h:p/x HTTP/1.1",
  // "CONNECT h:p HTTP/1.1"), oldest first.
  std::vector<std::string> Requests() const;
  std::string Log() const;

 private:
  ChildProcess process_;
  std::string dir_, user_, password_;
  uint16_t port_ = 0;
};

}  // namespace flotilla::testing
