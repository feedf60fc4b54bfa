#include "trainer.h"

#include "fused.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <chrono>
#include <climits>
#include <memory>
#include <utility>

namespace lenet {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

torch::Tensor normalize_images(const torch::Tensor& images) {
  auto x = images.dim() == 3 ? images.unsqueeze(1) : images;
  if (x.scalar_type() == torch::kUInt8) {
    x = x.to(torch::kFloat32).div_(255.0).sub_(kMnistMean).div_(kMnistStd);
  }
  return x.contiguous();
}

bool tune_allocator(int64_t mmap_threshold, int64_t trim_threshold) {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) == 1 &&
         mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min<int64_t>(trim_threshold, INT_MAX))) == 1;
#else
  (void)mmap_threshold;
  (void)trim_threshold;
  return false;
#endif
}

IntraOpThreads::IntraOpThreads(int threads)
    : previous_(at::get_num_threads()), changed_(threads > 0 && threads != previous_) {
  if (changed_) at::set_num_threads(threads);
}

IntraOpThreads::~IntraOpThreads() {
  if (changed_) at::set_num_threads(previous_);
}

torch::Tensor predict(LeNet5& model, const torch::Tensor& images, int64_t batch_size) {
  torch::InferenceMode inference;
  const auto device = model->conv1->weight.device();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const auto length = std::min(batch_size, images.size(0) - start);
    auto logits = model->forward(images.narrow(0, start, length).to(device));
    parts.push_back(logits.argmax(1).cpu());
  }
  return parts.empty() ? torch::empty({0}, torch::kInt64) : torch::cat(parts);
}

Evaluation evaluate(LeNet5& model, const Dataset& data, int64_t batch_size) {
  torch::InferenceMode inference;
  const auto device = model->conv1->weight.device();
  const auto n = data.images.size(0);
  auto loss_sum = torch::zeros({}, torch::TensorOptions(torch::kFloat64).device(device));
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < n; start += batch_size) {
    const auto length = std::min(batch_size, n - start);
    auto labels = data.labels.narrow(0, start, length).to(device);
    auto logits = model->forward(data.images.narrow(0, start, length).to(device));
    loss_sum += torch::nn::functional::cross_entropy(
        logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    parts.push_back(logits.argmax(1));
  }
  Evaluation result;
  result.predictions = torch::cat(parts).cpu();
  const auto labels = data.labels.cpu();
  result.confusion = torch::bincount(labels * 10 + result.predictions, {}, 100).view({10, 10});
  result.loss = loss_sum.item<double>() / static_cast<double>(n);
  result.accuracy =
      result.predictions.eq(labels).sum().item<double>() / static_cast<double>(n);
  return result;
}

namespace {

// The per-step results of one epoch.
struct EpochSteps {
  std::vector<float> losses;  // mean loss of each batch
  int64_t correct = 0;        // correct arg-max predictions, counted before each update
};

// Runs optimisation steps on batches and keeps their results until the end of the epoch.
class Stepper {
 public:
  virtual ~Stepper() = default;
  virtual void step(const torch::Tensor& images, const torch::Tensor& labels) = 0;
  virtual double last_loss() = 0;
  virtual EpochSteps take_epoch() = 0;
  // Make the model hold the current parameters (before evaluating or returning it).
  virtual void sync_model() {}
};

// libtorch's autograd and torch::optim::SGD: any device. Losses stay tensors until the end of
// the epoch so that a GPU is never waited for inside the loop.
class LibtorchStepper final : public Stepper {
 public:
  LibtorchStepper(LeNet5& model, const TrainOptions& options)
      : model_(model),
        optimizer_(model->parameters(), torch::optim::SGDOptions(options.learning_rate)
                                            .momentum(options.momentum)
                                            .weight_decay(options.weight_decay)),
        correct_(torch::zeros({}, torch::TensorOptions(torch::kInt64).device(options.device))) {}

  void step(const torch::Tensor& images, const torch::Tensor& labels) override {
    optimizer_.zero_grad();
    const auto logits = model_->forward(images);
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    optimizer_.step();
    torch::NoGradGuard no_grad;
    last_ = loss.detach();
    losses_.push_back(last_);
    correct_ += logits.argmax(1).eq(labels).sum();
  }

  double last_loss() override { return last_.item<double>(); }

  EpochSteps take_epoch() override {
    EpochSteps epoch;
    if (!losses_.empty()) {
      const auto values = torch::stack(losses_).cpu();
      const auto* data = values.data_ptr<float>();
      epoch.losses.assign(data, data + values.numel());
    }
    epoch.correct = correct_.item<int64_t>();
    losses_.clear();
    correct_.zero_();
    return epoch;
  }

