// Report outputs: SVG charts (checked to parse as XML with Python's ElementTree, then for their
// labels, escaping, error bars, log2 ticks and NaN handling) and .npy files (read back by NumPy,
// by read_npy, and fed damaged to read_npy).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include "matvae/io/npy.h"
#include "matvae/io/svg_plot.h"
#include "matvae/util/error.h"
#include "test_util.h"

namespace {

using matvae::LinePlot;
using matvae::PlotSeries;
using matvae::ScatterPlot;
using namespace matvae_test;

/// Runs a Python snippet with sys.argv[1] = `path`; the test fails if it exits non-zero.
std::string run_python(const std::string& python, const std::string& code, const fs::path& path) {
  const auto r = matvae::run_process({python, "-c", code, path.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

/// Parses an SVG file with ElementTree (failing the test if it is not well-formed XML) and returns
/// the text content of every <text> element, one per line.
std::string svg_texts(const fs::path& path) {
  return run_python("python3",
                    "import sys, xml.etree.ElementTree as E\n"
                    "sys.stdout.reconfigure(encoding='utf-8')\n"
                    "t = E.parse(sys.argv[1])\n"
                    "assert t.getroot().tag == '{http://www.w3.org/2000/svg}svg', t.getroot().tag\n"
                    "for e in t.iter('{http://www.w3.org/2000/svg}text'): print(''.join(e.itertext()))\n",
                    path);
}

std::string read_text(const fs::path& path) {
  const auto b = read_bytes(path);
  return std::string(b.begin(), b.end());
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

bool has_line(const std::string& lines, const std::string& line) {
  return ("\n" + lines).find("\n" + line + "\n") != std::string::npos;
}

/// The error bars' (x, lower y, upper y) in pixels, in document order (each is "M x y0 V y1 ...").
std::vector<std::array<double, 3>> error_bars(const std::string& svg) {
  static const std::regex bar(R"re(class="err" d="M([-0-9.]+) ([-0-9.]+)V([-0-9.]+))re");
  std::vector<std::array<double, 3>> bars;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it)
    bars.push_back({std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3])});
  return bars;
}

/// Centres of the circle markers, in document order.
std::vector<std::array<double, 2>> circles(const std::string& svg) {
  static const std::regex circle(R"re(<circle cx="([-0-9.]+)" cy="([-0-9.]+)")re");
  std::vector<std::array<double, 2>> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle); it != std::sregex_iterator(); ++it)
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  return out;
}

LinePlot sample_plot() {
  LinePlot p;
  p.title = "Probe accuracy vs prefix length";
  p.x_label = "prefix length m";
  p.y_label = "accuracy";
  p.log2_x = true;
  p.series.push_back({"matryoshka", {2, 4, 8, 16, 32, 64}, {0.62, 0.74, 0.83, 0.89, 0.91, 0.92},
                      {0.01, 0.02, 0.015, 0.01, 0.008, 0.004}});
  p.series.push_back({"plain MMD", {2, 4, 8, 16, 32, 64}, {0.41, 0.55, 0.71, 0.85, 0.90, 0.915}, {}});
  p.series.push_back({"beta-VAE", {2, 4, 8, 16, 32, 64}, {0.45, 0.58, 0.70, 0.80, 0.86, 0.88},
                      {0.03, 0.02, 0.02, 0.01, 0.01, 0.01}});
  return p;
}

class SvgPlot : public TempDirTest {};

TEST_F(SvgPlot, LineChartIsWellFormedWithTitleAxisLabelsAndLegend) {
  const auto plot = sample_plot();
  matvae::write_svg(dir() / "acc.svg", plot);
  const std::string svg = read_text(dir() / "acc.svg");
  EXPECT_EQ(svg, matvae::render_svg(plot));
  EXPECT_TRUE(contains(svg, "viewBox=\"0 0 720 440\""));
  const std::string texts = svg_texts(dir() / "acc.svg");
  for (const std::string s : {plot.title, plot.x_label, plot.y_label, std::string("matryoshka"),
                              std::string("plain MMD"), std::string("beta-VAE")})
    EXPECT_TRUE(has_line(texts, s)) << s << " in\n" << texts;
  // Each series also carries its label as a tooltip.
  EXPECT_EQ(count(svg, "<title>"), 3u);
  // Nice y ticks over the data and bars (0.41 .. 0.924): steps of 0.1, labelled with one decimal.
  for (const std::string t : {"0.4", "0.5", "0.6", "0.7", "0.8", "0.9"}) EXPECT_TRUE(has_line(texts, t)) << t;
  EXPECT_FALSE(has_line(texts, "1.0")) << texts;
  const auto target = dir() / "no-such-folder" / "acc.svg";
  EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::write_svg(target, plot); }), target.string()));
}

