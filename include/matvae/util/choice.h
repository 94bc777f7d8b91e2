// Typed choices: an enum with the names it is written as, parsed once where text comes in (flags,
// TOML) and written back by name. One table per enum, so the parse, the name and the message that
// lists the accepted names cannot drift apart. Free of LibTorch (the config fuzzer builds it).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "matvae/util/error.h"

namespace matvae {

template <typename E>
struct ChoiceTable {
  std::vector<std::pair<std::string, E>> names;  // in the order messages list them
  /// The message for text that names no value, e.g. "unknown decoder 'x' (expected tied or separate)".
  std::string (*unknown)(const std::string& text);

  /// The value `text` names; throws UsageError(unknown(text)) otherwise.
  E parse(const std::string& text) const {
    for (const auto& [name, value] : names)
      if (name == text) return value;
    throw UsageError(unknown(text));
  }
  /// The name of `value` (every value of E has one: a missing entry is a programming error).
  const std::string& name(E value) const {
    for (const auto& [name, v] : names)
      if (v == value) return name;
    throw std::logic_error("ChoiceTable: a value without a name");
  }
};

}  // namespace matvae
