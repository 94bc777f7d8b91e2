// Shared SVG chart pieces; see svg_canvas.h. Fonts are never measured: text widths are estimated
// from character counts, which is close enough for tick labels and legend entries.
#include "svg_canvas.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace matvae::svg {
/// Series i: colour i mod 10; past ten series the dash and marker shift, so pairs stay distinct.
SeriesStyle series_style(size_t i) {
  const size_t round = i / kColours;
  return {kPalette[i % kColours], kDashes[(i + round) % kNumDashes], static_cast<int>((i + round) % kNumMarkers)};
}

/// Text for element content or attribute values: markup characters escaped, control characters
/// (illegal in XML 1.0) replaced by spaces and invalid UTF-8 by U+FFFD, so the document always parses.
std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: lead byte, continuation count and smallest valid code point.
    const size_t n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    uint32_t cp = n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
    bool ok = n > 0 && i + n < s.size();
    for (size_t k = 1; ok && k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3f);
    }
    ok = ok && !(n == 2 && cp < 0x800) && !(n == 3 && (cp < 0x10000 || cp > 0x10ffff)) &&
         !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe && cp != 0xffff;
    if (ok) {
      out.append(s, i, n + 1);
      i += n + 1;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

/// Code points in UTF-8 text (continuation bytes are not counted), for width estimates.
size_t text_length(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char ch) { return (ch & 0xc0) != 0x80; }));
}

/// At most `max_chars` code points, with an ellipsis if anything was cut.
std::string shorten(const std::string& s, size_t max_chars) {
  if (text_length(s) <= max_chars) return s;
  size_t count = 0, i = 0;
  for (; i < s.size(); ++i)
    if ((s[i] & 0xc0) != 0x80 && ++count == max_chars) break;  // keep max_chars - 1, then the ellipsis
  return s.substr(0, i) + "\xe2\x80\xa6";
}

/// A pixel coordinate with one decimal and no trailing ".0"; a non-finite value (which the layout
/// never produces) is written as 0 so that the document never says "nan".
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.1f}", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

/// The data range widened by 5% on each side (a flat range by 10% of its value, or 1), so that
/// markers and error bars never sit on the frame. No data gives [0, 1].
std::pair<double, double> padded_range(double lo, double hi) {
  if (!(lo <= hi)) return {0, 1};
  const double span = hi - lo;
  if (span <= 1e-12 * std::max(1.0, std::abs(lo))) {
    const double half = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
    return {lo - half, hi + half};
  }
  return {lo - 0.05 * span, hi + 0.05 * span};
}

/// 1, 2 or 5 times a power of ten, giving about `target` intervals over `span`.
double nice_step(double span, double target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

/// A tick value with as many decimals as the step needs (0.05 -> 2), in plain notation unless the
/// numbers are very large or very fine.
std::string format_tick(double v, double step) {
  if (std::abs(v) < step * 1e-6) return "0";
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (decimals <= 6 && std::abs(v) < 1e7) return fmt::format("{:.{}f}", v, decimals);
  const int digits = static_cast<int>(std::ceil(std::log10(std::abs(v) / step))) + 1;
  return fmt::format("{:.{}g}", v, std::clamp(digits, 1, 15));
}

/// An x value on a log2 axis: integers as integers (64, not 6.4e+01), anything else shortest.
std::string format_log2_tick(double v) {
  if (v == std::round(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:g}", v);
}



/// Ticks at multiples of a nice step inside [lo, hi].
std::vector<Tick> linear_ticks(double lo, double hi) {
  const double step = nice_step(hi - lo, 6);
  std::vector<Tick> ticks;
  const auto first = static_cast<int64_t>(std::ceil(lo / step - 1e-9));
  const auto last = static_cast<int64_t>(std::floor(hi / step + 1e-9));
  for (int64_t k = first; k <= last; ++k) ticks.push_back({k * step, format_tick(k * step, step)});
  return ticks;
}

/// Ticks on a log2 axis: at the distinct data values when there are few (the prefix lengths 2, 4,
/// ..., 64 of a sweep), else at the powers of two in range.
std::vector<Tick> log2_ticks(const std::set<double>& xs, double lo, double hi) {
  std::vector<Tick> ticks;
  if (!xs.empty() && xs.size() <= 12) {
    for (double x : xs) ticks.push_back({std::log2(x), format_log2_tick(x)});
  } else {
    for (double e = std::ceil(lo); e <= std::floor(hi); ++e) ticks.push_back({e, format_log2_tick(std::exp2(e))});
    // Many values within one octave: no power of two in range, so mark the ends of the data.
    if (ticks.empty() && !xs.empty())
      for (double x : {*xs.begin(), *xs.rbegin()}) ticks.push_back({std::log2(x), format_log2_tick(x)});
  }
  return ticks;
}

/// The plot frame: light grid lines at the ticks, tick marks and labels, the left and bottom axis
/// lines. Tick labels that would overlap the previous one on the x axis are left out.
void draw_frame(std::string& svg, const Axis& x, const Axis& y) {
  const double left = x.px0, right = x.px1, bottom = y.px0, top = y.px1;
  svg += "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (const auto& t : x.ticks) svg += fmt::format("<path d=\"M{} {}V{}\"/>\n", num(x.map(t.value)), num(top), num(bottom));
  for (const auto& t : y.ticks) svg += fmt::format("<path d=\"M{} {}H{}\"/>\n", num(left), num(y.map(t.value)), num(right));
  svg += "</g>\n<g stroke=\"#444\" stroke-width=\"1\">\n";
  for (const auto& t : x.ticks) svg += fmt::format("<path d=\"M{} {}v5\"/>\n", num(x.map(t.value)), num(bottom));
  for (const auto& t : y.ticks) svg += fmt::format("<path d=\"M{} {}h-5\"/>\n", num(left), num(y.map(t.value)));
  svg += fmt::format("<path d=\"M{} {}V{}H{}\" fill=\"none\"/>\n</g>\n", num(left), num(top), num(bottom), num(right));
  svg += "<g font-size=\"11\" fill=\"#333\" text-anchor=\"middle\">\n";
  double last_end = -1e9;
  for (const auto& t : x.ticks) {
    const double px = x.map(t.value), half = 0.5 * text_length(t.label) * kCharWidth * 11 / 12;
    if (px - half < last_end + 6) continue;
    last_end = px + half;
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(px), num(bottom + 18), xml_escape(t.label));
  }
  svg += "</g>\n<g font-size=\"11\" fill=\"#333\" text-anchor=\"end\">\n";
  for (const auto& t : y.ticks)
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(left - 8), num(y.map(t.value) + 4), xml_escape(t.label));
  svg += "</g>\n";
}