TEST_F(SvgPlot, OneErrorBarPerPointWithErrorScaledToIt) {
  LinePlot p;
  p.series.push_back({"a", {1, 2, 3}, {0.5, 0.6, 0.7}, {0.01, 0.02, 0.04}});
  p.series.push_back({"b", {1, 2, 3}, {0.4, 0.5, 0.6}, {}});
  // No bar for a zero, NaN or negative half-width, nor for a point that is not drawn.
  p.series.push_back({"c", {1, 2, 3, 4, 5}, {0.3, 0.35, 0.4, NAN, 0.45}, {0.02, 0, NAN, 0.01, -1}});
  const std::string svg = matvae::render_svg(p);
  EXPECT_EQ(count(svg, "class=\"err\""), 4u);
  const auto bars = error_bars(svg);
  ASSERT_EQ(bars.size(), 4u);
  std::vector<double> len;
  for (const auto& b : bars) len.push_back(std::abs(b[2] - b[1]));
  // Bars span y ± err: centred on their point (series "a" has circle markers) ...
  const auto points = circles(svg);
  ASSERT_GE(points.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(bars[i][0], points[i][0], 0.05);
    EXPECT_NEAR(0.5 * (bars[i][1] + bars[i][2]), points[i][1], 0.1);
  }
  // ... with lengths proportional to err: 1 : 2 : 4 (and the last is 2).
  EXPECT_GT(len[0], 5.0);
  EXPECT_NEAR(len[1], 2 * len[0], 0.6);
  EXPECT_NEAR(len[2], 4 * len[0], 0.6);
  EXPECT_NEAR(len[3], 2 * len[0], 0.6);
}

TEST_F(SvgPlot, EscapesMarkupInAllText) {
  LinePlot p;
  p.title = "MMD <nested> & \"friends\"";
  p.x_label = "m < 64";
  p.y_label = "acc & loss";
  p.series.push_back({"a<b & c", {1, 2}, {1, 2}, {}});
  p.series.push_back({"tab\there 'q' \xc3\xa9", {1, 2}, {2, 3}, {}});
  matvae::write_svg(dir() / "esc.svg", p);
  const std::string svg = read_text(dir() / "esc.svg");
  EXPECT_FALSE(contains(svg, "a<b"));
  EXPECT_FALSE(contains(svg, "<nested>"));
  EXPECT_TRUE(contains(svg, "a&lt;b &amp; c"));
  const std::string texts = svg_texts(dir() / "esc.svg");
  EXPECT_TRUE(has_line(texts, "a<b & c")) << texts;
  EXPECT_TRUE(has_line(texts, "MMD <nested> & \"friends\"")) << texts;
  EXPECT_TRUE(has_line(texts, "m < 64")) << texts;
  EXPECT_TRUE(has_line(texts, "acc & loss")) << texts;
  EXPECT_TRUE(has_line(texts, "tab here 'q' \xc3\xa9")) << texts;
}

TEST_F(SvgPlot, InvalidUtf8AndControlCharactersStillParse) {
  LinePlot p;
  p.title = "bad \xff\xfe utf8 \x01 and cut \xe2\x82";
  p.series.push_back({std::string("nul\0inside", 10), {1}, {1}, {}});
  matvae::write_svg(dir() / "bad.svg", p);
  const std::string texts = svg_texts(dir() / "bad.svg");
  EXPECT_TRUE(contains(texts, "bad \xef\xbf\xbd\xef\xbf\xbd utf8   and cut")) << texts;
  EXPECT_TRUE(has_line(texts, "nul inside")) << texts;
}

