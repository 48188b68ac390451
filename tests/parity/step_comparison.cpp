#include "tests/parity/step_comparison.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "tests/parity/state_file.h"

namespace mriae::parity {

namespace {

Tensor host(const Tensor& t) { return t.device() == Device::CPU ? t : t.to(Device::CPU); }

// conv11 and bn10 are the only parameters with no ReLU between them and the loss.
bool kink_free(const std::string& n) {
  const std::string last_conv = "conv" + std::to_string(Autoencoder::kConvs) + ".";
  const std::string last_bn = "bn" + std::to_string(Autoencoder::kBatchNorms) + ".";
  return n.rfind(last_conv, 0) == 0 || n.rfind(last_bn, 0) == 0;
}

}  // namespace

Errors compare(const Tensor& ours_in, const Tensor& ref_in, const std::vector<bool>& keep) {
  const Tensor ours = host(ours_in), ref = host(ref_in);
  Errors e;
  if (ours.numel() != ref.numel()) {
    e.rel_l2 = e.max_abs = INFINITY;
    return e;
  }
  double d2 = 0, r2 = 0, ma = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    if (!keep.empty() && !keep[size_t(i)]) continue;
    const double r = ref.data()[i], d = double(ours.data()[i]) - r;
    d2 += d * d;
    r2 += r * r;
    ma = std::max(ma, std::fabs(d));
  }
  // A NaN anywhere must fail, not vanish in max().
  const double rel = r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
  return {std::isnan(d2) ? INFINITY : rel, std::isnan(d2) ? INFINITY : ma};
}

void Report::check(const std::string& cls, const std::string& name, const Errors& e, double limit,
                   const std::string& note) {
  const bool ok = e.rel_l2 <= limit;
  std::printf("  %-34s rel %.2e  max|d| %.2e  limit %.0e  headroom x%-8.3g %s%s\n", name.c_str(), e.rel_l2,
              e.max_abs, limit, e.rel_l2 > 0 ? limit / e.rel_l2 : INFINITY, note.c_str(), ok ? "" : "  FAILED");
  if (!ok) {
    std::ostringstream m;
    m << name << ": relative L2 " << e.rel_l2 << " exceeds " << limit << " (" << cls << ")";
    failures_.push_back(m.str());
    if (std::find(failed_classes_.begin(), failed_classes_.end(), cls) == failed_classes_.end())
      failed_classes_.push_back(cls);
  }
  for (auto& w : worst_)
    if (w.cls == cls) {
      if (e.rel_l2 > w.rel) w = {cls, name, e.rel_l2, limit};
      return;
    }
  worst_.push_back({cls, name, e.rel_l2, limit});
}

void Report::fail(const std::string& message) {
  std::printf("  FAILED: %s\n", message.c_str());
  failures_.push_back(message);
}

std::vector<std::string> Report::failed_classes() const { return failed_classes_; }

void Report::summary() const {
  std::printf("comparison summary (worst relative L2 per class):\n");
  for (auto& w : worst_)
    std::printf("  %-30s %.2e  limit %.0e  (%s)\n", w.cls.c_str(), w.rel, w.limit, w.name.c_str());
  std::printf("  %zu failed check(s)\n", failures_.size());
}

Backend::Backend(Device device, const BatchNormOptions& bn)
    : device_(device),
      model_([&] {
        AutoencoderConfig c;
        c.device = device;
        c.bn = bn;
        return c;
      }()),
      optimiser_(model_.parameters(), RMSpropOptions{kLr, kRho, kRmsEps}) {}

std::vector<Tensor> Backend::params() const {
  std::vector<Tensor> out;
  for (const auto& e : model_.parameters().entries()) out.push_back(e.var.value().to(Device::CPU));
  return out;
}

