// The decoder forms' names; see decoder_form.h.
#include "matvae/models/decoder_form.h"

#include "matvae/util/choice.h"

namespace matvae {

static const ChoiceTable<DecoderForm> kForms = {
    {{"tied", DecoderForm::kTied}, {"separate", DecoderForm::kSeparate}},
    [](const std::string& s) { return "unknown decoder '" + s + "' (expected tied or separate)"; }};

DecoderForm parse_decoder_form(const std::string& name) { return kForms.parse(name); }
std::string to_string(DecoderForm form) { return kForms.name(form); }

}  // namespace matvae