TEST_F(SvgPlot, Log2AxisTicksAtDataValuesEvenlySpaced) {
  const std::string svg = matvae::render_svg(sample_plot());
  // x tick labels sit below the frame at one y; collect their x positions by label.
  static const std::regex tick(R"re(<text x="([0-9.]+)" y="([0-9.]+)">([0-9]+)</text>)re");
  std::vector<std::pair<std::string, double>> found;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tick); it != std::sregex_iterator(); ++it)
    found.emplace_back((*it)[3], std::stod((*it)[1]));
  const std::vector<std::string> expected = {"2", "4", "8", "16", "32", "64"};
  ASSERT_EQ(found.size(), expected.size()) << svg;
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(found[i].first, expected[i]);
  // Equal ratios are equal distances on a log2 axis.
  const double gap = found[1].second - found[0].second;
  EXPECT_GT(gap, 40);
  for (size_t i = 2; i < found.size(); ++i) EXPECT_NEAR(found[i].second - found[i - 1].second, gap, 0.25);

  // The same data on a linear axis: 32 -> 64 is far wider than 2 -> 4, and the ticks are round numbers.
  auto linear = sample_plot();
  linear.log2_x = false;
  const std::string lin = matvae::render_svg(linear);
  std::vector<std::string> labels;
  for (auto it = std::sregex_iterator(lin.begin(), lin.end(), tick); it != std::sregex_iterator(); ++it)
    labels.push_back((*it)[3]);
  EXPECT_EQ(labels, (std::vector<std::string>{"0", "10", "20", "30", "40", "50", "60"}));
}

TEST_F(SvgPlot, NanPointsAreSkippedAndBreakTheLine) {
  LinePlot p;
  p.series.push_back({"s", {1, 2, 3, 4, NAN, 6}, {0.5, NAN, 0.7, 0.8, 0.9, INFINITY}, {0.1, 0.1, NAN, 0.1, 0.1, 0.1}});
  matvae::write_svg(dir() / "nan.svg", p);
  const std::string svg = read_text(dir() / "nan.svg");
  svg_texts(dir() / "nan.svg");
  std::string lower = svg;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_FALSE(contains(lower, "nan"));
  EXPECT_FALSE(contains(lower, "inf"));
  // Points 1, 3 and 4 are drawn (circles, plus the legend's); bars on 1 and 4; the line restarts after the gap.
  EXPECT_EQ(count(svg, "<circle"), 3u + 1u);
  EXPECT_EQ(count(svg, "class=\"err\""), 2u);
  static const std::regex line(R"re(<path d="(M[^"]*)" fill="none" stroke=)re");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, line)) << svg;
  EXPECT_EQ(count(m[1], "M"), 2u) << m[1];
  EXPECT_EQ(count(m[1], "L"), 1u) << m[1];
}

TEST_F(SvgPlot, SinglePointEmptySeriesAndNoSeriesRender) {
  LinePlot one;
  one.title = "one";
  one.series.push_back({"single", {16}, {0.75}, {0.05}});
  one.series.push_back({"empty", {}, {}, {}});
  one.log2_x = true;
  matvae::write_svg(dir() / "one.svg", one);
  const std::string svg = read_text(dir() / "one.svg");
  const std::string texts = svg_texts(dir() / "one.svg");
  EXPECT_TRUE(has_line(texts, "single"));
  EXPECT_TRUE(has_line(texts, "empty"));
  EXPECT_TRUE(has_line(texts, "16")) << texts;  // the one x value is the one tick
  EXPECT_EQ(count(svg, "<circle"), 1u + 1u);     // its marker, plus the legend's
  EXPECT_EQ(count(svg, "class=\"err\""), 1u);
  EXPECT_FALSE(contains(svg, "nan"));
  EXPECT_EQ(count(svg, "stroke-linejoin"), 0u);  // no line through a single point

  LinePlot none;
  none.title = "nothing yet";
  matvae::write_svg(dir() / "none.svg", none);
  EXPECT_TRUE(has_line(svg_texts(dir() / "none.svg"), "no data"));
  LinePlot all_nan;
  all_nan.log2_x = true;
  all_nan.series.push_back({"x <= 0 on log2", {0, -2}, {1, 2}, {}});
  matvae::write_svg(dir() / "nan.svg", all_nan);
  EXPECT_TRUE(has_line(svg_texts(dir() / "nan.svg"), "no data"));
  EXPECT_FALSE(contains(read_text(dir() / "nan.svg"), "nan"));
}

TEST_F(SvgPlot, EightSeriesGetDistinctColoursDashesAndMarkers) {
  LinePlot p;
  for (int k = 0; k < 12; ++k)
    p.series.push_back({"s" + std::to_string(k), {1, 2, 3}, {1.0 * k, 1.0 * k + 1, 1.0 * k + 0.5}, {}});
  const std::string svg = matvae::render_svg(p);
  static const std::regex line(R"re(<path d="M[^"]*" fill="none" stroke="(#[0-9a-f]{6})" stroke-width="2" stroke-linejoin="round"( stroke-dasharray="[^"]*")?/>)re");
  std::set<std::string> colours, styles;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), line); it != std::sregex_iterator(); ++it) {
    colours.insert((*it)[1]);
    styles.insert(std::string((*it)[1]) + std::string((*it)[2]));
  }
  EXPECT_EQ(colours.size(), 10u);  // the palette's ten colours, then repeats ...
  EXPECT_EQ(styles.size(), 12u);   // ... with a different dash pattern
  std::set<std::string> dashes;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), line); it != std::sregex_iterator(); ++it)
    dashes.insert((*it)[2]);
  EXPECT_GE(dashes.size(), 4u);
}

