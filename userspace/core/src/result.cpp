// SPDX-License-Identifier: Apache-2.0
#include "xlb/core/result.h"

#include <cstdlib>

namespace xlb {

Error Error::from_errno(int err, std::string what) {
  return Error{std::error_code(std::abs(err), std::generic_category()), std::move(what)};
}

Error Error::invalid(std::string what) {
  return Error{std::make_error_code(std::errc::invalid_argument), std::move(what)};
}

std::string Error::to_string() const {
  if (code == std::errc::invalid_argument || !code) return message;
  return message + ": " + code.message();
}

}  // namespace xlb
