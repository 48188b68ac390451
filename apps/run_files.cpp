#include "apps/run_files.h"


#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "apps/gnuplot.h"
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
  const std::string data = png_path + ".dat.tmp", tmp_png = png_path + ".tmp";
  {
    std::ofstream d(data);
    for (auto& r : history) d << r.epoch << ' ' << exact(r.loss) << ' ' << exact(r.val_loss) << '\n';
  }
  // The tutorial's figure: training loss as blue dots, validation loss as a blue line. A log scale, since over
  // 300 epochs the loss falls by three orders of magnitude.
  std::ostringstream g;
  g << "set terminal pngcairo size 800,560 font 'sans,11'\n"
    << "set output " << gnuplot_quote(tmp_png) << "\n"
    << "set title 'Training and validation loss'\n"
    << "set xlabel 'epoch'\nset ylabel 'mean squared error'\nset logscale y\nset grid\nset key top right\n"
    << "plot " << gnuplot_quote(data) << " using 1:2 with points pt 7 ps 0.6 lc rgb '#1f3fbf' title 'Training loss', \\\n"
    << "     '' using 1:3 with lines lw 2 lc rgb '#1f3fbf' title 'Validation loss'\n";
  const bool ok = run_gnuplot(g.str(), png_path + ".gp.tmp", why);
  std::remove(data.c_str());
  if (!ok) {
    std::remove(tmp_png.c_str());
    return false;
  }
  if (std::rename(tmp_png.c_str(), png_path.c_str()) != 0) {
    if (why) *why = "cannot write " + png_path;
    return false;
  }
  return true;
}

}  // namespace mriae