void Backend::set_params(const std::vector<Tensor>& params) {
  const auto& entries = model_.parameters().entries();
  if (params.size() != entries.size()) throw std::invalid_argument("set_params: wrong parameter count");
  for (size_t i = 0; i < entries.size(); ++i) {
    if (params[i].shape() != entries[i].var.shape())
      throw std::invalid_argument("set_params: " + entries[i].name + " has shape " + shape_str(params[i].shape()) +
                                  ", the model " + shape_str(entries[i].var.shape()));
    Tensor(entries[i].var.value()).copy_from(params[i]);
  }
}

void Backend::copy_state_from(const Backend& other) {
  optimiser_.accumulators().copy_from(other.optimiser_.accumulators());
  optimiser_.set_steps(other.optimiser_.steps());
  auto& ours = model_.bn_states();
  const auto& theirs = other.model_.bn_states();
  for (size_t i = 0; i < ours.size(); ++i) {
    ours[i].moving_mean.copy_from(theirs[i].moving_mean);
    ours[i].moving_var.copy_from(theirs[i].moving_var);
    ours[i].hidden_mean.copy_from(theirs[i].hidden_mean);
    ours[i].hidden_var.copy_from(theirs[i].hidden_var);
    ours[i].steps = theirs[i].steps;
  }
}

StepRecord Backend::step(const Tensor& input_any) {
  const Tensor input = input_any.device() == device_ ? input_any : input_any.to(device_);
  StepRecord r;
  r.params_before = params();
  ParameterSet& ps = model_.parameters();
  ps.zero_grad();
  Tape tape;
  Var y = model_.forward(&tape, Var(input), /*training=*/true);
  Var loss = mse_loss(&tape, y, input);
  tape.backward(loss);
  r.output = host(y.value());
  r.loss = host(loss.value());
  for (const auto& e : ps.entries()) r.grads.push_back(host(e.var.grad()));
  update_and_record(r);
  return r;
}

void Backend::update_and_record(StepRecord& r) {
  optimiser_.step();
  r.params_after = params();
  for (const auto& s : model_.bn_states()) {
    r.moving_mean.push_back(host(s.moving_mean));
    r.moving_var.push_back(host(s.moving_var));
  }
}

StepRecord Backend::step_shared(const Tensor& local_any, int64_t offset, int64_t global, Collectives& processes) {
  const Tensor input = local_any.device() == device_ ? local_any : local_any.to(device_);
  const int64_t local = input.dim(0);
  StepRecord r;
  r.params_before = params();
  ParameterSet& ps = model_.parameters();
  ps.zero_grad();
  Tape tape;
  Var y = model_.forward(&tape, Var(input), /*training=*/true);
  Var loss = mse_loss(&tape, y, input);
  tape.backward(loss, double(local) / double(global));  // as model/training_step.cpp
  // The whole batch's output: each process's rows in place, zeros elsewhere, summed over the processes.
  Shape whole = y.shape();
  whole[0] = global;
  const Tensor mine = host(y.value());
  const int64_t per = mine.numel() / local;
  std::vector<double> out(size_t(global * per), 0.0);
  for (int64_t i = 0; i < mine.numel(); ++i) out[size_t(offset * per + i)] = mine.data()[i];
  processes.sum(out.data(), int64_t(out.size()));
  r.output = Tensor::from_vector(whole, std::vector<float>(out.begin(), out.end()));
  double l = loss.value().item() * double(local);
  processes.sum(&l, 1);
  r.loss = Tensor::from_vector({1}, std::vector<float>{float(l / double(global))});
  Tensor grads = ps.flat_grads();
  processes.sum(grads);
  for (const auto& e : ps.entries()) r.grads.push_back(host(e.var.grad()));
  update_and_record(r);
  return r;
}

Tensor Backend::eval(const Tensor& input_any) {
  const Tensor input = input_any.device() == device_ ? input_any : input_any.to(device_);
  return host(model_.forward(nullptr, Var(input), /*training=*/false).value());
}

