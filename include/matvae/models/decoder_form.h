// The two forms of the Matryoshka decoder's first layer, as a typed choice. Free of LibTorch, so
// that the run settings (and their fuzzer) parse it with the model's own names and message.
#pragma once

#include <string>

namespace matvae {

enum class DecoderForm {
  kTied,      // MRL-E: one first layer; prefix m uses its first m input columns (= zeroing z[m:])
  kSeparate,  // MRL: each m has its own first layer; the rest of the decoder is shared
};

/// "tied" or "separate"; anything else throws UsageError naming the value.
DecoderForm parse_decoder_form(const std::string& name);
std::string to_string(DecoderForm form);

}  // namespace matvae
