// SVG line charts built as text: data ranges, error bars, a legend on the right (svg_canvas.h has
// the pieces shared with the scatter plot).
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

std::string render_svg(const LinePlot& plot) {
  // Data ranges over the points that will be drawn; y includes the error bars.
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  std::set<double> xs;
  const auto drawn = [&](const PlotSeries& s, size_t i) {
    return std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!plot.log2_x || s.x[i] > 0);
  };
  const auto bar = [](const PlotSeries& s, size_t i) {
    return !s.err.empty() && std::isfinite(s.err[i]) && s.err[i] > 0 ? s.err[i] : 0.0;
  };
  for (const auto& s : plot.series) {
    TORCH_CHECK(s.x.size() == s.y.size(), "line plot: series \"", s.label, "\" has ", s.x.size(), " x values but ",
                s.y.size(), " y values");
    TORCH_CHECK(s.err.empty() || s.err.size() == s.y.size(), "line plot: series \"", s.label, "\" has ",
                s.err.size(), " error bars for ", s.y.size(), " points (expected none or one per point)");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!drawn(s, i)) continue;
      const double xv = plot.log2_x ? std::log2(s.x[i]) : s.x[i], e = bar(s, i);
      x_lo = std::min(x_lo, xv), x_hi = std::max(x_hi, xv);
      y_lo = std::min(y_lo, s.y[i] - e), y_hi = std::max(y_hi, s.y[i] + e);
      xs.insert(s.x[i]);
    }
  }
  const bool has_data = !xs.empty();

  // Layout: the legend on the right sized to its longest label; the y tick labels set the left margin.
  size_t chars = 0;
  for (const auto& s : plot.series) chars = std::max(chars, text_length(s.label));
  const double legend_w = plot.series.empty() ? 0 : legend_width(chars, 30);
  const double right = kWidth - (plot.series.empty() ? 24 : legend_w + 24);
  const double top = plot.title.empty() ? 20 : 44, bottom = kHeight - (plot.x_label.empty() ? 34 : 52);

  Axis y;
  std::tie(y.lo, y.hi) = padded_range(y_lo, y_hi);
  y.px0 = bottom, y.px1 = top, y.ticks = linear_ticks(y.lo, y.hi);
  Axis x;
  std::tie(x.lo, x.hi) = padded_range(x_lo, x_hi);
  x.px0 = left_margin(y.ticks, !plot.y_label.empty()), x.px1 = right;
  x.ticks = plot.log2_x ? log2_ticks(xs, x.lo, x.hi) : linear_ticks(x.lo, x.hi);
  const double left = x.px0;

  std::string svg = svg_open();
  draw_labels(svg, plot.title, plot.x_label, plot.y_label, left, right, top, bottom);
  draw_frame(svg, x, y);
  if (!has_data)
    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#888\" text-anchor=\"middle\">no data</text>\n",
                       num(0.5 * (left + right)), num(0.5 * (top + bottom)));

  for (size_t k = 0; k < plot.series.size(); ++k) {
    const auto& s = plot.series[k];
    const auto style = series_style(k);
    const auto px = [&](size_t i) { return x.map(plot.log2_x ? std::log2(s.x[i]) : s.x[i]); };
    svg += fmt::format("<g>\n<title>{}</title>\n", xml_escape(s.label));
    // Error bars first, then the line, then markers on top. Each bar is one path: stem and two caps.
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double e = drawn(s, i) ? bar(s, i) : 0.0;
      if (e <= 0) continue;
      const double cx = px(i), y0 = y.map(s.y[i] - e), y1 = y.map(s.y[i] + e);
      svg += fmt::format("<path class=\"err\" d=\"M{0} {1}V{2}M{3} {1}h8M{3} {2}h8\" stroke=\"{4}\" "
                         "stroke-width=\"1.2\" fill=\"none\"/>\n", num(cx), num(y0), num(y1), num(cx - 4), style.colour);
    }
    // A skipped point breaks the line rather than bridging the gap.
    std::string d;
    size_t run = 0;
    bool any_segment = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!drawn(s, i)) {
        run = 0;
        continue;
      }
      d += fmt::format("{}{} {}", run == 0 ? "M" : "L", num(px(i)), num(y.map(s.y[i])));
      any_segment = any_segment || ++run >= 2;
    }
    if (any_segment)
      svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"{}/>\n",
                         d, style.colour, dash_attr(style.dash));
    svg += marker_group_open(style.colour);
    for (size_t i = 0; i < s.x.size(); ++i)
      if (drawn(s, i)) svg += marker(style.marker, px(i), y.map(s.y[i]));
    svg += "</g>\n</g>\n";
  }

  if (!plot.series.empty()) {
    const double lx = right + 16, row = 20, h = 10 + row * plot.series.size();
    svg += fmt::format("<g font-size=\"12\" fill=\"#222\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                       "fill=\"#fff\" stroke=\"#ccc\"/>\n", num(lx), num(top), num(legend_w), num(h));
    for (size_t k = 0; k < plot.series.size(); ++k) {
      const auto style = series_style(k);
      const double cy = top + 5 + row * (k + 0.5);
      svg += fmt::format("<path d=\"M{} {}h30\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", num(lx + 10), num(cy),
                         style.colour, dash_attr(style.dash));
      svg += marker_group_open(style.colour) + marker(style.marker, lx + 25, cy) + "</g>\n";
      svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(lx + 48), num(cy + 4),
                         xml_escape(shorten(plot.series[k].label, kMaxLegendChars)));
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_svg(const std::filesystem::path& path, const LinePlot& plot) { write_file_atomic(path, render_svg(plot)); }

}  // namespace matvae
