// Progress bar rendering; redraws at most 10 times a second.
#include "progress_bar.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "matvae/util/machine.h"

namespace matvae {
namespace {
std::string clock_time(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}
}  // namespace

ProgressBar::ProgressBar(bool enabled) : active_(enabled && ::isatty(STDERR_FILENO)) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(const StepProgress& p) {
  if (!active_) return;
  const double t = steady_seconds();
  if (p.step != p.steps && t - last_draw_ < 0.1) return;
  last_draw_ = t;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * p.step / std::max<int64_t>(p.steps, 1));
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  std::fprintf(stderr, "\repoch %lld/%lld [%s] loss %.3f  %.0f img/s  ETA %s  ", static_cast<long long>(p.epoch),
               static_cast<long long>(p.epochs), bar.c_str(), p.loss, p.images_per_s, clock_time(p.eta_s).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (active_ && drawn_) {
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

}  // namespace matvae
