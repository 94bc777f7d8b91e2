// The Matryoshka model's figures; see figures.h.
#include "matvae/experiment/figures.h"

#include <fmt/format.h>

#include "matvae/eval/code_metrics.h"
#include "matvae/io/svg_plot.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/file_io.h"

namespace matvae {

void write_mrl_figures(const std::filesystem::path& run_dir, const TrainTest& data, const std::filesystem::path& out,
                       const std::string& dataset) {
  const RunFolder folder(run_dir);
  LoadedRun run = folder.load();
  for (const auto& [name, png] : {std::pair{"recon", folder.recon_png()}, std::pair{"samples", folder.samples_png()}}) {
    if (data.test.features) break;  // feature rows draw no pictures
    const auto bytes = read_file(png);
    write_file_atomic(out / fmt::format("{}_{}.png", name, dataset), bytes.data(), bytes.size());
  }
  const auto codes = encode_mu(run.model, data.test.images).narrow(1, 0, 2).to(torch::kFloat64).contiguous();
  const auto labels = data.test.labels.contiguous();
  ScatterPlot plot;
  plot.title = fmt::format("{}: MRL-MMD-VAE test codes, prefix m = 2", dataset);
  const double* c = codes.data_ptr<double>();
  for (int64_t i = 0; i < codes.size(0); ++i) {
    plot.x.push_back(c[2 * i]);
    plot.y.push_back(c[2 * i + 1]);
    plot.cls.push_back(labels[i].item<int64_t>());
  }
  for (int64_t k = 0; k < data.train.num_classes; ++k) plot.class_names.push_back(std::to_string(k));
  write_scatter_svg(out / fmt::format("scatter_m2_{}.svg", dataset), plot);
}

}  // namespace matvae
