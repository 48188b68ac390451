// mriae train end to end on a tiny real subset: two 40x12x40 volumes cut from Colin27 (mricron-data's
// ch2.nii.gz, every second voxel in x and z), written as NIfTI by niftilib.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "apps/trainer.h"
#include "model/safetensors.h"
#include "tests/colin_subset.h"

using namespace mriae;
namespace fs = std::filesystem;

namespace {

// Two 40x12x40 volumes (slices padded 40x40), 24 slices in all.
bool write_subset(const io::testing::TempDir& dir, std::vector<std::string>* paths) {
  testing::ColinCrop crop;
  crop.y0s = {90, 110};
  return testing::write_colin_crops(dir, crop, paths);
}

TrainOptions tiny_run(const std::vector<std::string>& paths, const std::string& out) {
  return testing::tiny_run(paths, out, 12, 3);
}

std::map<std::string, SafeTensor> tensors_of(const std::string& path) { return SafetensorsFile::read(path).tensors; }

bool same_tensors(const std::string& a, const std::string& b) {
  const auto ta = tensors_of(a), tb = tensors_of(b);
  if (ta.size() != tb.size()) return false;
  for (auto& [name, t] : ta) {
    auto it = tb.find(name);
    if (it == tb.end() || it->second.bytes != t.bytes || it->second.shape != t.shape) return false;
  }
  return true;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("train writes its run files and the loss falls") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  const std::string out = dir.file("run");
  const TrainResult r = train(tiny_run(paths, out), nullptr);
  REQUIRE(r.history.size() == 3);
  CHECK(r.history.back().loss < r.history.front().loss);
  CHECK(r.history.back().val_loss < r.history.front().val_loss);
  for (const char* f : {"config.json", "history.csv", "last.safetensors", "best.safetensors"})
    CHECK(fs::exists(fs::path(out) / f));
  const auto history = parse_history_csv(slurp(out + "/history.csv"));
  REQUIRE(history.size() == 3);
  CHECK(history[2].loss == r.history[2].loss);
  if (fs::exists(fs::path(out) / "loss.png")) {
    const std::string png = slurp(out + "/loss.png");
    CHECK(png.substr(1, 3) == "PNG");
  } else {
    MESSAGE("loss.png not drawn (gnuplot missing?)");
  }
  CHECK(slurp(out + "/config.json").find("\"val_slices\": 5") != std::string::npos);  // ceil(0.2 * 24)
}

TEST_CASE("resuming after an interruption gives the same weights as an uninterrupted run") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  TrainOptions whole = tiny_run(paths, dir.file("whole"));
  whole.epochs = 2;
  const TrainResult a = train(whole, nullptr);

  // Stop in the middle of the first epoch (after its third of five steps), as Ctrl-C does, then resume.
  TrainOptions part = whole;
  part.out_dir = dir.file("part");
  int steps = 0;
  const TrainResult stopped = train(part, nullptr, [&] { return ++steps == 3; });
  CHECK(stopped.interrupted);
  CHECK(stopped.history.empty());
  part.resume = stopped.last_checkpoint;
  const TrainResult b = train(part, nullptr);
  REQUIRE(b.history.size() == 2);
  CHECK(same_tensors(a.last_checkpoint, b.last_checkpoint));
  for (size_t e = 0; e < 2; ++e) {
    CHECK(a.history[e].loss == b.history[e].loss);
    CHECK(a.history[e].val_loss == b.history[e].val_loss);
  }
}

TEST_CASE("a diverging run stops with a clear error and leaves the last checkpoint intact") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  TrainOptions o = tiny_run(paths, dir.file("run"));
  o.epochs = 1;
  const TrainResult good = train(o, nullptr);
  const std::string keep = dir.file("keep.safetensors");
  fs::copy_file(good.last_checkpoint, keep);

  o.epochs = 3;
  o.resume = good.last_checkpoint;
  o.lr = 1e30f;  // the weights blow up within a step or two
  CHECK_THROWS_AS(train(o, nullptr), TrainingDiverged);
  CHECK(slurp(good.last_checkpoint) == slurp(keep));
}

TEST_CASE("impossible options and inputs are refused with the reason") {
  io::testing::TempDir dir;
  TrainOptions o;
  o.data.paths = {dir.file("absent.nii.gz")};
  o.out_dir = dir.file("run");
  o.device = "cpu";
  CHECK_THROWS_WITH(train(o, nullptr), doctest::Contains("absent.nii.gz"));
  auto bad = [&](auto change, const char* says) {
    TrainOptions b = o;
    change(b);
    CHECK_THROWS_WITH(train(b, nullptr), doctest::Contains(says));
  };
  bad([](TrainOptions& b) { b.epochs = 0; }, "--epochs");
  bad([](TrainOptions& b) { b.batch = -2; }, "--batch");
  bad([](TrainOptions& b) { b.lr = std::nanf(""); }, "--lr");
  bad([](TrainOptions& b) { b.data.val_fraction = 1.5; }, "--val-fraction");
  bad([](TrainOptions& b) { b.data.axis = 3; }, "--axis");
  bad([](TrainOptions& b) { b.data.split = "random"; }, "--split");
  bad([](TrainOptions& b) { b.device = "tpu"; }, "--device");
  bad([](TrainOptions& b) { b.data.slices = "9:3"; }, "9:3");
}
