// Copying a finished run's weights into a new model; see warm_start.h.
#include "matvae/train/warm_start.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "matvae/util/error.h"

namespace matvae {

std::vector<std::string> warm_start(Vae& target, const Vae& source) {
  torch::NoGradGuard no_grad;
  const auto from = source->named_parameters();
  std::vector<std::string> filled;
  for (auto& p : target->named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor& to = p.value();
    const auto* same = from.find(name);
    if (same && same->sizes() == to.sizes()) {
      to.copy_(*same);
      filled.push_back(name);
      continue;
    }
    const bool encoder = name.rfind("encoder.", 0) == 0 || name.rfind("mu.", 0) == 0 || name.rfind("logvar.", 0) == 0;
    if (encoder)
      throw Error(fmt::format("warm start: the source model's {} is {}, this model's [{}]: the encoders differ", name,
                              same ? fmt::format("[{}]", fmt::join(same->sizes(), ", ")) : std::string("missing"),
                              fmt::join(to.sizes(), ", ")));
    // decoder_first_<m>.{weight,bias} from a tied decoder_first: its first m columns, and its bias.
    const std::string prefix = "decoder_first_";
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string field = name.substr(name.find('.') + 1);
    const auto* tied = from.find("decoder_first." + field);
    if (!tied) continue;
    if (field == "weight" && tied->size(0) == to.size(0) && tied->size(1) >= to.size(1)) {
      to.copy_(tied->narrow(1, 0, to.size(1)));
      filled.push_back(name);
    } else if (field == "bias" && tied->sizes() == to.sizes()) {
      to.copy_(*tied);
      filled.push_back(name);
    }
  }
  return filled;
}

}  // namespace matvae
