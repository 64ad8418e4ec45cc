#include "tests/support/tinyproxy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/raw_http.h"
#include "tests/support/test_util.h"

namespace flotilla::testing {

TinyProxy::~TinyProxy() {
  Stop();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

bool TinyProxy::Start(const std::string& user, const std::string& password) {
  user_ = user;
  password_ = password;
  std::string pattern = "/tmp/flotilla-tinyproxy-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return false;
  dir_ = pattern;
  ::chmod(dir_.c_str(), 0777);
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    std::ofstream conf(dir_ + "/tinyproxy.conf", std::ios::trunc);
    conf << "User nobody\nGroup nogroup\nPort " << port_ << "\nListen 127.0.0.1\n"
         << "Timeout 120\nMaxClients 64\nLogLevel Info\nDisableViaHeader Yes\n"
         << "LogFile \"" << dir_ << "/tinyproxy.log\"\n";
    if (!user_.empty()) conf << "BasicAuth " << user_ << " " << password_ << "\n";
    conf.close();
    if (!process_.Start({"/usr/bin/tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"},
                        dir_ + "/tinyproxy.out")) {
      return false;
    }
    if (WaitFor([&] { return Log().find("Accepting connections") != std::string::npos; },
                std::chrono::seconds(10))) {
      return true;
    }
    process_.Stop(std::chrono::seconds(2));  // the port was taken meanwhile: another one
  }
  return false;
}

std::string TinyProxy::Url(bool with_credentials) const {
  std::string auth = with_credentials && !user_.empty() ? user_ + ":" + password_ + "@" : "";
  return "http://" + auth + "127.0.0.1:" + std::to_string(port_);
}

std::vector<std::string> TinyProxy::Requests() const {
  std::vector<std::string> out;
  std::istringstream log(Log());
  const std::string marker = "]: Request (file descriptor ";
  for (std::string line; std::getline(log, line);) {
    const size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    const size_t colon = line.find("): ", at + marker.size());
    if (colon != std::string::npos) out.push_back(line.substr(colon + 3));
  }
  return out;
}

std::string TinyProxy::Log() const {
  std::ifstream in(dir_ + "/tinyproxy.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace flotilla::testing
