// Training, evaluation and prediction of LeNet5 in plain C++: no Python in here. Every entry
// point checks its own arguments (c10::ValueError / c10::TypeError naming the argument), so the
// API is safe to call without the bindings.
#pragma once

#include "augment.h"
#include "lenet.h"
#include "schedule.h"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lenet {

// Images [N,1,28,28] float32 (already normalised) and labels [N] int64, on one device.
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
};

// uint8 pixels -> (x/255 - mean)/std as float32 (kernels::normalize_pixels); float32 passes
// through (detached). Adds the channel dimension to [N,28,28]. CPU tensors only.
torch::Tensor normalize_images(const torch::Tensor& images);
// The normalised value of a blank (zero) pixel: what distortions fill in outside the image.
float normalized_background();
constexpr double kMnistMean = 0.1307;
constexpr double kMnistStd = 0.3081;

// The most intra-op threads a run may ask for, per CPU of this machine: more never helps a
// CPU-bound loop, and each costs a workspace (10,000 threads would never finish starting).
constexpr int kMaxThreadsPerCpu = 4;
int max_threads();

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 64;
  SgdOptions sgd;
  LeNet5Options model;
  uint64_t seed = 0;
  int threads = 0;  // intra-op threads of the calling thread during the run; 0 keeps the current value
  torch::Device device = torch::kCPU;
  Kernels kernels = Kernels::Fused;  // Fused needs the CPU
  int64_t progress_every = 100;  // steps between progress callbacks
  // Where to keep the end-of-epoch checkpoint ("" for none): an existing one for the same
  // options and data is resumed; one for anything else is refused (c10::ValueError).
  std::string checkpoint;
  bool stop_on_divergence = true;  // raise TrainingDiverged at the first non-finite step loss
  ScheduleOptions schedule;  // the learning rate of each step (schedule.h); sgd's is the base
  AugmentOptions augment;    // distortions of the training images, per image per pass
};

// Throws c10::ValueError naming the first bad field.
void validate(const TrainOptions& options);

// The loss of step `step` (1-based; in epoch `epoch`) was not finite.
class TrainingDiverged : public std::runtime_error {
 public:
  TrainingDiverged(int64_t step, int64_t epoch, double learning_rate, double loss);
  int64_t step;
  int64_t epoch;
  double learning_rate;
  double loss;
};

struct Progress {
  int64_t step;         // optimiser steps done so far (1-based)
  int64_t total_steps;  // epochs * steps per epoch
  int64_t epoch;        // 1-based epoch the step belongs to
  int64_t epochs;
  double loss;          // training loss of this step
};

// Called on the training thread every progress_every steps and after the last step.
// An exception thrown here stops training and propagates to the caller of train().
using ProgressCallback = std::function<void(const Progress&)>;

struct Evaluation {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction correct
  torch::Tensor predictions;  // int64 [N], on the CPU
  torch::Tensor confusion;    // int64 [10,10], rows = true label, columns = prediction
};

struct TrainResult {
  LeNet5 model{nullptr};
  std::vector<float> step_losses;
  std::vector<double> step_learning_rates;  // the learning rate each step used
  std::vector<double> train_loss;      // per epoch, mean over its samples
  std::vector<double> train_accuracy;  // per epoch, measured on the fly
  std::vector<double> test_loss;       // per epoch, when a test set is given
  std::vector<double> test_accuracy;
  torch::Tensor test_predictions;      // after the last epoch, when a test set is given
  int64_t diverged_at_step = 0;        // first step with a non-finite loss (0: none)
  int64_t resumed_from_epoch = 0;      // epochs taken from the checkpoint (0: a fresh start)
  double wall_time_s = 0.0;            // whole call, test evaluations included
  double train_time_s = 0.0;           // optimisation steps only
  double images_per_second = 0.0;      // epochs * N / train_time_s
};

// The model is initialised from options.seed and every random draw (init, shuffling) uses a
// generator owned by this run, so concurrent runs are independent and bit-reproducible.
TrainResult train(const Dataset& train_set, const std::optional<Dataset>& test_set,
                  const TrainOptions& options, const ProgressCallback& progress);

// Logits [N,10], class indices and evaluation of `images` (normalised [N,1,28,28]) in batches,
// under InferenceMode, by the chosen kernels (Fused needs a CPU model).
torch::Tensor logits(LeNet5& model, const torch::Tensor& images, Kernels kernels);
torch::Tensor predict(LeNet5& model, const torch::Tensor& images, int64_t batch_size,
                      Kernels kernels);
Evaluation evaluate(LeNet5& model, const Dataset& data, int64_t batch_size, Kernels kernels);

// The gradient of the mean cross-entropy of (images, labels) with respect to every parameter,
// by the chosen kernels: {name, gradient} in named_parameters() order. For gradient checks.
std::vector<std::pair<std::string, torch::Tensor>> gradients(LeNet5& model, const Dataset& data,
                                                             Kernels kernels);

// glibc's malloc hands large blocks back to the OS when they are freed (mmap threshold, trim
// threshold), so a loop that allocates and frees the same big tensors every step page-faults
// them in again every step. This raises both thresholds for the whole process (every thread,
// every library in it) so freed blocks stay in the heap for reuse. Returns false where the C
// library has no mallopt (not glibc); then set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
// in the environment before the process starts instead.
constexpr int64_t kTunedMmapThreshold = int64_t{32} << 20;  // glibc's largest allowed value
constexpr int64_t kTunedTrimThreshold = int64_t{1} << 30;
bool tune_allocator(int64_t mmap_threshold = kTunedMmapThreshold,
                    int64_t trim_threshold = kTunedTrimThreshold);

// Sets the calling thread's ATen/OpenMP intra-op thread count for its lifetime, then restores it.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads);
  ~IntraOpThreads();
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_;
  bool changed_;
};

}  // namespace lenet
