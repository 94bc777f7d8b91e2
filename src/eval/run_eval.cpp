// One run folder's evaluation and codes; see run_eval.h.
#include "matvae/eval/run_eval.h"

#include <fmt/format.h>

#include "matvae/eval/code_metrics.h"
#include "matvae/io/npy.h"
#include "matvae/models/nesting.h"
#include "matvae/train/run_folder.h"
#include "matvae/util/error.h"
#include "matvae/util/file_io.h"

namespace matvae {
namespace {

/// Both splits of `data_dir`, else of the run's own data folder; their images must fit the model.
TrainTest run_data(const LoadedRun& run, const std::filesystem::path& data_dir) {
  TrainTest data = load_dataset(data_dir.empty() ? std::filesystem::path(run.config.data) : data_dir,
                                run.config.classes);
  if (data.train.pixels() != run.model->options().input())
    throw Error(fmt::format("{}: images have {} pixels but the model expects {}", data.train.source,
                            data.train.pixels(), run.model->options().input()));
  return data;
}

}  // namespace

nlohmann::ordered_json evaluate_run(const std::filesystem::path& run_dir, std::vector<int64_t> dims, uint64_t seed,
                                    const std::filesystem::path& data_dir) {
  const RunFolder folder(run_dir);
  LoadedRun run = folder.load(data_dir);
  const bool mrl = run.config.is_mrl();
  if (dims.empty()) dims = run.config.nesting;
  for (int64_t m : dims) {
    if (m < 1 || m > run.config.latent)
      throw UsageError(fmt::format("--dims: {} is outside 1..{} (the run's latent size)", m, run.config.latent));
    if (mrl && std::find(run.config.nesting.begin(), run.config.nesting.end(), m) == run.config.nesting.end())
      throw UsageError(fmt::format("--dims: {} is not in the run's nesting list", m));
  }
  const TrainTest data = run_data(run, data_dir);
  const bool truncate = !mrl && !(dims.size() == 1 && dims[0] == run.config.latent);
  nlohmann::ordered_json j;
  j["run"] = run_dir.string();
  j["config_hash"] = config_hash(run.config);
  j["truncated"] = truncate;
  j["metrics"] = evaluate_prefixes(run.model, run.config, data, dims, truncate, seed);
  write_file_atomic(folder.eval_file(), j.dump(1) + "\n");
  return j;
}

nlohmann::ordered_json retrieve_run(const std::filesystem::path& run_dir, const std::filesystem::path& data_dir,
                                    uint64_t seed) {
  const RunFolder folder(run_dir);
  LoadedRun run = folder.load(data_dir);
  TrainConfig config = run.config;
  if (!config.is_mrl()) config.nesting = default_nesting(config.latent);  // its code truncated
  const TrainTest data = run_data(run, data_dir);
  nlohmann::ordered_json j;
  j["run"] = run_dir.string();
  j["config_hash"] = config_hash(run.config);
  j["nesting"] = config.nesting;
  j.update(evaluate_adaptive(run.model, config, data, seed));
  write_file_atomic(folder.adaptive_file(), j.dump(1) + "\n");
  return j;
}

std::filesystem::path write_codes_npy(const std::filesystem::path& run_dir, const std::filesystem::path& data_dir,
                                      Split split, int64_t m, const std::filesystem::path& out) {
  LoadedRun run = RunFolder(run_dir).load(data_dir);
  if (m < 1 || m > run.config.latent)
    throw UsageError(fmt::format("--dim: {} is outside 1..{} (the run's latent size)", m, run.config.latent));
  const Dataset data = load_split(data_dir, split, run.config.classes);
  if (data.pixels() != run.model->options().input())
    throw Error(fmt::format("{}: images have {} pixels but the model expects {}", data_dir.string(), data.pixels(),
                            run.model->options().input()));
  const auto codes = encode_mu(run.model, data.images).narrow(1, 0, m).contiguous();
  std::filesystem::path labels = out;
  labels.replace_extension(".labels.npy");
  write_npy(out, codes);
  write_npy(labels, data.labels);
  return labels;
}

}  // namespace matvae
