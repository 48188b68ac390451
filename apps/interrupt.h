#pragma once
// Ctrl-C and SIGTERM, turned into a flag the training loop polls between steps, without a global: the
// signals are blocked for the whole process and a thread of this object waits for them with sigwait.
// Construct it first thing in main, before any other thread exists, so every thread inherits the mask.
#include <atomic>
#include <thread>

namespace mriae {

class InterruptWatcher {
 public:
  InterruptWatcher();
  ~InterruptWatcher();
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  // While graceful, the first signal only raises the flag; otherwise (and on a second signal) the
  // process exits at once with 128 + the signal number, as a shell expects.
  void set_graceful(bool on) { graceful_ = on; }
  bool requested() const { return requested_; }

 private:
  void run();
  std::atomic<bool> graceful_{false}, requested_{false};
  std::thread thread_;
};

}  // namespace mriae
