// The guard that keeps non-ASCII text away from toml++'s undefined behaviour; see toml_guard.h.
#include "matvae/train/toml_guard.h"

#include <fmt/format.h>

#include <vector>

#include "matvae/util/error.h"

namespace matvae {

void refuse_non_ascii_outside_strings(const std::string& text, const std::string& name) {
  enum class Mode { kKey, kValueStart, kBare, kAfterValue };
  Mode mode = Mode::kKey;
  std::vector<char> levels;  // open '[' arrays and '{' inline tables of the current value
  size_t line = 1, line_start = 0;
  const size_t n = text.size();
  const auto ascii = [&](size_t i) { return static_cast<unsigned char>(text[i]) < 0x80; };
  const auto space = [&](size_t i) { return text[i] == ' ' || text[i] == '\t' || text[i] == '\r'; };
  const auto newline = [&](size_t i) {
    ++line;
    line_start = i + 1;
  };
  const auto refuse = [&](size_t i) {
    throw UsageError(fmt::format("{}:{}:{}: non-ASCII character outside a string value or comment", name, line,
                                 i - line_start + 1));
  };
  // The string opening at i: returns the index of its last character (or of the one before the
  // line break that ends an unterminated one-line string).
  const auto skip_string = [&](size_t i, bool value) {
    const char q = text[i];
    const bool multi = text.compare(i, 3, std::string(3, q)) == 0;  // (the parser reads one as a key, then refuses it)
    for (i += multi ? 3 : 1; i < n; ++i) {
      if (!ascii(i) && !value) refuse(i);
      if (text[i] == '\n') {
        if (!multi) return i - 1;
        newline(i);
      } else if (q == '"' && text[i] == '\\' && i + 1 < n) {
        ++i;
        if (!ascii(i)) refuse(i);
        if (multi && (space(i) || text[i] == '\n')) {
          // A line-ending backslash: the parser skips whitespace up to the next character.
          if (text[i] == '\n') newline(i);
          for (; i + 1 < n && (space(i + 1) || text[i + 1] == '\n'); ++i)
            if (text[i + 1] == '\n') newline(i + 1);
          if (i + 1 < n && !ascii(i + 1)) refuse(i + 1);
        } else if (text[i] == '\n') {
          return i - 1;
        }
      } else if (text[i] == q && (!multi || text.compare(i, 3, std::string(3, q)) == 0)) {
        size_t run = 1;  // a multi-line string ends with the last three of up to five quotes
        while (multi && run < 5 && i + run < n && text[i + run] == q) ++run;
        return i + run - 1;
      }
    }
    return n - 1;
  };
  const size_t bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // the parser skips a UTF-8 BOM
  for (size_t i = bom; i < n; ++i) {
    const char c = text[i];
    if (c == '#' && mode != Mode::kBare) {  // a comment, to the end of the line
      while (i + 1 < n && text[i + 1] != '\n') ++i;
      continue;
    }
    if (!ascii(i)) refuse(i);
    if (c == '\n') newline(i);
    const char top = levels.empty() ? 0 : levels.back();
    if (mode == Mode::kBare) {  // a number, boolean or date runs to the next terminator
      if (!(space(i) || c == '\n' || c == ',' || c == ']' || c == '}' || c == '#')) continue;
      mode = Mode::kAfterValue;
      if (c == '#') {
        while (i + 1 < n && text[i + 1] != '\n') ++i;
        continue;
      }
    }
    switch (mode) {
      case Mode::kKey:
        if (c == '"' || c == '\'') {
          i = skip_string(i, false);
        } else if (c == '=') {
          mode = Mode::kValueStart;
        } else if (c == '}' && top == '{') {
          levels.pop_back();
          mode = Mode::kAfterValue;
        }
        break;
      case Mode::kValueStart:
        if (c == '\n' && top == 0) {
          mode = Mode::kKey;
        } else if (c == '"' || c == '\'') {
          i = skip_string(i, true);
          mode = Mode::kAfterValue;
        } else if (c == '[') {
          levels.push_back('[');
        } else if (c == '{') {
          levels.push_back('{');
          mode = Mode::kKey;
        } else if ((c == ']' && top == '[') || (c == '}' && top == '{')) {
          levels.pop_back();
          mode = Mode::kAfterValue;
        } else if (!space(i) && c != '\n' && c != ',') {
          mode = Mode::kBare;
        }
        break;
      case Mode::kAfterValue:
      case Mode::kBare:
        if (c == '\n' && top != '[') {
          mode = Mode::kKey;
          levels.clear();
        } else if (c == ',') {
          mode = top == '[' ? Mode::kValueStart : Mode::kKey;
        } else if ((c == ']' || c == '}') && top != 0) {
          levels.pop_back();
        }
        break;
    }
  }
}


}  // namespace matvae