TEST_F(SvgPlot, MismatchedLengthsAreRejected) {
  LinePlot p;
  p.series.push_back({"bad", {1, 2, 3}, {1, 2}, {}});
  EXPECT_TRUE(contains(error_message<c10::Error>([&] { matvae::render_svg(p); }), "bad"));
  p.series[0] = {"bad err", {1, 2}, {1, 2}, {0.1}};
  EXPECT_TRUE(contains(error_message<c10::Error>([&] { matvae::render_svg(p); }), "error bars"));
}

TEST_F(SvgPlot, ScatterHasOneCirclePerPointColouredByClass) {
  ScatterPlot p;
  p.title = "codes (first two dims) & labels";
  for (int i = 0; i < 10000; ++i) {
    p.x.push_back(std::sin(i * 0.37) * (1 + i % 10));
    p.y.push_back(std::cos(i * 0.11) * 3 - (i % 10));
    p.cls.push_back(i % 10);
  }
  p.x.push_back(NAN), p.y.push_back(1), p.cls.push_back(3);  // skipped
  for (int c = 0; c < 10; ++c) p.class_names.push_back(c == 0 ? "zero <0>" : std::to_string(c));
  matvae::write_scatter_svg(dir() / "sc.svg", p);
  const std::string svg = read_text(dir() / "sc.svg");
  EXPECT_EQ(count(svg, "<circle"), 10000u);
  // Short elements with coordinates rounded to 0.1 px keep the file small.
  static const std::regex circle(R"re(<circle class="c[0-9]" cx="[0-9]+(\.[0-9])?" cy="[0-9]+(\.[0-9])?" r="2"/>)re");
  EXPECT_EQ(std::distance(std::sregex_iterator(svg.begin(), svg.end(), circle), std::sregex_iterator()), 10000);
  EXPECT_LT(svg.size(), 600u * 1000u) << "10k points should stay well under a megabyte";
  EXPECT_FALSE(contains(svg, "nan"));
  const std::string texts = svg_texts(dir() / "sc.svg");
  EXPECT_TRUE(has_line(texts, p.title)) << texts;
  EXPECT_TRUE(has_line(texts, "zero <0>")) << texts;
  EXPECT_TRUE(has_line(texts, "9")) << texts;
  // Per-class counts and every circle inside the canvas, as Python reads the document.
  const std::string stats = run_python(
      "python3",
      "import sys, collections, xml.etree.ElementTree as E\n"
      "cs = list(E.parse(sys.argv[1]).iter('{http://www.w3.org/2000/svg}circle'))\n"
      "print(sorted(collections.Counter(c.get('class') for c in cs).items()))\n"
      "print(all(0 < float(c.get('cx')) < 720 and 0 < float(c.get('cy')) < 440 for c in cs))\n",
      dir() / "sc.svg");
  EXPECT_EQ(stats,
            "[('c0', 1000), ('c1', 1000), ('c2', 1000), ('c3', 1000), ('c4', 1000), ('c5', 1000), ('c6', 1000), "
            "('c7', 1000), ('c8', 1000), ('c9', 1000)]\nTrue\n");
}

