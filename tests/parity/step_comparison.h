#pragma once
// Step-by-step comparison of autoencoder training, shared by the PyTorch parity test (tests/test_parity.cpp,
// the engine against tests/parity/state_v1.bin) and the GPU tests (the GPU against the CPU, and the GPU
// against the state file). Every step starts both sides from the same parameters (teacher forcing), and the
// results are held to the classes and limits that tests/parity/README.md measures and explains: a
// free-running comparison cannot hold any useful limit, because ReLU inputs within rounding of zero change
// sides and RMSprop's first step follows the sign of uncertain gradients.
//
// Nothing here asserts: a Report collects the failures, so a caller can also require a comparison to FAIL
// (the CPU test that shows the limits catch a real change, tests/test_step_comparison.cpp).
#include <string>
#include <vector>

#include "engine/collectives.h"
#include "engine/ops.h"
#include "engine/rmsprop.h"
#include "model/autoencoder.h"

namespace mriae::parity {

// The reference's hyperparameters (make_state.py).
constexpr float kLr = 1e-3f, kRho = 0.9f, kRmsEps = 1e-7f;
constexpr float kBnEps = 1e-3f, kBnMomentum = 0.99f;
constexpr int kSteps = 3;

// Relative-L2 limits; README.md gives the measurements behind each.
constexpr double kForwardLimit = 1e-5;     // training-mode outputs (measured <= 2.3e-6)
constexpr double kEvalLimit = 2e-5;        // eval-mode output (5.9e-6): it normalises with the moving
                                           // variances and inherits their error (kMovingStatLimit)
constexpr double kLossLimit = 1e-6;        // the loss sums in double (measured <= 7e-8)
constexpr double kMovingStatLimit = 2e-6;  // moving mean and variance (<= 9.7e-7): 1 - 0.99^t in float32
                                           // loses ~1e-6 to cancellation, as it does in Keras
constexpr double kGradTightLimit = 1e-5;   // conv11 and bn10: no ReLU between them and the loss (1.2e-6)
constexpr double kGradKinkLimit = 5e-2;    // behind a ReLU: kink crossings (6.9e-3 here; PyTorch's own
                                           // float32 reaches 1.7e-2 on one-ulp jittered inputs)
// Parameters after each step, over the elements whose step's gradient is well determined (below). The
// first RMSprop step amplifies gradient errors of elements in its eps regime (|g| ~ eps/sqrt(1-rho)), where
// the update still depends on |g|: conv biases ahead of ReLU+BN have such small gradients by construction.
constexpr double kParamKinkFreeLimit = 1e-4;  // conv11 and bn10 (4e-6 here; 4e-5 seen in PyTorch float32)
constexpr double kParamLimit = 5e-3;          // the rest (1.2e-3 here; 1.2e-3 at worst in PyTorch float32)
// An element's gradient is "uncertain" when ours is off by more than half the reference's value: then not
// even the sign of RMSprop's sign-like first step is determined. Such elements are excluded from the
// parameter limits but may not move further than two full steps apart, and at most this fraction of all
// parameter elements may be uncertain (1.0% here, 0.83% at worst in PyTorch float32, ~0 without a kink
// crossing).
constexpr double kUncertainRel = 0.5;
constexpr double kMaxUncertainFraction = 2e-2;
// Above this, a gradient error behind a ReLU is no longer plain rounding; the report then names the cause.
constexpr double kKinkEvidence = 1e-4;

struct Errors {
  double rel_l2 = 0, max_abs = 0;
};

// Host tensors, over the elements where keep is true (all when keep is empty). A zero reference gives the
// absolute L2.
Errors compare(const Tensor& ours, const Tensor& ref, const std::vector<bool>& keep = {});

// Prints one line per check and keeps each class's worst relative error and every failure.
class Report {
 public:
  void check(const std::string& cls, const std::string& name, const Errors& e, double limit,
             const std::string& note = "");
  void fail(const std::string& message);
  const std::vector<std::string>& failures() const { return failures_; }
  // The classes that failed at least once.
  std::vector<std::string> failed_classes() const;
  void summary() const;

 private:
  struct Worst {
    std::string cls, name;
    double rel, limit;
  };
  std::vector<Worst> worst_;
  std::vector<std::string> failures_, failed_classes_;
};

// What one training step gave, on the host. Per parameter (ParameterSet order) and per batchnorm.
struct StepRecord {
  Tensor output, loss;
  std::vector<Tensor> grads;  // empty where the reference does not have them (the state file's steps 2, 3)
  std::vector<Tensor> params_before, params_after;
  std::vector<Tensor> moving_mean, moving_var;
};

// The autoencoder and its RMSprop on one device, configured as the reference (BN eps and momentum from
// `bn`, so a test can change one on purpose).
class Backend {
 public:
  explicit Backend(Device device, const BatchNormOptions& bn = {kBnEps, kBnMomentum, MovingStatsRule::Keras});
  Autoencoder& model() { return model_; }
  Device device() const { return device_; }

  std::vector<Tensor> params() const;                   // host copies, ParameterSet order
  void set_params(const std::vector<Tensor>& params);   // from host (or any device) tensors
  // RMSprop's accumulators and step count, and every batchnorm's moving-statistics state.
  void copy_state_from(const Backend& other);
  // One training step on `input` (any device): forward, MSE against the input, backward, RMSprop.
  StepRecord step(const Tensor& input);
  // One data-parallel training step (the trainer's train_step with a BatchShare): this process holds rows
  // [offset, offset + local.dim(0)) of a global batch of `global` rows, and `processes` the rest. The record
  // holds the global batch's output (gathered from every process), loss and summed gradients, so that it
  // compares with a single process's step on the whole batch.
  StepRecord step_shared(const Tensor& local, int64_t offset, int64_t global, Collectives& processes);
  // Inference mode (moving statistics); the output on the host.
  Tensor eval(const Tensor& input);

 private:
  // The update, then the state after it, into r (both steps end alike).
  void update_and_record(StepRecord& r);

  Device device_;
  Autoencoder model_;
  RMSprop optimiser_;
};

// The checks of one comparison. The uncertain-element masks come from each step whose reference has
// gradients and stay in force for the steps that follow until the next such step.
class StepChecker {
 public:
  explicit StepChecker(const ParameterSet& layout);
  void check_step(int k, const StepRecord& ours, const StepRecord& ref, Report& report);
  void check_eval(const Tensor& ours, const Tensor& ref, Report& report);
  // The uncertain fraction of every step with gradients, and the kink-crossing note.
  void finish(Report& report);

 private:
  std::vector<std::string> names_;
  std::vector<std::vector<bool>> certain_;
  double worst_behind_relu_ = 0;
  struct Uncertain {
    int step;
    int64_t count, flipped;
  };
  std::vector<Uncertain> uncertain_;
  int64_t total_ = 0;
};

// The state file's three steps and eval on `device`, against the file (the engine keeps its own RMSprop
// and batchnorm state throughout, as the reference does).
Report run_state_file(const std::string& path, Device device);

// `ours` against `ref`, each step from ref's parameters and state: both start step k from ref's
// parameters, accumulators and moving statistics before it, run it on their own input (the same batch, or
// one a test perturbs), and are compared; then eval from ref's final state. `ref` keeps its own trajectory.
Report compare_backends(Backend& ref, const Tensor& ref_input, Backend& ours, const Tensor& our_input,
                        int steps = kSteps);

}  // namespace mriae::parity
