// Status and Result<T>: errors as values.
//
// Every fallible call returns a Status or a Result<T>; both are [[nodiscard]].
// A Status carries a code (what kind of failure, so callers can branch) and a
// message that reads as a sentence for a person, with context prepended as it
// travels up: "import image.tar: layer 2: unpack: entry '../x' escapes root".
// No exceptions cross module boundaries; wrappers around throwing libraries
// (Boost, libtorrent, nlohmann::json) catch and convert at the call site.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace flotilla {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a thing to create exists already
  kCorruption,          // stored or received bytes fail a check (hash, signature, format)
  kPermissionDenied,    // refused by policy: unsafe path, bad key file mode, unknown credential
  kResourceExhausted,   // a bound was hit: size limit, disk full, decompression bomb
  kFailedPrecondition,  // the system is not in a state where this can run
  kUnavailable,         // a peer or service cannot be reached now; retry may work
  kDeadlineExceeded,    // a timeout elapsed
  kIOError,             // the operating system said no
  kInternal,            // a bug: an invariant was broken
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "Code: message", or "OK".
  std::string ToString() const;

  // Prepends "context: " to the message; an OK status stays OK.
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status Corruption(std::string message);
Status PermissionDenied(std::string message);
Status ResourceExhausted(std::string message);
Status FailedPrecondition(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status Internal(std::string message);
// An IOError whose message ends with strerror(err).
Status IOErrorFromErrno(std::string_view what, int err);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok() && "Result built from an OK Status");
    if (std::get<Status>(state_).ok())
      state_ = Status(StatusCode::kInternal, "OK status in Result");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }

  // REQUIRES: !ok() for a meaningful status; an OK Result yields Status::Ok().
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(state_); }

  // REQUIRES: ok()
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

  Result WithContext(std::string_view context) && {
    if (ok()) return std::move(*this);
    return std::get<Status>(state_).WithContext(context);
  }

 private:
  std::variant<T, Status> state_;
};

}  // namespace flotilla

#define FLOTILLA_CONCAT_INNER(a, b) a##b
#define FLOTILLA_CONCAT(a, b) FLOTILLA_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)        \
  do {                               \
    ::flotilla::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)

// Like RETURN_IF_ERROR, with context prepended to the message.
#define RETURN_IF_ERROR_CTX(expr, context)          \
  do {                                              \
    ::flotilla::Status _st = (expr);                \
    if (!_st.ok()) return _st.WithContext(context); \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from a Result or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(FLOTILLA_CONCAT(_result_, __LINE__), lhs, expr)
