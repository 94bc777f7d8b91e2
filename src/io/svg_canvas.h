// The pieces the SVG charts of svg_plot.h share: size, palette and styles, XML escaping, text
// width estimates, "nice" ticks, axes, the frame, labels and markers. Private to src/io.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace matvae::svg {

inline constexpr double kWidth = 720, kHeight = 440;
inline constexpr double kCharWidth = 7.0;  // average advance of a 12px sans-serif glyph (DejaVu Sans: ~7)
inline constexpr size_t kMaxLegendChars = 36;

// Tableau 10: distinct hues that stay apart for common colour-vision deficiencies.
inline constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
inline constexpr int kColours = 10;
// Five dash patterns and four marker shapes, so series also differ in print and in greyscale.
inline constexpr const char* kDashes[] = {"", "7 3", "2 2.5", "9 3 2 3", "4 4"};
inline constexpr int kNumDashes = 5, kNumMarkers = 4;

struct SeriesStyle {
  const char* colour;
  const char* dash;
  int marker;
};

struct Tick {
  double value;  // in axis units (log2 of the data on a log2 axis)
  std::string label;
};

/// A linear map from axis units [lo, hi] to pixels [px0, px1], with its ticks.
struct Axis {
  double lo = 0, hi = 1, px0 = 0, px1 = 1;
  std::vector<Tick> ticks;
  double map(double v) const { return px0 + (v - lo) / (hi - lo) * (px1 - px0); }
};

/// Series i: colour i mod 10; past ten series the dash and marker shift, so pairs stay distinct.
SeriesStyle series_style(size_t i);

/// Text for element content or attribute values: markup characters escaped, control characters
/// (illegal in XML 1.0) replaced by spaces and invalid UTF-8 by U+FFFD, so the document always parses.
std::string xml_escape(const std::string& s);

/// Code points in UTF-8 text (continuation bytes are not counted), for width estimates.
size_t text_length(const std::string& s);

/// At most `max_chars` code points, with an ellipsis if anything was cut.
std::string shorten(const std::string& s, size_t max_chars);

/// A pixel coordinate with one decimal and no trailing ".0"; a non-finite value (which the layout
/// never produces) is written as 0 so that the document never says "nan".
std::string num(double v);

/// The data range widened by 5% on each side (a flat range by 10% of its value, or 1), so that
/// markers and error bars never sit on the frame. No data gives [0, 1].
std::pair<double, double> padded_range(double lo, double hi);

/// 1, 2 or 5 times a power of ten, giving about `target` intervals over `span`.
double nice_step(double span, double target);

/// A tick value with as many decimals as the step needs (0.05 -> 2), in plain notation unless the
/// numbers are very large or very fine.
std::string format_tick(double v, double step);

/// An x value on a log2 axis: integers as integers (64, not 6.4e+01), anything else shortest.
std::string format_log2_tick(double v);

/// Ticks at multiples of a nice step inside [lo, hi].
std::vector<Tick> linear_ticks(double lo, double hi);

/// Ticks on a log2 axis: at the distinct data values when there are few (the prefix lengths 2, 4,
/// ..., 64 of a sweep), else at the powers of two in range.
std::vector<Tick> log2_ticks(const std::set<double>& xs, double lo, double hi);

/// The plot frame: light grid lines at the ticks, tick marks and labels, the left and bottom axis
/// lines. Tick labels that would overlap the previous one on the x axis are left out.
void draw_frame(std::string& svg, const Axis& x, const Axis& y);

/// Left margin that fits the y tick labels (and the rotated y-axis label, if any).
double left_margin(const std::vector<Tick>& y_ticks, bool has_y_label);

/// Legend box width for labels of at most `chars` code points after a `swatch`-pixel sample.
double legend_width(size_t chars, double swatch);

std::string svg_open();

/// Title above the plot area and axis labels below and left of it; empty ones are left out.
void draw_labels(std::string& svg, const std::string& title, const std::string& x_label, const std::string& y_label,
                 double left, double right, double top, double bottom);

/// One marker of shape `kind` (circle, square, diamond, triangle) centred on (x, y).
std::string marker(int kind, double x, double y);

/// The `<g>` that styles markers of one colour; a thin white outline separates overlapping ones.
std::string marker_group_open(const char* colour);

std::string dash_attr(const char* dash);

}  // namespace matvae::svg
