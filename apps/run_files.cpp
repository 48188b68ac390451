#include "apps/run_files.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "apps/run_config.h"

namespace mriae {

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(tmp + ": cannot create");
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot replace");
  }
}

std::string history_csv(const std::vector<EpochRecord>& history) {
  std::string s = "epoch,loss,val_loss,seconds\n";
  for (auto& r : history)
    s += std::to_string(r.epoch) + "," + exact(r.loss) + "," + exact(r.val_loss) + "," + exact(r.seconds) + "\n";
  return s;
}

std::vector<EpochRecord> parse_history_csv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  if (line != "epoch,loss,val_loss,seconds") throw std::runtime_error("history: unexpected header '" + line + "'");
  std::vector<EpochRecord> h;
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    EpochRecord r;
    char c1, c2, c3;
    std::istringstream ls(line);
    if (!(ls >> r.epoch >> c1 >> r.loss >> c2 >> r.val_loss >> c3 >> r.seconds) || c1 != ',' || c2 != ',' || c3 != ',')
      throw std::runtime_error("history: malformed line " + std::to_string(n) + ": '" + line + "'");
    h.push_back(r);
  }
  return h;
}

bool plot_history(const std::vector<EpochRecord>& history, const std::string& png_path, std::string* why) {
  const std::string data = png_path + ".dat.tmp", script = png_path + ".gp.tmp", tmp_png = png_path + ".tmp";
  {
    std::ofstream d(data);
    for (auto& r : history) d << r.epoch << ' ' << exact(r.loss) << ' ' << exact(r.val_loss) << '\n';
    std::ofstream g(script);
    // The tutorial's figure: training loss as blue dots, validation loss as a blue line. A log scale, since
    // over 300 epochs the loss falls by three orders of magnitude.
    g << "set terminal pngcairo size 800,560 font 'sans,11'\n"
      << "set output '" << tmp_png << "'\n"
      << "set title 'Training and validation loss'\n"
      << "set xlabel 'epoch'\nset ylabel 'mean squared error'\nset logscale y\nset grid\nset key top right\n"
      << "plot '" << data << "' using 1:2 with points pt 7 ps 0.6 lc rgb '#1f3fbf' title 'Training loss', \\\n"
      << "     '' using 1:3 with lines lw 2 lc rgb '#1f3fbf' title 'Validation loss'\n";
  }
  // posix_spawn rather than fork: this process has OpenMP and loader threads.
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::string arg0 = "gnuplot", arg1 = script;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = -1;
  int status = -1;
  const int spawned = posix_spawnp(&pid, "gnuplot", &quiet, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (spawned == 0) ::waitpid(pid, &status, 0);
  std::remove(data.c_str());
  std::remove(script.c_str());
  if (spawned != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::remove(tmp_png.c_str());
    if (why)
      *why = spawned == ENOENT ? "gnuplot is not installed (Debian: apt-get install gnuplot-nox)" : "gnuplot failed";
    return false;
  }
  if (std::rename(tmp_png.c_str(), png_path.c_str()) != 0) {
    if (why) *why = "cannot write " + png_path;
    return false;
  }
  return true;
}

}  // namespace mriae