StepChecker::StepChecker(const ParameterSet& layout) {
  for (const auto& e : layout.entries()) {
    names_.push_back(e.name);
    certain_.emplace_back(size_t(e.var.value().numel()), true);
    total_ += e.var.value().numel();
  }
}

void StepChecker::check_step(int k, const StepRecord& ours, const StepRecord& ref, Report& report) {
  const std::string step = "step" + std::to_string(k) + "/";
  std::printf("step %d\n", k);
  report.check("training output", step + "output", compare(ours.output, ref.output), kForwardLimit);
  report.check("loss", step + "loss", compare(ours.loss, ref.loss), kLossLimit);

  const bool have_grads = !ref.grads.empty();
  if (have_grads) {
    int64_t n_uncertain = 0;
    for (size_t p = 0; p < names_.size(); ++p) {
      const Tensor& g_ref = ref.grads[p];
      const Tensor& g = ours.grads[p];
      const bool tight = kink_free(names_[p]);
      const Errors err = compare(g, g_ref);
      report.check(tight ? "grad, no ReLU on path" : "grad, behind a ReLU", step + "grad/" + names_[p], err,
                   tight ? kGradTightLimit : kGradKinkLimit);
      if (!tight) worst_behind_relu_ = std::max(worst_behind_relu_, err.rel_l2);
      for (int64_t i = 0; i < g.numel(); ++i) {
        const double gr = g_ref.data()[i], go = g.data()[i];
        certain_[p][size_t(i)] = std::fabs(go - gr) <= kUncertainRel * std::fabs(gr);
        n_uncertain += !certain_[p][size_t(i)];
      }
    }
    uncertain_.push_back({k, n_uncertain, 0});
  }

  // Largest difference two RMSprop steps can have: each moves at most lr*sqrt(1/(1-rho)), since the
  // accumulator holds at least (1-rho)*g^2; a little slack for float32.
  const double full_swing = 2.0 * kLr / std::sqrt(1.0 - kRho) * (1 + 1e-5);
  int64_t flipped = 0;
  for (size_t p = 0; p < names_.size(); ++p) {
    const std::string name = step + "param/" + names_[p];
    const Tensor& p_ref = ref.params_after[p];
    const Tensor& p0 = ref.params_before[p];
    const Tensor& mine = ours.params_after[p];
    int64_t n_uncertain = 0, n_flipped = 0;
    double uncertain_max = 0;
    for (int64_t i = 0; i < mine.numel(); ++i) {
      if (certain_[p][size_t(i)]) continue;
      ++n_uncertain;
      const double d_ref = double(p_ref.data()[i]) - p0.data()[i], d_ours = double(mine.data()[i]) - p0.data()[i];
      n_flipped += d_ref * d_ours < 0;
      uncertain_max = std::max(uncertain_max, std::fabs(d_ours - d_ref));
    }
    flipped += n_flipped;
    std::string note;
    if (n_uncertain)
      note = "(" + std::to_string(n_uncertain) + " uncertain excluded, " + std::to_string(n_flipped) +
             " moved the other way)";
    const bool tight = kink_free(names_[p]);
    report.check(tight ? "params, no ReLU on path" : "params, behind a ReLU", name, compare(mine, p_ref, certain_[p]),
                 tight ? kParamKinkFreeLimit : kParamLimit, note);
    if (!(uncertain_max <= full_swing)) {
      std::ostringstream m;
      m << name << ": an uncertain element moved " << uncertain_max << ", more than two full steps apart";
      report.fail(m.str());
    }
  }
  if (have_grads) uncertain_.back().flipped = flipped;

  for (size_t i = 0; i < ref.moving_mean.size(); ++i) {
    const std::string bn = step + "bn" + std::to_string(i + 1);
    report.check("BN moving statistics", bn + ".running_mean", compare(ours.moving_mean[i], ref.moving_mean[i]),
                 kMovingStatLimit);
    report.check("BN moving statistics", bn + ".running_var", compare(ours.moving_var[i], ref.moving_var[i]),
                 kMovingStatLimit);
  }
}