TEST_F(SvgPlot, ScatterWithoutNamesOrClassesAndBadClasses) {
  ScatterPlot p;
  p.x = {0, 1, 2};
  p.y = {0, 1, 4};
  p.cls = {3, 12, 3};
  matvae::write_scatter_svg(dir() / "s.svg", p);
  const std::string texts = svg_texts(dir() / "s.svg");
  EXPECT_TRUE(has_line(texts, "3") && has_line(texts, "12")) << texts;  // legend of the classes present
  EXPECT_TRUE(contains(read_text(dir() / "s.svg"), "class=\"c2\""));    // 12 wraps to colour 2
  p.cls.clear();
  EXPECT_EQ(count(matvae::render_scatter_svg(p), "<circle"), 3u);
  p.cls = {0, 1, 2};
  p.class_names = {"a", "b"};
  EXPECT_TRUE(contains(error_message<c10::Error>([&] { matvae::render_scatter_svg(p); }), "class 2"));
  p.cls = {0, -1, 1};
  EXPECT_TRUE(contains(error_message<c10::Error>([&] { matvae::render_scatter_svg(p); }), "class -1"));
  p.cls = {0};
  EXPECT_THROW(matvae::render_scatter_svg(p), c10::Error);
}

// ---------------------------------------------------------------------------------------------
// .npy

class Npy : public TempDirTest {};