/// Left margin that fits the y tick labels (and the rotated y-axis label, if any).
double left_margin(const std::vector<Tick>& y_ticks, bool has_y_label) {
  size_t chars = 1;
  for (const auto& t : y_ticks) chars = std::max(chars, text_length(t.label));
  return (has_y_label ? 34 : 12) + chars * kCharWidth * 11 / 12 + 10;
}

/// Legend box width for labels of at most `chars` code points after a `swatch`-pixel sample.
double legend_width(size_t chars, double swatch) {
  return std::min(300.0, 10 + swatch + 8 + std::min(chars, kMaxLegendChars) * kCharWidth + 10);
}

std::string svg_open() {
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>\n",
      kWidth, kHeight);
}

/// Title above the plot area and axis labels below and left of it; empty ones are left out.
void draw_labels(std::string& svg, const std::string& title, const std::string& x_label, const std::string& y_label,
                 double left, double right, double top, double bottom) {
  const double cx = 0.5 * (left + right);
  if (!title.empty())
    svg += fmt::format("<text x=\"{}\" y=\"26\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\" "
                       "text-anchor=\"middle\">{}</text>\n", num(cx), xml_escape(title));
  if (!x_label.empty())
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#222\" text-anchor=\"middle\">{}</text>\n",
                       num(cx), num(kHeight - 12), xml_escape(x_label));
  if (!y_label.empty()) {
    const double cy = 0.5 * (top + bottom);
    svg += fmt::format("<text x=\"18\" y=\"{0}\" transform=\"rotate(-90 18 {0})\" font-size=\"13\" fill=\"#222\" "
                       "text-anchor=\"middle\">{1}</text>\n", num(cy), xml_escape(y_label));
  }
}

/// One marker of shape `kind` (circle, square, diamond, triangle) centred on (x, y).
std::string marker(int kind, double x, double y) {
  switch (kind) {
    case 1: return fmt::format("<rect x=\"{}\" y=\"{}\" width=\"6.6\" height=\"6.6\"/>\n", num(x - 3.3), num(y - 3.3));
    case 2: return fmt::format("<path d=\"M{} {}l4.4 4.4-4.4 4.4-4.4-4.4z\"/>\n", num(x), num(y - 4.4));
    case 3: return fmt::format("<path d=\"M{} {}l4.3 7.4h-8.6z\"/>\n", num(x), num(y - 4.6));
    default: return fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.6\"/>\n", num(x), num(y));
  }
}

/// The `<g>` that styles markers of one colour; a thin white outline separates overlapping ones.
std::string marker_group_open(const char* colour) {
  return fmt::format("<g fill=\"{}\" stroke=\"#fff\" stroke-width=\"0.8\">\n", colour);
}

std::string dash_attr(const char* dash) {
  return *dash ? fmt::format(" stroke-dasharray=\"{}\"", dash) : std::string();
}

}  // namespace matvae::svg
