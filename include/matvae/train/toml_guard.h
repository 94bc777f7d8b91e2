// A guard in front of the TOML parser of the run settings. Free of LibTorch (the config fuzzer
// builds it).
#pragma once

#include <string>

namespace matvae {

/// toml++ 3.3 (Debian 12's) reaches __builtin_unreachable, i.e. undefined behaviour, on some
/// non-ASCII characters wherever it tests for whitespace: between and after tokens, inside keys and
/// bare values, after a line-ending backslash (upstream issues marzer/tomlplusplus#190 and #295;
/// found by fuzz/fuzz_config). TOML allows non-ASCII text only in strings and comments anyway, so
/// text with one anywhere else (or in a quoted key) is refused before it reaches the parser; string
/// values, such as a data path with an accent, and comments keep them.
/// Throws UsageError naming `name`, the line and the column of the first such character.
void refuse_non_ascii_outside_strings(const std::string& text, const std::string& name);

}  // namespace matvae
