// A one-line terminal progress bar for training (epoch, loss, images/s, ETA) on stderr.
// Disabled when stderr is not a terminal, so logs and CI output stay clean.
#pragma once

#include "matvae/train/trainer.h"

namespace matvae {

class ProgressBar {
 public:
  /// Draws only if `enabled` and stderr is a terminal.
  explicit ProgressBar(bool enabled);
  ~ProgressBar();
  void update(const StepProgress& p);
  /// Ends the current line so that other output starts on a fresh one.
  void finish();
  bool active() const { return active_; }

 private:
  bool active_;
  bool drawn_ = false;
  double last_draw_ = -1;
};

}  // namespace matvae
