// A Boost.Beast body that streams a byte range of an open file with pread, in
// 64 KiB chunks, so serving a large artifact costs constant memory.
#pragma once

#include <unistd.h>

#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <memory>
#include <utility>

#include "core/fd.h"

namespace flotilla::http {

struct FileRangeBody {
  struct value_type {
    std::shared_ptr<UniqueFd> file;
    uint64_t offset = 0;
    uint64_t length = 0;
    // Incremented by the bytes actually handed to the socket (may be null).
    std::shared_ptr<std::atomic<uint64_t>> bytes_served;
  };

  static uint64_t size(const value_type& body) { return body.length; }

  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body)
        : body_(body), position_(body.offset), remaining_(body.length) {}

    void init(boost::beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      if (remaining_ == 0) {
        ec = {};
        return boost::none;
      }
      const size_t want = static_cast<size_t>(std::min<uint64_t>(remaining_, sizeof buffer_));
      ssize_t n = ::pread(body_.file->get(), buffer_, want, static_cast<off_t>(position_));
      if (n <= 0) {  // the file shrank or failed under us: end the response with an error
        ec = boost::system::error_code(n < 0 ? errno : EIO, boost::system::generic_category());
        return boost::none;
      }
      position_ += static_cast<uint64_t>(n);
      remaining_ -= static_cast<uint64_t>(n);
      if (body_.bytes_served) *body_.bytes_served += static_cast<uint64_t>(n);
      ec = {};
      return {{const_buffers_type(buffer_, static_cast<size_t>(n)), remaining_ > 0}};
    }

   private:
    const value_type& body_;
    uint64_t position_;
    uint64_t remaining_;
    char buffer_[64 << 10];
  };
};

}  // namespace flotilla::http
