// The decoder forms' names; see decoder_form.h.
#include "matvae/models/decoder_form.h"

#include "matvae/util/choice.h"

namespace matvae {

static const ChoiceTable<DecoderForm> kForms = {
    {{"tied", DecoderForm::kTied},
     {"separate", DecoderForm::kSeparate},
     {"separate-2", DecoderForm::kSeparateTwo},
     {"independent", DecoderForm::kIndependent}},
    [](const std::string& s) {
      return "unknown decoder '" + s + "' (expected tied, separate, separate-2 or independent)";
    }};

DecoderForm parse_decoder_form(const std::string& name) { return kForms.parse(name); }
std::string to_string(DecoderForm form) { return kForms.name(form); }

int64_t private_layers(DecoderForm form, int64_t layers) {
  switch (form) {
    case DecoderForm::kTied:
      return 0;
    case DecoderForm::kSeparate:
      return 1;
    case DecoderForm::kSeparateTwo:
      return layers < 2 ? layers : 2;
    case DecoderForm::kIndependent:
      return layers;
  }
  return 0;
}

}  // namespace matvae
