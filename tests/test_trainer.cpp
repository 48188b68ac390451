// mriae train end to end on a tiny real subset: two 40x12x40 volumes cut from Colin27 (mricron-data's
// ch2.nii.gz, every second voxel in x and z), written as NIfTI by niftilib.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "apps/input_noise.h"
#include "apps/trainer.h"
#include "engine/random.h"
#include "io/batch_loader.h"
#include "io/slice_stack.h"
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

// `o` (in `out`) stopped after `steps` steps of its first epoch, as Ctrl-C stops a run, and set to resume
// from the checkpoint that wrote.
TrainOptions stopped_then_resumable(TrainOptions o, const std::string& out, int steps) {
  o.out_dir = out;
  int taken = 0;
  const TrainResult stopped = train(o, nullptr, [&] { return ++taken == steps; });
  REQUIRE(stopped.interrupted);
  CHECK(stopped.history.empty());
  o.resume = stopped.last_checkpoint;
  return o;
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
  const TrainOptions part = stopped_then_resumable(whole, dir.file("part"), 3);
  const TrainResult b = train(part, nullptr);
  REQUIRE(b.history.size() == 2);
  CHECK(same_tensors(a.last_checkpoint, b.last_checkpoint));
  for (size_t e = 0; e < 2; ++e) {
    CHECK(a.history[e].loss == b.history[e].loss);
    CHECK(a.history[e].val_loss == b.history[e].val_loss);
  }
}

TEST_CASE("--lr-schedule cosine: changes the updates, resumes on the same curve, refuses another curve") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  TrainOptions constant = tiny_run(paths, dir.file("constant"));
  constant.epochs = 2;
  const TrainResult c = train(constant, nullptr);

  // A floor of 1 is the constant lr written as a cosine: the same arithmetic, the same bits.
  TrainOptions flat = constant;
  flat.out_dir = dir.file("flat");
  flat.lr_schedule = "cosine";
  flat.lr_floor = 1;
  CHECK(same_tensors(c.last_checkpoint, train(flat, nullptr).last_checkpoint));

  // Decaying to 0, the first step is the constant run's and every later one is smaller.
  TrainOptions cosine = flat;
  cosine.out_dir = dir.file("cosine");
  cosine.lr_floor = 0;
  const TrainResult whole = train(cosine, nullptr);
  CHECK(whole.history.front().loss == doctest::Approx(c.history.front().loss).epsilon(0.2));
  CHECK_FALSE(same_tensors(c.last_checkpoint, whole.last_checkpoint));
  const auto config = nlohmann::json::parse(slurp(cosine.out_dir + "/config.json"));
  CHECK(config["optimizer"]["lr_schedule"]["kind"] == "cosine");

  // Interrupted after the third of five steps and resumed: the schedule is a function of the step's position.
  const TrainOptions part = stopped_then_resumable(cosine, dir.file("part"), 3);
  CHECK(same_tensors(whole.last_checkpoint, train(part, nullptr).last_checkpoint));

  // The curve is drawn over the planned epochs: a resume that would bend it is refused, naming the options.
  TrainOptions longer = part;
  longer.out_dir = dir.file("longer");
  longer.epochs = 3;
  CHECK_THROWS_WITH(train(longer, nullptr), doctest::Contains("--epochs 2"));
  TrainOptions other = part;
  other.out_dir = dir.file("other");
  other.lr_schedule = "constant";
  CHECK_THROWS_WITH(train(other, nullptr), doctest::Contains("--lr-schedule cosine"));
  // A constant lr may be changed on resume (a step decay by hand).
  TrainOptions lower = constant;
  lower.out_dir = dir.file("lower");
  lower.epochs = 3;
  lower.lr = 1e-4;
  lower.resume = c.last_checkpoint;
  CHECK(train(lower, nullptr).history.size() == 3);
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
  bad([](TrainOptions& b) { b.lr_schedule = "step"; }, "--lr-schedule");
  bad([](TrainOptions& b) { b.lr_floor = -1; }, "--lr-floor");
  bad([](TrainOptions& b) { b.data.val_fraction = 1.5; }, "--val-fraction");
  bad([](TrainOptions& b) { b.data.axis = 3; }, "--axis");
  bad([](TrainOptions& b) { b.data.split = "random"; }, "--split");
  bad([](TrainOptions& b) { b.device = "tpu"; }, "--device");
  bad([](TrainOptions& b) { b.data.slices = "9:3"; }, "9:3");
}

