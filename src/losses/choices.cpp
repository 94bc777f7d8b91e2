// The losses' choice names; see choices.h.
#include "matvae/losses/choices.h"

#include "matvae/util/choice.h"

namespace matvae {
namespace {
const ChoiceTable<Likelihood> kLikelihoods = {
    {{"bernoulli", Likelihood::kBernoulli}, {"gaussian", Likelihood::kGaussian}, {"normal", Likelihood::kNormal}},
    [](const std::string& s) {
      return "unknown likelihood '" + s + "': expected 'bernoulli', 'gaussian' or 'normal'";
    }};
const ChoiceTable<MmdKernel> kKernels = {
    {{"gaussian", MmdKernel::kGaussian}, {"imq", MmdKernel::kImq}},
    [](const std::string& s) { return "unknown MMD kernel '" + s + "': expected 'gaussian' or 'imq'"; }};
const ChoiceTable<MmdEstimator> kEstimators = {
    {{"biased", MmdEstimator::kBiased}, {"unbiased", MmdEstimator::kUnbiased}},
    [](const std::string& s) { return "estimator = " + s + ": expected biased or unbiased"; }};
}  // namespace

Likelihood parse_likelihood(const std::string& name) { return kLikelihoods.parse(name); }
std::string to_string(Likelihood likelihood) { return kLikelihoods.name(likelihood); }
MmdKernel parse_mmd_kernel(const std::string& name) { return kKernels.parse(name); }
std::string to_string(MmdKernel kernel) { return kKernels.name(kernel); }
MmdEstimator parse_mmd_estimator(const std::string& name) { return kEstimators.parse(name); }
std::string to_string(MmdEstimator estimator) { return kEstimators.name(estimator); }

}  // namespace matvae