std::string hex(const torch::Tensor& t) {
  const auto c = t.contiguous();
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  std::string s;
  for (int64_t i = 0; i < c.numel() * c.element_size(); ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

/// dtype, shape, C-contiguity and the raw bytes of an array as NumPy loads it.
std::string numpy_describe(const fs::path& path) {
  return run_python(numpy_python(),
                    "import sys, numpy as np\n"
                    "a = np.load(sys.argv[1])\n"
                    "print(a.dtype, a.shape, a.flags.c_contiguous)\n"
                    "print(a.tobytes().hex())\n",
                    path);
}

#define REQUIRE_NUMPY() \
  if (numpy_python().empty()) GTEST_SKIP() << "no python3 with NumPy (apt-get install python3-numpy)"

TEST_F(Npy, NumPyLoadsFloatMatrix) {
  REQUIRE_NUMPY();
  const auto t = (torch::arange(12, torch::kFloat32).reshape({3, 4}) / 7 - 0.5f);
  matvae::write_npy(dir() / "z.npy", t);
  EXPECT_EQ(numpy_describe(dir() / "z.npy"), "float32 (3, 4) True\n" + hex(t) + "\n");
  // Exact values, as NumPy prints them: 5 / 7 - 0.5 in float32.
  EXPECT_EQ(run_python(numpy_python(), "import sys, numpy as np; print(repr(float(np.load(sys.argv[1])[1, 1])))",
                       dir() / "z.npy"),
            fmt::format("{}\n", static_cast<double>(5.0f / 7 - 0.5f)));
}

TEST_F(Npy, NumPyLoadsNonContiguousTensorInCOrder) {
  REQUIRE_NUMPY();
  const auto base = torch::arange(6, torch::kFloat32).reshape({2, 3});
  const auto t = base.t();  // not contiguous: written in C order of the [3, 2] view
  ASSERT_FALSE(t.is_contiguous());
  matvae::write_npy(dir() / "t.npy", t);
  EXPECT_EQ(numpy_describe(dir() / "t.npy"), "float32 (3, 2) True\n" + hex(t.contiguous()) + "\n");
  EXPECT_EQ(run_python(numpy_python(), "import sys, numpy as np; print(np.load(sys.argv[1]).ravel().tolist())",
                       dir() / "t.npy"),
            "[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]\n");
}

TEST_F(Npy, NumPyLoadsInt64VectorAndUint8Cube) {
  REQUIRE_NUMPY();
  const auto labels = torch::tensor({int64_t{-3}, int64_t{0}, int64_t{7}, int64_t{1} << 40, int64_t{9}}, torch::kInt64);
  matvae::write_npy(dir() / "y.npy", labels);
  EXPECT_EQ(numpy_describe(dir() / "y.npy"), "int64 (5,) True\n" + hex(labels) + "\n");
  EXPECT_EQ(run_python(numpy_python(), "import sys, numpy as np; print(np.load(sys.argv[1]).tolist())",
                       dir() / "y.npy"),
            "[-3, 0, 7, 1099511627776, 9]\n");
  const auto cube = torch::arange(24, torch::kInt64).mul(11).remainder(256).to(torch::kUInt8).reshape({2, 3, 4});
  matvae::write_npy(dir() / "u.npy", cube);
  EXPECT_EQ(numpy_describe(dir() / "u.npy"), "uint8 (2, 3, 4) True\n" + hex(cube) + "\n");
  const auto scalar = torch::tensor(2.5f);
  matvae::write_npy(dir() / "s.npy", scalar);
  EXPECT_EQ(numpy_describe(dir() / "s.npy"), "float32 () True\n" + hex(scalar) + "\n");
  matvae::write_npy(dir() / "e.npy", torch::zeros({0, 5}));
  EXPECT_EQ(numpy_describe(dir() / "e.npy"), "float32 (0, 5) True\n\n");
}

TEST_F(Npy, ReadsFilesWrittenByNumPy) {
  REQUIRE_NUMPY();
  run_python(numpy_python(),
             "import sys, numpy as np\n"
             "np.save(sys.argv[1] + '/f.npy', (np.arange(6, dtype=np.float32).reshape(2, 3) - 2) / 4)\n"
             "np.save(sys.argv[1] + '/i.npy', np.array([5, -1, 2**40], dtype=np.int64))\n"
             "np.save(sys.argv[1] + '/u.npy', np.arange(8, dtype=np.uint8).reshape(2, 2, 2))\n",
             dir());
  const auto f = matvae::read_npy(dir() / "f.npy");
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  expect_close(f, (torch::arange(6, torch::kFloat32).reshape({2, 3}) - 2) / 4, 0);
  const auto i = matvae::read_npy(dir() / "i.npy");
  EXPECT_EQ(i.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(i, torch::tensor({int64_t{5}, int64_t{-1}, int64_t{1} << 40})));
  const auto u = matvae::read_npy(dir() / "u.npy");
  EXPECT_EQ(u.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(u, torch::arange(8, torch::kInt64).to(torch::kUInt8).reshape({2, 2, 2})));
}

TEST_F(Npy, RoundTripsThroughReadNpy) {
  torch::manual_seed(7);
  const std::vector<torch::Tensor> tensors = {
      torch::randn({17, 8}), torch::randint(-1000, 1000, {33}, torch::kInt64),
      torch::randint(0, 256, {3, 4, 5}, torch::kInt64).to(torch::kUInt8), torch::tensor(-1.25f),
      torch::zeros({0, 3}, torch::kInt64), torch::randn({2, 1, 3, 1, 2})};
  for (size_t k = 0; k < tensors.size(); ++k) {
    SCOPED_TRACE(k);
    const auto path = dir() / ("t" + std::to_string(k) + ".npy");
    matvae::write_npy(path, tensors[k]);
    const auto back = matvae::read_npy(path);
    EXPECT_EQ(back.scalar_type(), tensors[k].scalar_type());
    EXPECT_EQ(back.sizes(), tensors[k].sizes());
    EXPECT_TRUE(torch::equal(back, tensors[k]));
  }
}

TEST_F(Npy, HeaderIsPaddedToMultipleOf64) {
  for (const auto& t : {torch::zeros({3}), torch::zeros({1234, 64}), torch::zeros({1, 2, 3, 4, 5, 6, 7, 8, 9}),
                        torch::tensor(int64_t{5})}) {
    SCOPED_TRACE(t.sizes());
    matvae::write_npy(dir() / "h.npy", t);
    const auto b = read_bytes(dir() / "h.npy");
    ASSERT_GE(b.size(), 10u);
    EXPECT_EQ(std::string(b.begin(), b.begin() + 6), "\x93NUMPY");
    EXPECT_EQ(b[6], 1);
    EXPECT_EQ(b[7], 0);
    const size_t header_len = b[8] | (b[9] << 8);
    EXPECT_EQ((10 + header_len) % 64, 0u);
    ASSERT_LE(10 + header_len, b.size());
    EXPECT_EQ(b[10 + header_len - 1], '\n');
    EXPECT_EQ(b.size() - 10 - header_len, static_cast<size_t>(t.numel() * t.element_size()));
    const std::string header(b.begin() + 10, b.begin() + 10 + header_len);
    EXPECT_TRUE(contains(header, "'fortran_order': False"));
  }
}

TEST_F(Npy, UnsupportedDtypeIsRejectedOnWrite) {
  EXPECT_TRUE(contains(error_message<c10::Error>([&] { matvae::write_npy(dir() / "d.npy", torch::zeros({2}, torch::kFloat64)); }),
                       "Double"));
  EXPECT_FALSE(fs::exists(dir() / "d.npy"));
}

/// The bytes of a valid float32 [2, 3] file, for damaging.
std::vector<uint8_t> valid_npy(const fs::path& dir) {
  matvae::write_npy(dir / "good.npy", torch::arange(6, torch::kFloat32).reshape({2, 3}));
  return read_bytes(dir / "good.npy");
}

/// A version 1.0 file with the given header dict (padded to `align` bytes, as NumPy does) followed
/// by `data_bytes` zeros.
std::vector<uint8_t> npy_with_header(std::string dict, size_t data_bytes, size_t align = 64) {
  while ((10 + dict.size() + 1) % align) dict += ' ';
  dict += '\n';
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(dict.size() & 0xff),
                            static_cast<uint8_t>(dict.size() >> 8)};
  b.insert(b.end(), dict.begin(), dict.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}

/// Replaces `from` by `to` (same length) in the header of `bytes`.
std::vector<uint8_t> patch_header(std::vector<uint8_t> bytes, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  std::string s(bytes.begin(), bytes.end());
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) std::memcpy(bytes.data() + at, to.data(), to.size());
  return bytes;
}

TEST_F(Npy, DamagedFilesThrowErrorsNamingTheFile) {
  const auto good = valid_npy(dir());
  ASSERT_NO_THROW(matvae::read_npy(dir() / "good.npy"));
  auto truncated = good;
  truncated.resize(truncated.size() - 4);
  auto extra = good;
  extra.push_back(0);
  auto version = good;
  version[6] = 9;
  auto long_header = good;
  long_header[9] = 0x40;  // header length 0x40xx: past the end
  struct Case {
    std::string file, expect;
    std::vector<uint8_t> bytes;
  };
  const std::vector<Case> cases = {
      {"magic.npy", "magic", patch_header(good, "NUMPY", "NUMPZ")},
      {"short.npy", "not a .npy", {0x93, 'N', 'U'}},
      {"empty.npy", "not a .npy", {}},
      {"truncated.npy", "needs 24 data bytes, file has 20", truncated},
      {"extra.npy", "needs 24 data bytes, file has 25", extra},
      {"fortran.npy", "fortran_order True", patch_header(good, "False", "True ")},
      {"version.npy", "version 9.0", version},
      {"long.npy", "truncated", long_header},
      {"descr.npy", "unsupported dtype '<f8'", patch_header(good, "<f4", "<f8")},
      {"bigendian.npy", "unsupported dtype '>f4'", patch_header(good, "<f4", ">f4")},
      {"key.npy", "unexpected key 'shapf'", patch_header(good, "'shape'", "'shapf'")},
      {"shape.npy", "expected a non-negative integer", patch_header(good, "(2, 3)", "(2, x)")},
      {"brace.npy", "expected '}'", patch_header(good, "), }", ")) }")},
      {"bool.npy", "expected True or False", patch_header(good, "False", "Fals0")},
      {"huge.npy", "needs more than 2^64 data bytes",
       npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999999, 999999999999), }", 8)},
      {"nokey.npy", "no 'fortran_order' key", npy_with_header("{'descr': '<f4', 'shape': (2,), }", 8)},
      {"twice.npy", "'shape' appears twice",
       npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}", 8)},
      {"after.npy", "text after the closing brace",
       npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,)} x", 8)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    write_bytes(dir() / c.file, c.bytes);
    const std::string msg = error_message<matvae::Error>([&] { matvae::read_npy(dir() / c.file); });
    EXPECT_TRUE(contains(msg, (dir() / c.file).string()));
    EXPECT_TRUE(contains(msg, c.expect));
  }
  EXPECT_TRUE(contains(error_message<matvae::Error>([&] { matvae::read_npy(dir() / "missing.npy"); }), "missing.npy"));
}

TEST_F(Npy, ReadsOlderHeaderLayoutsAndEmptyArrays) {
  // Padded to 16 (older NumPy), double quotes, keys in another order, no trailing comma, Python 2's "L".
  const auto old = npy_with_header("{\"descr\": \"<i8\", \"shape\": (2L,), \"fortran_order\": False}", 16, 16);
  ASSERT_NE(old.size() % 64, 0u);
  write_bytes(dir() / "old.npy", old);
  const auto a = matvae::read_npy(dir() / "old.npy");
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(a.scalar_type(), torch::kInt64);
  // A zero dimension makes any other one valid with no data at all.
  write_bytes(dir() / "empty.npy",
              npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (999999999999999999, 0), }", 0));
  const auto e = matvae::read_npy(dir() / "empty.npy");
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{999999999999999999, 0}));
  EXPECT_EQ(e.scalar_type(), torch::kUInt8);
}

}  // namespace
