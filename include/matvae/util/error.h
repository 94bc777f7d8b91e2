// Project error types. The library throws; only cli/main.cpp turns them into exit codes
// (UsageError -> 2, Error and anything else -> 1). Messages are one line and name the
// file, flag or value at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace matvae {

/// A run-time failure the user can fix: a missing or damaged file, a NaN loss, a full disk.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A bad flag, setting or config value: nothing has been done yet, so nothing was written.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

/// The first line of a message: errors are reported on one line.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace matvae
