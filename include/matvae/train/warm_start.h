// Warm start: a new run begins from the weights of a finished one (init_from), as Matryoshka-Adaptor
// and SMEC turn a trained full-size model into a Matryoshka one after the fact.
#pragma once

#include <string>
#include <vector>

#include "matvae/models/vae.h"

namespace matvae {

/// Copies `source`'s weights into `target` wherever a parameter of the same name has the same
/// shape: the encoder and heads always, the decoder's layers where the forms agree. A source with
/// one (tied) first decoder layer also fills each separate first layer of the target with its first
/// m columns, which decodes z[:m] exactly as the source decodes the zero-padded code. Throws Error
/// naming the parameter if the encoders differ. Returns the names of the target's parameters filled.
std::vector<std::string> warm_start(Vae& target, const Vae& source);

}  // namespace matvae
