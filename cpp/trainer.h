// Training, evaluation and prediction of LeNet5 in plain C++: no Python in here.
// The bindings check every argument before calling these functions.
#pragma once

#include "lenet.h"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace lenet {

// Images [N,1,28,28] float32 (already normalised) and labels [N] int64, on one device.
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
};

// uint8 pixels -> (x/255 - mean)/std as float32; float32 passes through. Adds the channel
// dimension to [N,28,28]. The one place where MNIST normalisation is defined.
torch::Tensor normalize_images(const torch::Tensor& images);
constexpr double kMnistMean = 0.1307;
constexpr double kMnistStd = 0.3081;

struct TrainOptions {
  int64_t epochs = 1;
  double learning_rate = 0.01;
  int64_t batch_size = 64;
  double momentum = 0.0;
  double weight_decay = 0.0;
  LeNet5Options model;
  uint64_t seed = 0;
  int threads = 0;  // intra-op threads of the calling thread during the run; 0 keeps the current value
  torch::Device device = torch::kCPU;
  int64_t progress_every = 100;  // steps between progress callbacks
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
  std::vector<double> train_loss;      // per epoch, mean over its samples
  std::vector<double> train_accuracy;  // per epoch, measured on the fly
  std::vector<double> test_loss;       // per epoch, when a test set is given
  std::vector<double> test_accuracy;
  torch::Tensor test_predictions;      // after the last epoch, when a test set is given
  double wall_time_s = 0.0;            // whole call, test evaluations included
  double train_time_s = 0.0;           // optimisation steps only
  double images_per_second = 0.0;      // epochs * N / train_time_s
};

// The model is initialised from options.seed and every random draw (init, shuffling) uses a
// generator owned by this run, so concurrent runs are independent and bit-reproducible.
TrainResult train(const Dataset& train_set, const std::optional<Dataset>& test_set,
                  const TrainOptions& options, const ProgressCallback& progress);

// Logits -> class index for `images` (normalised [N,1,28,28]), in batches, under InferenceMode.
torch::Tensor predict(LeNet5& model, const torch::Tensor& images, int64_t batch_size);
Evaluation evaluate(LeNet5& model, const Dataset& data, int64_t batch_size);

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
