// What a request handler answers: a status, headers and either a small body
// in memory or a byte range of a file streamed from disk.
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/file_range_body.h"

namespace flotilla::http {

// Beast's status codes, header fields and methods, as http::status etc.
using boost::beast::http::field;
using boost::beast::http::status;
using boost::beast::http::verb;

struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                               // used when `file` is empty
  std::optional<FileRangeBody::value_type> file;  // streamed instead of `body`
  bool close_connection = false;                  // answer, then close
  // Who the request authenticated as (a device id; never a secret), when it
  // did: the server counts a kept-alive connection for them
  // (ServerOptions::max_connections_per_identity).
  std::string authenticated_as;
  // Set by a handler that answers later (a held request): the server calls
  // it at once with `answer`, and reads no further request on the
  // connection until `answer` is called. The handler keeps `answer` and
  // calls it at most once, on the server's thread; destroying it unanswered
  // closes the connection. The rest of this reply is then ignored.
  std::function<void(std::function<void(Reply)> answer)> later;

  static Reply Text(http::status status, std::string text) {
    Reply r;
    r.status = status;
    r.body = std::move(text);
    if (!r.body.empty() && r.body.back() != '\n') r.body += '\n';
    return r;
  }
  static Reply Typed(http::status status, std::string type, std::string body) {
    Reply r;
    r.status = status;
    r.content_type = std::move(type);
    r.body = std::move(body);
    return r;
  }
};

}  // namespace flotilla::http
