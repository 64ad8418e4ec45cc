#include "node/http_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "node/daemon/http_call.h"

namespace flotilla::node {

std::string JoinUrl(std::string_view base, std::string_view relative) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  return std::string(base) + "/" + std::string(relative);
}

Status HttpGetStream(const std::string& url, uint64_t max_bytes, const HttpOptions& options,
                     const std::function<Status(ByteSpan)>& sink) {
  HttpCall call;
  call.url = url;
  call.max_body_bytes = max_bytes;
  call.connect_timeout = options.connect_timeout;
  call.read_timeout = options.read_timeout;
  ASSIGN_OR_RETURN(HttpReply reply, PerformHttpCall(call, sink));
  if (reply.status >= 200 && reply.status < 300) return Status::Ok();
  // Metadata clients tell "not there" (the next root does not exist yet)
  // from "could not ask"; every other answer is the latter.
  std::string what = url + ": HTTP " + std::to_string(reply.status);
  if (reply.status == 404 || reply.status == 410) return NotFound(what);
  return Unavailable(what);
}

Result<std::string> HttpGet(const std::string& url, uint64_t max_bytes,
                            const HttpOptions& options) {
  std::string body;
  RETURN_IF_ERROR(HttpGetStream(url, max_bytes, options, [&](ByteSpan chunk) {
    body.append(AsStringView(chunk));
    return Status::Ok();
  }));
  return body;
}

Status HttpGetToFile(const std::string& url, uint64_t max_bytes, const std::string& path,
                     const HttpOptions& options) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IOErrorFromErrno("create " + path, errno);
  Status st = HttpGetStream(url, max_bytes, options,
                            [&](ByteSpan chunk) { return WriteAll(fd, chunk).WithContext(path); });
  if (::close(fd) != 0 && st.ok()) st = IOErrorFromErrno("close " + path, errno);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

}  // namespace flotilla::node
