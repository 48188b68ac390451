#include "apps/gnuplot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

extern char** environ;

namespace mriae {

std::string gnuplot_quote(const std::string& path) {
  std::string q = "'";
  for (char c : path) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

std::string gnuplot_text(const std::string& text) {
  // Single-quoted pieces (gnuplot expands backquotes inside double quotes, never inside single ones), one per
  // line, joined by a double-quoted newline.
  std::string out, line;
  for (char c : text) {
    if (c != '\n') {
      line += c;
      continue;
    }
    out += gnuplot_quote(line) + ".\"\\n\".";
    line.clear();
  }
  return out + gnuplot_quote(line);
}

bool run_gnuplot(const std::string& script_text, const std::string& script_path, std::string* why) {
  {
    std::ofstream g(script_path);
    g << script_text;
    if (!g) {
      if (why) *why = "cannot write " + script_path;
      return false;
    }
  }
  // posix_spawn rather than fork: this process has OpenMP and loader threads.
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::string arg0 = "gnuplot", arg1 = script_path;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = -1;
  int status = -1;
  const int spawned = posix_spawnp(&pid, "gnuplot", &quiet, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (spawned == 0) ::waitpid(pid, &status, 0);
  std::remove(script_path.c_str());
  if (spawned != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (why)
      *why = spawned == ENOENT ? "gnuplot is not installed (Debian: apt-get install gnuplot-nox)" : "gnuplot failed";
    return false;
  }
  return true;
}

}  // namespace mriae