TEST_CASE("training noise: a pure function of (seed, epoch, batch), Gaussian of the given sigma") {
  std::vector<float> a(200000, 0.5f), b(a), c(a), d(a);
  add_gaussian_noise(a.data(), int64_t(a.size()), 0.1, batch_noise_seed(13, 2, 5));
  add_gaussian_noise(b.data(), int64_t(b.size()), 0.1, batch_noise_seed(13, 2, 5));
  add_gaussian_noise(c.data(), int64_t(c.size()), 0.1, batch_noise_seed(13, 2, 6));
  add_gaussian_noise(d.data(), int64_t(d.size()), 0.1, batch_noise_seed(13, 3, 5));
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != d);
  CHECK(batch_noise_seed(13, kValidationEpoch, 0) != batch_noise_seed(13, 0, 0));
  CHECK(batch_noise_seed(14, 2, 5) != batch_noise_seed(13, 2, 5));
  // Mean 0 and standard deviation sigma within sampling error (n = 2e5: se of the mean 2.2e-4, of the sd
  // 1.6e-4), and no correlation between neighbouring batches' streams.
  double sum = 0, sq = 0, cross = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i] - 0.5, y = c[i] - 0.5;
    sum += x, sq += x * x, cross += x * y;
  }
  const double n = double(a.size()), mean = sum / n;
  CHECK(std::abs(mean) < 1e-3);
  CHECK(std::sqrt(sq / n - mean * mean) == doctest::Approx(0.1).epsilon(0.005));
  CHECK(std::abs(cross / n) / 0.01 < 0.01);
}

TEST_CASE("training noise of a rank's part: the values one process draws for the same slices") {
  // Rng::skip(k) is k draws.
  Rng walked(99), jumped(99);
  for (int i = 0; i < 1001; ++i) walked.next_u64();
  jumped.skip(1001);
  CHECK(walked.next_u64() == jumped.next_u64());

  // An epoch of six 8x8 slices in batches of 4 (batches 0 and 1), drawn whole and in parts, as ranks draw
  // their parts of a batch or of the validation slices.
  io::SliceStack stack(6, 8, 8);
  for (int64_t n = 0; n < 6; ++n)
    for (int64_t p = 0; p < 64; ++p) stack.slice(n)[p] = float(n) * 0.1f + float(p) * 1e-3f;
  const std::vector<int64_t> all = {5, 0, 3, 1, 4, 2};
  auto noisy = [&](std::vector<int64_t> idx, int64_t first) {
    const Tensor t = noisy_batch(stack, idx, 0.05, NoisePlace{13, 2, 4, first}, Device::CPU);
    return std::vector<float>(t.data(), t.data() + t.numel());
  };
  const std::vector<float> whole = noisy(all, 0);
  // The first batch's slices drawn in one stream, as before parts existed.
  std::vector<float> first_batch(size_t(4 * 64));
  for (int i = 0; i < 4; ++i) stack.copy_slice(all[size_t(i)], first_batch.data() + i * 64);
  add_gaussian_noise(first_batch.data(), 4 * 64, 0.05, batch_noise_seed(13, 2, 0));
  CHECK(std::equal(first_batch.begin(), first_batch.end(), whole.begin()));
  // Parts [0, 3), [3, 5) and [5, 6): the second straddles batches 0 and 1.
  std::vector<float> parts = noisy({5, 0, 3}, 0), b = noisy({1, 4}, 3), c = noisy({2}, 5);
  parts.insert(parts.end(), b.begin(), b.end());
  parts.insert(parts.end(), c.begin(), c.end());
  CHECK(parts == whole);
  CHECK(noisy({1, 4}, 2) != b);  // the place matters
}

