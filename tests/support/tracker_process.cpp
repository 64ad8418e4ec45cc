#include "tests/support/tracker_process.h"

#include <unistd.h>

#include "core/file_io.h"
#include "tests/support/test_util.h"
#include "tracker/client/tracker_client.h"

namespace flotilla::testing {

bool TrackerProcess::Start(const std::string& dir, const std::string& repo,
                           const std::vector<std::string>& extra_args, int port) {
  const std::string token_file = dir + "/fleet-token";
  if (!WriteFileAtomic(token_file, FleetToken() + "\n", 0600).ok()) return false;
  const std::string port_file = dir + "/port";
  ::unlink(port_file.c_str());
  log_path_ = dir + "/tracker.log";
  std::vector<std::string> args = {BinaryPath("flotilla-tracker"),
                                   "serve",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--repository",
                                   repo,
                                   "--port-file",
                                   port_file,
                                   "--fleet-token-file",
                                   token_file,
                                   "--log-level",
                                   "debug"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (!process_.Start(args, log_path_)) return false;
  return WaitFor(
             [&] {
               auto text = ReadTextFileBounded(port_file, 64);
               if (text.ok() && !text->empty()) {
                 port_ = std::atoi(text->c_str());
                 return true;
               }
               return process_.Exited();
             },
             std::chrono::seconds(10), std::chrono::milliseconds(50)) &&
         process_.running();
}

std::string TrackerProcess::Log() const {
  auto text = ReadTextFileBounded(log_path_, 16 << 20);
  return text.ok() ? *text : "";
}

EnrolledDevice EnrolDevice(int port, const std::string& name, const std::string& site,
                           const std::vector<std::string>& tags) {
  tracker::TrackerClient client("http://127.0.0.1:" + std::to_string(port));
  return client.Enrol({TrackerProcess::FleetToken(), name, site, tags}).value_or(EnrolledDevice{});
}

}  // namespace flotilla::testing
