// SVG scatter plots of points coloured by class, built as text (svg_canvas.h has the pieces shared
// with the line charts).
#include "matvae/io/svg_plot.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "matvae/util/file_io.h"
#include "svg_canvas.h"

namespace matvae {
using namespace svg;

std::string render_scatter_svg(const ScatterPlot& plot) {
  const size_t n = plot.x.size();
  TORCH_CHECK(plot.y.size() == n, "scatter plot: ", n, " x values but ", plot.y.size(), " y values");
  TORCH_CHECK(plot.cls.empty() || plot.cls.size() == n, "scatter plot: ", plot.cls.size(), " classes for ", n,
              " points (expected none or one per point)");
  std::set<int64_t> present;
  for (const int64_t c : plot.cls) {
    TORCH_CHECK(c >= 0 && (plot.class_names.empty() || c < static_cast<int64_t>(plot.class_names.size())),
                "scatter plot: class ", c, " is out of range for ", plot.class_names.size(), " class names");
    present.insert(c);
  }
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(plot.x[i]) || !std::isfinite(plot.y[i])) continue;
    x_lo = std::min(x_lo, plot.x[i]), x_hi = std::max(x_hi, plot.x[i]);
    y_lo = std::min(y_lo, plot.y[i]), y_hi = std::max(y_hi, plot.y[i]);
  }

  // Legend entries: every named class, else the class indices that occur; none for a single class.
  std::vector<std::pair<int64_t, std::string>> legend;
  if (!plot.cls.empty()) {
    if (!plot.class_names.empty())
      for (size_t c = 0; c < plot.class_names.size(); ++c) legend.emplace_back(c, plot.class_names[c]);
    else
      for (const int64_t c : present) legend.emplace_back(c, std::to_string(c));
  }
  size_t chars = 0;
  for (const auto& e : legend) chars = std::max(chars, text_length(e.second));
  const double legend_w = legend.empty() ? 0 : legend_width(chars, 10);
  const double right = kWidth - (legend.empty() ? 24 : legend_w + 24);
  const double top = plot.title.empty() ? 20 : 44, bottom = kHeight - 34;

  Axis y;
  std::tie(y.lo, y.hi) = padded_range(y_lo, y_hi);
  y.px0 = bottom, y.px1 = top, y.ticks = linear_ticks(y.lo, y.hi);
  Axis x;
  std::tie(x.lo, x.hi) = padded_range(x_lo, x_hi);
  x.px0 = left_margin(y.ticks, false), x.px1 = right, x.ticks = linear_ticks(x.lo, x.hi);

  // Colours come from a style sheet, so each point is just a short <circle> with a class.
  std::string svg = svg_open();
  svg += "<style>circle{fill-opacity:.7}";
  for (int c = 0; c < kColours; ++c) svg += fmt::format(".c{}{{fill:{}}}", c, kPalette[c]);
  svg += "</style>\n";
  draw_labels(svg, plot.title, "", "", x.px0, right, top, bottom);
  draw_frame(svg, x, y);
  svg += "<g>\n";
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(plot.x[i]) || !std::isfinite(plot.y[i])) continue;
    const int64_t c = plot.cls.empty() ? 0 : plot.cls[i] % kColours;
    svg += fmt::format("<circle class=\"c{}\" cx=\"{}\" cy=\"{}\" r=\"2\"/>\n", c, num(x.map(plot.x[i])),
                       num(y.map(plot.y[i])));
  }
  svg += "</g>\n";

  if (!legend.empty()) {
    const double lx = right + 16, row = 20, h = 10 + row * legend.size();
    svg += fmt::format("<g font-size=\"12\" fill=\"#222\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                       "fill=\"#fff\" stroke=\"#ccc\"/>\n", num(lx), num(top), num(legend_w), num(h));
    for (size_t k = 0; k < legend.size(); ++k) {
      const double cy = top + 5 + row * (k + 0.5);
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" rx=\"5\" fill=\"{}\"/>\n", num(lx + 10),
                         num(cy - 5), kPalette[legend[k].first % kColours]);
      svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(lx + 28), num(cy + 4),
                         xml_escape(shorten(legend[k].second, kMaxLegendChars)));
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_scatter_svg(const std::filesystem::path& path, const ScatterPlot& plot) {
  write_file_atomic(path, render_scatter_svg(plot));
}

}  // namespace matvae