void StepChecker::check_eval(const Tensor& ours, const Tensor& ref, Report& report) {
  std::printf("eval\n");
  report.check("eval output", "eval/output", compare(ours, ref), kEvalLimit);
}

void StepChecker::finish(Report& report) {
  for (const Uncertain& u : uncertain_) {
    const double fraction = double(u.count) / double(total_);
    std::printf("step-%d gradients: %lld of %lld elements uncertain (%.3f%%), %lld of them moved the other way\n",
                u.step, (long long)u.count, (long long)total_, 100 * fraction, (long long)u.flipped);
    if (!(fraction <= kMaxUncertainFraction)) {
      std::ostringstream m;
      m << "step " << u.step << ": " << u.count << " uncertain gradient elements, more than "
        << kMaxUncertainFraction << " of all parameters";
      report.fail(m.str());
    }
  }
  if (worst_behind_relu_ > kKinkEvidence)
    std::printf(
        "gradients behind a ReLU are off by up to %.2e while conv11 and bn10 are at rounding level: "
        "the signature of a ReLU kink crossing (tests/parity/README.md)\n",
        worst_behind_relu_);
  report.summary();
}

Report run_state_file(const std::string& path, Device device) {
  const StateFile state = StateFile::load(path);
  std::set<std::string> compared;
  auto ref = [&](const std::string& name) -> const Tensor& {
    compared.insert(name);
    return state.at(name);
  };
  auto params_at = [&](const std::string& prefix, ParameterSet& ps) {
    std::vector<Tensor> out;
    for (const auto& e : ps.entries()) out.push_back(ref(prefix + e.name));
    return out;
  };

  Backend engine(device);
  ParameterSet& ps = engine.model().parameters();
  StepChecker checker(ps);
  Report report;
  const Tensor& input = ref("input");
  if (input.ndim() != 4) {
    report.fail(path + ": input is not 4-D");
    return report;
  }
  for (int k = 1; k <= kSteps; ++k) {
    const std::string step = "step" + std::to_string(k) + "/";
    const std::string before = k == 1 ? "init/" : "step" + std::to_string(k - 1) + "/param/";
    StepRecord want;
    want.params_before = params_at(before, ps);
    engine.set_params(want.params_before);
    const StepRecord got = engine.step(input);
    want.output = ref(step + "output");
    want.loss = ref(step + "loss");
    if (k == 1) want.grads = params_at("step1/grad/", ps);
    want.params_after = params_at(step + "param/", ps);
    for (int i = 1; i <= Autoencoder::kBatchNorms; ++i) {
      const std::string bn = step + "bn" + std::to_string(i);
      want.moving_mean.push_back(ref(bn + ".running_mean"));
      want.moving_var.push_back(ref(bn + ".running_var"));
    }
    checker.check_step(k, got, want, report);
  }
  engine.set_params(params_at("step" + std::to_string(kSteps) + "/param/", ps));
  checker.check_eval(engine.eval(input), ref("eval/output"), report);
  checker.finish(report);

  // Every tensor in the file was compared: a tensor the generator adds cannot go unchecked silently.
  for (const auto& n : state.names())
    if (compared.count(n) != 1) report.fail("state file tensor '" + n + "' was not compared");
  return report;
}

Report compare_backends(Backend& ref, const Tensor& ref_input, Backend& ours, const Tensor& our_input, int steps) {
  StepChecker checker(ref.model().parameters());
  Report report;
  for (int k = 1; k <= steps; ++k) {
    ours.set_params(ref.params());
    ours.copy_state_from(ref);
    const StepRecord want = ref.step(ref_input);
    const StepRecord got = ours.step(our_input);
    checker.check_step(k, got, want, report);
  }
  ours.set_params(ref.params());
  ours.copy_state_from(ref);
  checker.check_eval(ours.eval(our_input), ref.eval(ref_input), report);
  checker.finish(report);
  return report;
}

}  // namespace mriae::parity