 private:
  LeNet5& model_;
  torch::optim::SGD optimizer_;
  std::vector<torch::Tensor> losses_;
  torch::Tensor correct_;
  torch::Tensor last_;
};

// The fused CPU kernels (fused.h): images must be contiguous float32, labels int64, on the CPU.
class FusedStepper final : public Stepper {
 public:
  FusedStepper(LeNet5& model, const TrainOptions& options)
      : model_(model),
        trainer_(*model, fused::SgdOptions{options.learning_rate, options.momentum,
                                           options.weight_decay}) {}

  void step(const torch::Tensor& images, const torch::Tensor& labels) override {
    const auto batch = images.size(0);
    const auto totals =
        trainer_.step(images.data_ptr<float>(), labels.data_ptr<int64_t>(), batch);
    last_ = totals.loss_sum / static_cast<double>(batch);
    epoch_.losses.push_back(static_cast<float>(last_));
    epoch_.correct += totals.correct;
  }

  double last_loss() override { return last_; }

  EpochSteps take_epoch() override { return std::exchange(epoch_, EpochSteps{}); }

  void sync_model() override { trainer_.store(*model_); }

 private:
  LeNet5& model_;
  fused::Trainer trainer_;
  EpochSteps epoch_;
  double last_ = 0.0;
};

std::unique_ptr<Stepper> make_stepper(LeNet5& model, const TrainOptions& options) {
  if (options.device.is_cpu() && fused::enabled()) {
    return std::make_unique<FusedStepper>(model, options);
  }
  return std::make_unique<LibtorchStepper>(model, options);
}

}  // namespace

TrainResult train(const Dataset& train_set, const std::optional<Dataset>& test_set,
                  const TrainOptions& options, const ProgressCallback& progress) {
  const auto call_start = Clock::now();
  IntraOpThreads threads(options.threads);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);

  TrainResult result;
  result.model = LeNet5(options.model, generator);
  result.model->to(options.device);
  auto& model = result.model;

  const auto images = train_set.images.to(options.device).contiguous();
  const auto labels = train_set.labels.to(options.device).to(torch::kInt64).contiguous();
  std::optional<Dataset> test_on_device;
  if (test_set) {
    test_on_device = Dataset{test_set->images.to(options.device), test_set->labels.to(options.device)};
  }
  auto stepper = make_stepper(model, options);

  const int64_t n = images.size(0);
  const int64_t steps_per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = options.epochs * steps_per_epoch;
  result.step_losses.reserve(static_cast<size_t>(total_steps));

  // Shuffled copies live in persistent buffers; each batch is a contiguous slice of them.
  auto shuffled_images = torch::empty_like(images);
  auto shuffled_labels = torch::empty_like(labels);
  int64_t step = 0;
  double train_seconds = 0.0;

  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    auto segment_start = Clock::now();  // training time excludes callbacks and evaluation
    const auto order = torch::randperm(n, generator, torch::kInt64).to(options.device);
    torch::index_select_out(shuffled_images, images, 0, order);
    torch::index_select_out(shuffled_labels, labels, 0, order);

    for (int64_t start = 0; start < n; start += options.batch_size) {
      const auto length = std::min(options.batch_size, n - start);
      stepper->step(shuffled_images.narrow(0, start, length), shuffled_labels.narrow(0, start, length));
      ++step;
      if (progress && (step % options.progress_every == 0 || step == total_steps)) {
        train_seconds += seconds_since(segment_start);
        progress(Progress{step, total_steps, epoch, options.epochs, stepper->last_loss()});
        segment_start = Clock::now();
      }
    }
    const auto steps = stepper->take_epoch();
    train_seconds += seconds_since(segment_start);

    double weighted = 0.0;
    for (size_t i = 0; i < steps.losses.size(); ++i) {
      const auto batch = std::min(options.batch_size, n - static_cast<int64_t>(i) * options.batch_size);
      weighted += static_cast<double>(steps.losses[i]) * static_cast<double>(batch);
    }
    result.step_losses.insert(result.step_losses.end(), steps.losses.begin(), steps.losses.end());
    result.train_loss.push_back(weighted / static_cast<double>(n));
    result.train_accuracy.push_back(static_cast<double>(steps.correct) / static_cast<double>(n));

    if (test_on_device) {
      stepper->sync_model();
      auto evaluation = evaluate(model, *test_on_device, 1000);
      result.test_loss.push_back(evaluation.loss);
      result.test_accuracy.push_back(evaluation.accuracy);
      result.test_predictions = evaluation.predictions;
    }
  }
  stepper->sync_model();
  if (test_on_device && options.epochs == 0) {
    result.test_predictions = predict(model, test_on_device->images, 1000);
  }

  result.train_time_s = train_seconds;
  result.wall_time_s = seconds_since(call_start);
  result.images_per_second =
      train_seconds > 0.0 ? static_cast<double>(options.epochs * n) / train_seconds : 0.0;
  return result;
}

}  // namespace lenet
