// Exporting a trained model for use outside matvae: a TorchScript module that Python
// (torch.jit.load) and C++ (torch::jit::load) both run at any prefix, with no matvae code, and the
// plain weights for people who rebuild the model themselves.
//   model.pt          TorchScript: encode(x, m) -> [N, m] (the posterior mean's prefix),
//                     decode(z) -> [N, P] decoded means for z of a nesting size, decode_logits(z),
//                     attributes nesting, latent, input, height, width, model, decoder, likelihood, commit
//   model.weights.pt  a dict name -> tensor that torch.load reads (the names of matvae's modules)
//   model.json        the architecture and settings those names belong to
#pragma once

#include <filesystem>
#include <string>

namespace matvae {

struct ExportResult {
  std::filesystem::path module, weights, metadata;
};

/// Exports the finished run in `run_dir` to `out` (and out's stem + ".weights.pt" and ".json"
/// beside it), each written atomically. Throws Error naming the run or file.
ExportResult export_run(const std::filesystem::path& run_dir, const std::filesystem::path& out);

}  // namespace matvae