TEST_CASE("--train-noise trains on noisy inputs against the clean slices") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  // One batch of all 19 training slices, one epoch: the epoch's loss is that one step's loss.
  TrainOptions o = tiny_run(paths, dir.file("run"));
  o.epochs = 1;
  o.batch = 32;
  o.train_noise = 0.1;
  const TrainResult r = train(o, nullptr);
  REQUIRE(r.history.size() == 1);

  // The same step computed here: the initial weights, the epoch's batch, its noise, the loss against clean.
  const io::SliceDataset ds = io::build_slice_dataset(paths, o.data.dataset_options());
  io::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.seed = o.data.seed;
  const std::vector<int64_t> order = io::BatchLoader::epoch_order(ds.split.train, lo, 0);
  const int64_t b = int64_t(order.size()), H = ds.slices.height(), W = ds.slices.width();
  std::vector<float> clean(size_t(b * H * W));
  for (int64_t i = 0; i < b; ++i) ds.slices.copy_slice(order[size_t(i)], clean.data() + i * H * W);
  std::vector<float> noisy(clean);
  add_gaussian_noise(noisy.data(), int64_t(noisy.size()), 0.1, batch_noise_seed(o.data.seed, 0, 0));
  AutoencoderConfig mc;
  mc.seed = o.data.seed;
  auto loss_of = [&](const std::vector<float>& input, const std::vector<float>& target) {
    Autoencoder model(mc);
    const Tensor y = model.forward(nullptr, Var(Tensor::from_vector({b, 1, H, W}, input)), true).value();
    return double(mse_loss(nullptr, Var(y), Tensor::from_vector({b, 1, H, W}, target)).value().item());
  };
  const double denoising = loss_of(noisy, clean);
  CHECK(r.history[0].loss == doctest::Approx(denoising).epsilon(1e-6));
  // Neither the plain autoencoder's loss nor a loss against the noisy slices.
  CHECK(std::abs(loss_of(clean, clean) - denoising) > 1e-4 * denoising);
  CHECK(std::abs(loss_of(noisy, noisy) - denoising) > 1e-4 * denoising);

  o.train_noise = -0.1;
  CHECK_THROWS_WITH(train(o, nullptr), doctest::Contains("--train-noise"));
  o.train_noise = std::nan("");
  CHECK_THROWS_WITH(train(o, nullptr), doctest::Contains("--train-noise"));
}

TEST_CASE("--train-noise: a resumed run draws the same noise and ends with the same weights") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  TrainOptions whole = tiny_run(paths, dir.file("whole"));
  whole.epochs = 2;
  whole.train_noise = 0.05;
  const TrainResult a = train(whole, nullptr);

  const TrainOptions part = stopped_then_resumable(whole, dir.file("part"), 3);
  const TrainResult b = train(part, nullptr);
  REQUIRE(b.history.size() == 2);
  CHECK(same_tensors(a.last_checkpoint, b.last_checkpoint));
  for (size_t e = 0; e < 2; ++e) {
    CHECK(a.history[e].loss == b.history[e].loss);
    CHECK(a.history[e].val_loss == b.history[e].val_loss);
  }
  // The noise changes the run: not the plain autoencoder's weights.
  TrainOptions plain = whole;
  plain.out_dir = dir.file("plain");
  plain.train_noise = 0;
  CHECK_FALSE(same_tensors(a.last_checkpoint, train(plain, nullptr).last_checkpoint));

  TrainOptions other = part;
  other.out_dir = dir.file("other");
  other.train_noise = 0.1;
  CHECK_THROWS_WITH(train(other, nullptr), doctest::Contains("--train-noise 0.05;"));
}

