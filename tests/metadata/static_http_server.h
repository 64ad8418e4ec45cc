// A static HTTP server on 127.0.0.1 for the metadata end-to-end tests: a
// python3 script that prints "port N" on its first line (the kernel picks
// the port) and logs requests on stderr, stopped when the object goes.
#pragma once

#include <string>
#include <vector>

namespace flotilla::testing {

class StaticHttpServer {
 public:
  // Runs `python3 ARGS...` (e.g. {"-m", "http.server", "0", "--directory", DIR}).
  StaticHttpServer(const std::vector<std::string>& args, const std::string& log_path);
  ~StaticHttpServer();
  StaticHttpServer(const StaticHttpServer&) = delete;
  StaticHttpServer& operator=(const StaticHttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const;
  // Number of GET requests logged for `path`.
  int Requests(const std::string& path) const;

 private:
  std::string log_path_;
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace flotilla::testing
