// The forms of the Matryoshka decoder: how much of it each prefix owns, as a typed choice. Free of
// LibTorch, so that the run settings (and their fuzzer) parse it with the model's own names.
#pragma once

#include <string>

namespace matvae {

enum class DecoderForm {
  kTied,         // MRL-E: one first layer; prefix m uses its first m input columns (= zeroing z[m:])
  kSeparate,     // MRL: each m has its own first layer; the rest of the decoder is shared
  kSeparateTwo,  // each m has its own first two layers; the rest is shared
  kIndependent,  // each m has a whole decoder of its own (K decoders, one shared encoder)
};

/// Decoder layers each prefix owns (0 for tied: its one first layer is shared, sliced by column),
/// of a decoder of `layers` layers.
int64_t private_layers(DecoderForm form, int64_t layers);

/// "tied", "separate", "separate-2" or "independent"; anything else throws UsageError naming the value.
DecoderForm parse_decoder_form(const std::string& name);
std::string to_string(DecoderForm form);

}  // namespace matvae