TEST_CASE("--subjects: a subject-wise split holds out whole subjects, as the table groups the volumes") {
  io::testing::TempDir dir;
  testing::ColinCrop crop;
  crop.ny = 4;
  crop.y0s = {90, 100, 110, 120, 130};  // five volumes, 4 slices each
  std::vector<std::string> paths;
  if (!testing::write_colin_crops(dir, crop, &paths)) return;
  // subject0 and subject1 are one person; five volumes, four subjects: ceil(0.2 * 4) = 1 held out.
  std::ofstream(dir.file("subjects.tsv")) << "file\tsubject\nsubject0.nii\tA\nsubject1.nii\tA\nsubject2.nii\tB\n"
                                             "subject3.nii\tC\nsubject4.nii\tD\n";
  TrainOptions o = testing::tiny_run(paths, dir.file("run"), 4, 1);
  o.data.split = "subjects";
  o.data.subjects = dir.file("subjects.tsv");
  o.data.resolve_subjects();
  CHECK(o.data.subject_labels == std::vector<std::string>{"A", "A", "B", "C", "D"});
  int a_held_out = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    o.data.seed = seed;
    const io::SliceDataset ds = io::build_slice_dataset(paths, o.data.dataset_options());
    std::set<int32_t> held;
    for (int64_t n : ds.split.validation) held.insert(ds.refs[size_t(n)].subject);
    const bool a = held.count(0) || held.count(1);
    CHECK(held.size() == (a ? 2u : 1u));
    if (a) CHECK(held == std::set<int32_t>{0, 1});
    a_held_out += a;
  }
  CHECK(a_held_out > 0);
  CHECK(a_held_out < 12);

  // The run's config names the held-out subject and the grouping.
  TrainOptions run = testing::tiny_run(paths, dir.file("run"), 4, 1);
  run.data.split = "subjects";
  run.data.subjects = dir.file("subjects.tsv");
  train(run, nullptr);
  const auto config = nlohmann::json::parse(slurp(run.out_dir + "/config.json"))["data"];
  const auto held = config["val_subjects"].get<std::vector<std::string>>();
  REQUIRE(held.size() == 1);
  CHECK(config["val_slices"] == (held[0] == "A" ? 8 : 4));
  CHECK(config["subject_labels"] == nlohmann::json({"A", "A", "B", "C", "D"}));

  // The grouping is part of the run: a resumed run must use the same one.
  run.epochs = 2;
  run.resume = run.out_dir + "/last.safetensors";
  run.data.subjects.clear();
  CHECK_THROWS_WITH(train(run, nullptr), doctest::Contains("--subjects"));

  run.resume.clear();
  run.data.subjects = dir.file("subjects.tsv");
  std::ofstream(dir.file("subjects.tsv")) << "file\tsubject\nsubject0.nii\tA\n";
  CHECK_THROWS_WITH(train(run, nullptr), doctest::Contains("subject1.nii: not listed in the subject table"));
}

TEST_CASE("--crop trains on windows, resumes exactly, and refuses other crops") {
  io::testing::TempDir dir;
  std::vector<std::string> paths;
  if (!write_subset(dir, &paths)) return;
  TrainOptions whole = tiny_run(paths, dir.file("whole"));
  whole.epochs = 2;
  whole.train_noise = 0.05;
  whole.crop = 8;
  whole.crops_per_slice = 2;
  const TrainResult a = train(whole, nullptr);
  REQUIRE(a.history.size() == 2);
  const auto config = nlohmann::json::parse(slurp(whole.out_dir + "/config.json"));
  CHECK(config["data"]["crop"] == 8);

  const TrainOptions part = stopped_then_resumable(whole, dir.file("part"), 3);
  const TrainResult b = train(part, nullptr);
  CHECK(same_tensors(a.last_checkpoint, b.last_checkpoint));
  CHECK(a.history[1].val_loss == b.history[1].val_loss);

  TrainOptions uncropped = whole;
  uncropped.out_dir = dir.file("uncropped");
  uncropped.crop = 0;
  uncropped.crops_per_slice = 0;
  CHECK_FALSE(same_tensors(a.last_checkpoint, train(uncropped, nullptr).last_checkpoint));

  TrainOptions other = part;
  other.crops_per_slice = 3;
  CHECK_THROWS_WITH_AS(train(other, nullptr), doctest::Contains("--crop 8 --crops-per-slice 2"), std::invalid_argument);
  TrainOptions odd = whole;
  odd.crop = 6;
  CHECK_THROWS_WITH_AS(train(odd, nullptr), doctest::Contains("--crop must be a multiple of 4"), std::invalid_argument);
  TrainOptions huge = whole;
  huge.out_dir = dir.file("huge");
  huge.crop = 4096;
  CHECK_THROWS_WITH_AS(train(huge, nullptr), doctest::Contains("--crop 4096 does not fit"), std::invalid_argument);
}
