// Status and Result<T>: how errors cross module boundaries in fordeler.
//
// A Status is either OK or carries a code and a human-readable message. Result<T> holds either a
// value or a non-OK Status. Exceptions never cross a module boundary; functions that can fail
// return one of these. Both are cheap to move and are not thread-safe to mutate concurrently.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace fordeler {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // bad input from a user or peer
    kNotFound,
    kAlreadyExists,
    kPermissionDenied,
    kIoError,  // an OS call failed; errno() tells which
    kNoSpace,
    kUnavailable,  // try again later
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  // An OS error: the code follows errno (ENOENT -> kNotFound, ENOSPC -> kNoSpace, ...).
  static Status FromErrno(int err, std::string context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int os_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code code, std::string msg, int err = 0)
      : code_(code), errno_(err), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// The usual test after a lookup or removal: "not there" is often an answer, not an error.
inline bool IsNotFound(const Status& s) { return s.code() == Status::Code::kNotFound; }

// Either a T or a non-OK Status. REQUIRES: a Result is never built from an OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace fordeler
