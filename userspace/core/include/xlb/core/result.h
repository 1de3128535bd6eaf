// SPDX-License-Identifier: Apache-2.0
// Result<T>: a value or an Error, returned at every boundary that can fail (libbpf, files,
// parsing). No exceptions cross these boundaries. An Error carries a std::error_code (errno
// category for kernel failures) and a message that says what failed and what to do.
#pragma once

#include <cassert>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace xlb {

struct Error {
  std::error_code code;
  std::string message;

  // An error from a negative errno as returned by libbpf (-EPERM) or a positive errno.
  static Error from_errno(int err, std::string what);
  // A validation error (bad input from a user, a file or the API).
  static Error invalid(std::string what);

  // "message: strerror(code)" for errno errors, the message alone otherwise.
  std::string to_string() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<Error>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(failed_);
    return error_;
  }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace xlb

// Propagates a failed Result/Status from the enclosing function.
#define XLB_TRY(expr)                                    \
  do {                                                   \
    auto xlb_try_status_ = (expr);                       \
    if (!xlb_try_status_.ok()) return xlb_try_status_.error(); \
  } while (0)
