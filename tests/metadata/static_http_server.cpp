#include "tests/metadata/static_http_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "core/file_io.h"

namespace flotilla::testing {

StaticHttpServer::StaticHttpServer(const std::vector<std::string>& args,
                                   const std::string& log_path)
    : log_path_(log_path) {
  int out[2];
  if (::pipe(out) != 0) return;
  std::vector<std::string> argv_strings{"python3", "-u"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 2);
    ::close(out[0]);
    ::execvp("python3", argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
  ::close(out[0]);
  std::smatch m;
  if (std::regex_search(line, m, std::regex("port (\\d+)"))) port_ = std::stoi(m[1]);
}

StaticHttpServer::~StaticHttpServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string StaticHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

int StaticHttpServer::Requests(const std::string& path) const {
  auto log = ReadTextFileBounded(log_path_, 16 << 20).value_or("");
  int n = 0;
  for (size_t pos = 0; (pos = log.find("\"GET " + path + " ", pos)) != std::string::npos; ++pos) {
    ++n;
  }
  return n;
}

}  // namespace flotilla::testing
