#include "apps/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

namespace mriae {

namespace {

sigset_t watched() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGUSR2);  // the destructor's wake-up call
  return s;
}

}  // namespace

InterruptWatcher::InterruptWatcher() {
  const sigset_t s = watched();
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  thread_ = std::thread([this] { run(); });
}

InterruptWatcher::~InterruptWatcher() {
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

void InterruptWatcher::run() {
  const sigset_t s = watched();
  for (;;) {
    int sig = 0;
    if (sigwait(&s, &sig) != 0) continue;
    if (sig == SIGUSR2) return;
    if (graceful_ && !requested_) {
      requested_ = true;
      const char msg[] = "\nmriae: interrupted: finishing the current step and writing a checkpoint "
                         "(interrupt again to stop at once)\n";
      if (::write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
      }
      continue;
    }
    std::fflush(stdout);
    _exit(128 + sig);
  }
}

}  // namespace mriae
