// Means over seeds and paired intervals; see stats.h.
#include "matvae/report/stats.h"

#include <vector>

namespace matvae {

Stat stat_of(const nlohmann::ordered_json& per_seed, const std::string& metric) {
  Stat s;
  std::vector<double> v;
  for (const auto& [seed, metrics] : per_seed.items())
    if (metrics.contains(metric) && metrics[metric].is_number()) v.push_back(metrics[metric].get<double>());
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

double t_quantile_975(int df) {
  static const double kTable[] = {12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
                                  2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
                                  2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
  if (df < 1) return NAN;
  if (df <= 30) return kTable[df - 1];
  return 1.96 + 2.4 / df;  // within 0.002 of the exact quantile beyond 30
}

PairedDifference paired_difference(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                                   const std::string& metric) {
  std::vector<double> d;
  for (const auto& [seed, ma] : a.items()) {
    if (!b.contains(seed)) continue;
    const auto& mb = b[seed];
    if (ma.contains(metric) && mb.contains(metric) && ma[metric].is_number() && mb[metric].is_number())
      d.push_back(ma[metric].get<double>() - mb[metric].get<double>());
  }
  PairedDifference p;
  p.n = static_cast<int>(d.size());
  if (d.empty()) return p;
  double sum = 0;
  for (double x : d) sum += x;
  p.mean = sum / p.n;
  if (p.n < 2) return p;
  double ss = 0;
  for (double x : d) ss += (x - p.mean) * (x - p.mean);
  p.half_width = t_quantile_975(p.n - 1) * std::sqrt(ss / (p.n - 1)) / std::sqrt(static_cast<double>(p.n));
  return p;
}

Verdict verdict_of(const PairedDifference& d, bool higher_is_better) {
  if (d.n < 2 || !std::isfinite(d.half_width)) return Verdict::kUndecided;
  const double lo = higher_is_better ? d.lower() : -d.upper();
  const double hi = higher_is_better ? d.upper() : -d.lower();
  if (lo > 0) return Verdict::kWin;
  if (hi < 0) return Verdict::kLoss;
  return Verdict::kTie;
}

std::string to_string(Verdict v) {
  switch (v) {
    case Verdict::kWin: return "win";
    case Verdict::kTie: return "tie";
    case Verdict::kLoss: return "loss";
    case Verdict::kUndecided: return "one seed";
  }
  return "?";
}

}  // namespace matvae
