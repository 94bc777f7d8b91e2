// Dependency-free SVG charts for the experiment report: line charts with error bars (e.g. accuracy
// against prefix length m) and class-coloured scatter plots (e.g. a 2-D view of the codes). The
// output is plain SVG 1.1 with a white background, so it renders in browsers and on GitHub alike.
// Files are written atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace matvae {

/// One line of a LinePlot. x and y have the same length; err is empty (no error bars) or the same
/// length, a half-width drawn as y ± err. Points whose x or y is not finite (or x <= 0 on a log2
/// axis) are skipped and break the line; a bar is drawn only where err is finite and > 0.
struct PlotSeries {
  std::string label;
  std::vector<double> x, y, err;
};

/// A line chart with one colour, dash pattern and marker shape per series and a legend on the right.
/// With log2_x, x is drawn on a log2 scale with ticks at the data's x values (2, 4, ..., 64).
struct LinePlot {
  std::string title, x_label, y_label;
  bool log2_x = false;
  std::vector<PlotSeries> series;
};

/// The chart as an SVG document (720 x 440, with a viewBox so that it scales). Text is
/// XML-escaped. Throws c10::Error if a series' x, y and err lengths disagree.
std::string render_svg(const LinePlot& plot);

/// render_svg written atomically; throws matvae::Error naming the path if it cannot be written.
void write_svg(const std::filesystem::path& path, const LinePlot& plot);

/// Points coloured by class: x, y: [N]; cls: [N] class indices, or empty for a single unnamed
/// class. class_names names classes 0, 1, ... in the legend; if empty, the legend shows the class
/// indices that occur. Points with a non-finite coordinate are skipped.
struct ScatterPlot {
  std::string title;
  std::vector<double> x, y;
  std::vector<int64_t> cls;
  std::vector<std::string> class_names;
};

/// The scatter as an SVG document (720 x 440): one small circle per point, in input order so that
/// no class hides the others, with a 10-colour palette (class c gets colour c mod 10). About 40
/// bytes per point. Throws c10::Error if lengths disagree or a class index is negative or has no
/// name in a non-empty class_names.
std::string render_scatter_svg(const ScatterPlot& plot);

/// render_scatter_svg written atomically; throws matvae::Error naming the path if it cannot be written.
void write_scatter_svg(const std::filesystem::path& path, const ScatterPlot& plot);

}  // namespace matvae
