#include "trainer.h"

#include "checkpoint.h"
#include "fused.h"
#include "kernels.h"
#include "lenet1998.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <chrono>
#include <climits>
#include <filesystem>
#include <map>
#include <cmath>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

namespace lenet {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

torch::Tensor normalize_images(const torch::Tensor& images) {
  TORCH_CHECK_VALUE(images.device().is_cpu(), "images must be on the CPU, got ", images.device());
  auto x = (images.dim() == 3 ? images.unsqueeze(1) : images).detach().contiguous();
  if (x.scalar_type() != torch::kUInt8) return x;
  auto out = torch::empty(x.sizes(), torch::kFloat32);
  kernels::normalize_pixels(x.data_ptr<uint8_t>(), x.numel(), static_cast<float>(kMnistMean),
                            static_cast<float>(kMnistStd), out.data_ptr<float>());
  return out;
}

float normalized_background() {
  const uint8_t blank = 0;
  float value = 0.0F;
  kernels::normalize_pixels(&blank, 1, static_cast<float>(kMnistMean),
                            static_cast<float>(kMnistStd), &value);
  return value;
}

int max_threads() {
  const auto cpus = static_cast<int>(std::thread::hardware_concurrency());
  return kMaxThreadsPerCpu * std::max(cpus, 1);
}

void validate(const TrainOptions& options) {
  TORCH_CHECK_VALUE(options.epochs >= 0, "epochs must be >= 0, got ", options.epochs);
  TORCH_CHECK_VALUE(options.batch_size >= 1, "batch_size must be >= 1, got ", options.batch_size);
  const auto& sgd = options.sgd;
  TORCH_CHECK_VALUE(std::isfinite(sgd.learning_rate) && sgd.learning_rate > 0.0,
                    "learning_rate must be a finite number > 0, got ", sgd.learning_rate);
  TORCH_CHECK_VALUE(std::isfinite(sgd.momentum) && sgd.momentum >= 0.0,
                    "momentum must be a finite number >= 0, got ", sgd.momentum);
  TORCH_CHECK_VALUE(std::isfinite(sgd.weight_decay) && sgd.weight_decay >= 0.0,
                    "weight_decay must be a finite number >= 0, got ", sgd.weight_decay);
  TORCH_CHECK_VALUE(options.threads >= 0 && options.threads <= max_threads(),
                    "threads must be in 0..", max_threads(), " (", kMaxThreadsPerCpu,
                    " per CPU of this machine; 0 keeps the current setting), got ",
                    options.threads);
  TORCH_CHECK_VALUE(options.progress_every >= 1, "progress_every must be >= 1, got ",
                    options.progress_every);
  TORCH_CHECK_VALUE(options.kernels == Kernels::Libtorch || options.device.is_cpu(),
                    "kernels='fused' runs on the CPU only; use kernels='libtorch' on ",
                    options.device);
  check_model_options(options.model);
  validate(options.schedule);
  validate(options.augment);
}

TrainingDiverged::TrainingDiverged(int64_t step, int64_t epoch, double learning_rate, double loss)
    : std::runtime_error([&] {
        std::ostringstream message;
        message << "training diverged: the loss of step " << step << " (epoch " << epoch
                << ") is " << loss << " with learning_rate=" << learning_rate
                << "; lower the learning rate, or pass on_divergence='continue' to keep going";
        return message.str();
      }()),
      step(step),
      epoch(epoch),
      learning_rate(learning_rate),
      loss(loss) {}

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

namespace {

void check_model_for(const LeNet5& model, Kernels kernels) {
  TORCH_CHECK_VALUE(kernels == Kernels::Libtorch || model->device().is_cpu(),
                    "kernels='fused' needs a CPU model; this one is on ",
                    model->device(), " (use kernels='libtorch')");
}

}  // namespace

torch::Tensor logits(LeNet5& model, const torch::Tensor& images, Kernels kernels) {
  check_model_for(model, kernels);
  torch::InferenceMode inference;
  if (kernels == Kernels::Fused) return fused::logits(*model, images);
  return model->forward(images.to(model->device()));
}

torch::Tensor predict(LeNet5& model, const torch::Tensor& images, int64_t batch_size,
                      Kernels kernels) {
  TORCH_CHECK_VALUE(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  check_model_for(model, kernels);
  torch::InferenceMode inference;
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const auto length = std::min(batch_size, images.size(0) - start);
    const auto batch = images.narrow(0, start, length);
    if (kernels == Kernels::Fused) {
      parts.push_back(fused::score(*model, batch, torch::Tensor()).predictions);
    } else {
      parts.push_back(logits(model, batch, kernels).argmax(1).cpu());
    }
  }
  return parts.empty() ? torch::empty({0}, torch::kInt64) : torch::cat(parts);
}

Evaluation evaluate(LeNet5& model, const Dataset& data, int64_t batch_size, Kernels kernels) {
  TORCH_CHECK_VALUE(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  check_model_for(model, kernels);
  torch::InferenceMode inference;
  const auto n = data.images.size(0);
  double loss_sum = 0.0;
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < n; start += batch_size) {
    const auto length = std::min(batch_size, n - start);
    const auto images = data.images.narrow(0, start, length);
    const auto labels = data.labels.narrow(0, start, length);
    if (kernels == Kernels::Fused) {
      auto scores = fused::score(*model, images, labels);
      loss_sum += scores.loss_sum;
      parts.push_back(scores.predictions);
    } else {
      const auto device = model->device();
      const auto out = model->forward(images.to(device));
      loss_sum += model->loss(out, labels.to(device), /*sum=*/true).item<double>();
      parts.push_back(out.argmax(1).cpu());
    }
  }
  Evaluation result;
  result.predictions = torch::cat(parts);
  const auto labels = data.labels.cpu();
  result.confusion = torch::bincount(labels * 10 + result.predictions, {}, 100).view({10, 10});
  result.loss = loss_sum / static_cast<double>(n);
  result.accuracy =
      result.predictions.eq(labels).sum().item<double>() / static_cast<double>(n);
  return result;
}

std::vector<std::pair<std::string, torch::Tensor>> gradients(LeNet5& model, const Dataset& data,
                                                             Kernels kernels) {
  check_model_for(model, kernels);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (kernels == Kernels::Fused) {
    fused::Trainer trainer(*model, SgdOptions{});
    const auto images = data.images.contiguous();
    const auto labels = data.labels.to(torch::kInt64).contiguous();
    const auto flat = trainer.gradient(images.data_ptr<float>(), labels.data_ptr<int64_t>(),
                                       images.size(0));
    LeNet5 shaped(model->options(), at::make_generator<at::CPUGeneratorImpl>(0));
    fused::unpack(flat, *shaped);
    for (const auto& item : shaped->named_parameters()) out.emplace_back(item.key(), item.value().detach().clone());
    return out;
  }
  for (auto& parameter : model->parameters()) parameter.mutable_grad() = torch::Tensor();
  const auto device = model->device();
  const auto loss = model->loss(model->forward(data.images.to(device)), data.labels.to(device));
  loss.backward();
  for (const auto& item : model->named_parameters()) {
    out.emplace_back(item.key(), item.value().grad().detach().cpu().clone());
    item.value().mutable_grad() = torch::Tensor();
  }
  return out;
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
  virtual void set_learning_rate(double learning_rate) = 0;  // of the following steps
  virtual double last_loss() = 0;
  virtual EpochSteps take_epoch() = 0;
  // Make the model hold the current parameters (before evaluating or returning it).
  virtual void sync_model() {}
  // The optimiser's state (parameters, momentum buffers) for a checkpoint, and back.
  virtual std::map<std::string, torch::Tensor> state() = 0;
  virtual void restore(const std::map<std::string, torch::Tensor>& state) = 0;
};

const torch::Tensor& entry(const std::map<std::string, torch::Tensor>& state,
                           const std::string& key) {
  const auto found = state.find(key);
  TORCH_CHECK_VALUE(found != state.end(), "the checkpoint has no optimiser entry '", key, "'");
  return found->second;
}

// libtorch's autograd and torch::optim::SGD: any device. Losses stay tensors until the end of
// the epoch so that a GPU is never waited for inside the loop.
class LibtorchStepper final : public Stepper {
 public:
  LibtorchStepper(LeNet5& model, const TrainOptions& options)
      : model_(model),
        optimizer_(model->parameters(), torch::optim::SGDOptions(options.sgd.learning_rate)
                                            .momentum(options.sgd.momentum)
                                            .weight_decay(options.sgd.weight_decay)),
        correct_(torch::zeros({}, torch::TensorOptions(torch::kInt64).device(options.device))) {}

  void step(const torch::Tensor& images, const torch::Tensor& labels) override {
    optimizer_.zero_grad();
    const auto logits = model_->forward(images);
    const auto loss = model_->loss(logits, labels);
    loss.backward();
    optimizer_.step();
    torch::NoGradGuard no_grad;
    last_ = loss.detach();
    losses_.push_back(last_);
    correct_ += logits.argmax(1).eq(labels).sum();
  }

  void set_learning_rate(double learning_rate) override {
    for (auto& group : optimizer_.param_groups()) {
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(learning_rate);
    }
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

  std::map<std::string, torch::Tensor> state() override {
    std::map<std::string, torch::Tensor> out;
    for (const auto& item : model_->named_parameters()) {
      out["param/" + item.key()] = item.value().detach().cpu().clone();
      const auto key = item.value().unsafeGetTensorImpl();
      const auto& states = optimizer_.state();
      if (const auto found = states.find(key); found != states.end()) {
        const auto& sgd = static_cast<const torch::optim::SGDParamState&>(*found->second);
        out["momentum/" + item.key()] = sgd.momentum_buffer().detach().cpu().clone();
      }
    }
    return out;
  }

  void restore(const std::map<std::string, torch::Tensor>& state) override {
    torch::NoGradGuard no_grad;
    for (auto& item : model_->named_parameters()) {
      item.value().copy_(entry(state, "param/" + item.key()));
      const auto momentum = state.find("momentum/" + item.key());
      if (momentum == state.end()) continue;
      auto sgd = std::make_unique<torch::optim::SGDParamState>();
      sgd->momentum_buffer(momentum->second.to(item.value().device()).clone());
      optimizer_.state()[item.value().unsafeGetTensorImpl()] = std::move(sgd);
    }
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
      : model_(model), trainer_(*model, options.sgd) {}

  void step(const torch::Tensor& images, const torch::Tensor& labels) override {
    const auto batch = images.size(0);
    const auto totals =
        trainer_.step(images.data_ptr<float>(), labels.data_ptr<int64_t>(), batch);
    last_ = totals.loss_sum / static_cast<double>(batch);
    epoch_.losses.push_back(static_cast<float>(last_));
    epoch_.correct += totals.correct;
  }

  void set_learning_rate(double learning_rate) override {
    trainer_.set_learning_rate(learning_rate);
  }

  double last_loss() override { return last_; }

  EpochSteps take_epoch() override { return std::exchange(epoch_, EpochSteps{}); }

  void sync_model() override { trainer_.store(*model_); }

  std::map<std::string, torch::Tensor> state() override {
    const auto saved = trainer_.state();
    return {{"params", saved.params},
            {"momentum", saved.momentum},
            {"first_step", torch::tensor(saved.first_step ? 1 : 0, torch::kInt64)}};
  }

  void restore(const std::map<std::string, torch::Tensor>& state) override {
    trainer_.restore({entry(state, "params"), entry(state, "momentum"),
                      entry(state, "first_step").item<int64_t>() != 0});
  }

 private:
  LeNet5& model_;
  fused::Trainer trainer_;
  EpochSteps epoch_;
  double last_ = 0.0;
};

std::unique_ptr<Stepper> make_stepper(LeNet5& model, const TrainOptions& options) {
  if (options.kernels == Kernels::Fused) return std::make_unique<FusedStepper>(model, options);
  return std::make_unique<LibtorchStepper>(model, options);
}

// Mean over the epoch's samples of the per-batch mean losses, each weighted by its batch size.
double epoch_loss(const std::vector<float>& losses, int64_t batch_size, int64_t n) {
  double weighted = 0.0;
  for (size_t i = 0; i < losses.size(); ++i) {
    const auto batch = std::min(batch_size, n - static_cast<int64_t>(i) * batch_size);
    weighted += static_cast<double>(losses[i]) * static_cast<double>(batch);
  }
  return weighted / static_cast<double>(n);
}

// The learning rate of step `step` (0-based) of the run.
double learning_rate_of(const TrainOptions& options, int64_t step, int64_t total_steps,
                        int64_t steps_per_epoch) {
  return learning_rate_at(options.schedule, options.sgd.learning_rate,
                          StepPosition{step, total_steps, step / steps_per_epoch + 1});
}

// The pass's shuffled images, distorted on the CPU (augment.h), on their device.
torch::Tensor distort_pass(const AugmentOptions& augment, at::Generator& generator,
                           const torch::Tensor& shuffled) {
  return distort(shuffled.cpu(), augment, generator, normalized_background())
      .to(shuffled.device());
}

}  // namespace

TrainResult train(const Dataset& train_set, const std::optional<Dataset>& test_set,
                  const TrainOptions& options, const ProgressCallback& progress) {
  validate(options);
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
  result.step_learning_rates.reserve(static_cast<size_t>(total_steps));

  // Resume from the checkpoint of an earlier, interrupted call with the same options and data.
  std::string run_fingerprint;
  double earlier_train_seconds = 0.0;
  if (!options.checkpoint.empty()) {
    run_fingerprint = fingerprint(options, train_set, test_set);
    if (std::filesystem::exists(options.checkpoint)) {
      const auto saved = load_checkpoint(options.checkpoint);
      TORCH_CHECK_VALUE(saved.fingerprint == run_fingerprint, "checkpoint '", options.checkpoint,
                        "' belongs to another run and is not used.\n  it was written for: ",
                        saved.fingerprint, "\n  this run is:         ", run_fingerprint,
                        "\nDelete it (or choose another checkpoint path) to start over.");
      TORCH_CHECK_VALUE(saved.epoch <= options.epochs, "checkpoint '", options.checkpoint,
                        "' is past the last epoch");
      generator.set_state(saved.generator);
      stepper->restore(saved.optimizer);
      result.step_losses = saved.step_losses;
      for (int64_t done = 0; done < saved.epoch * steps_per_epoch; ++done) {
        result.step_learning_rates.push_back(
            learning_rate_of(options, done, total_steps, steps_per_epoch));
      }
      result.train_loss = saved.train_loss;
      result.train_accuracy = saved.train_accuracy;
      result.test_loss = saved.test_loss;
      result.test_accuracy = saved.test_accuracy;
      result.diverged_at_step = saved.diverged_at_step;
      result.resumed_from_epoch = saved.epoch;
      earlier_train_seconds = saved.train_time_s;
    }
  }

  // Shuffled copies live in persistent buffers; each batch is a contiguous slice of them.
  auto shuffled_images = torch::empty_like(images);
  auto shuffled_labels = torch::empty_like(labels);
  int64_t step = result.resumed_from_epoch * steps_per_epoch;
  double train_seconds = 0.0;
  const bool check_each_step = options.device.is_cpu();  // no GPU sync inside the loop

  for (int64_t epoch = result.resumed_from_epoch + 1; epoch <= options.epochs; ++epoch) {
    auto segment_start = Clock::now();  // training time excludes callbacks and evaluation
    const auto order = torch::randperm(n, generator, torch::kInt64).to(options.device);
    torch::index_select_out(shuffled_images, images, 0, order);
    torch::index_select_out(shuffled_labels, labels, 0, order);
    const auto pass_images = options.augment.enabled
                                 ? distort_pass(options.augment, generator, shuffled_images)
                                 : shuffled_images;

    for (int64_t start = 0; start < n; start += options.batch_size) {
      const auto length = std::min(options.batch_size, n - start);
      const double learning_rate = learning_rate_of(options, step, total_steps, steps_per_epoch);
      stepper->set_learning_rate(learning_rate);
      result.step_learning_rates.push_back(learning_rate);
      stepper->step(pass_images.narrow(0, start, length), shuffled_labels.narrow(0, start, length));
      ++step;
      if (check_each_step && options.stop_on_divergence) {
        const double loss = stepper->last_loss();
        if (!std::isfinite(loss)) throw TrainingDiverged(step, epoch, learning_rate, loss);
      }
      if (progress && (step % options.progress_every == 0 || step == total_steps)) {
        train_seconds += seconds_since(segment_start);
        progress(Progress{step, total_steps, epoch, options.epochs, stepper->last_loss()});
        segment_start = Clock::now();
      }
    }
    const auto steps = stepper->take_epoch();
    train_seconds += seconds_since(segment_start);

    for (size_t i = 0; i < steps.losses.size() && result.diverged_at_step == 0; ++i) {
      if (std::isfinite(steps.losses[i])) continue;
      const auto at = (epoch - 1) * steps_per_epoch + static_cast<int64_t>(i) + 1;
      if (options.stop_on_divergence) {
        throw TrainingDiverged(at, epoch, result.step_learning_rates[static_cast<size_t>(at - 1)],
                               steps.losses[i]);
      }
      result.diverged_at_step = at;
    }
    result.step_losses.insert(result.step_losses.end(), steps.losses.begin(), steps.losses.end());
    result.train_loss.push_back(epoch_loss(steps.losses, options.batch_size, n));
    result.train_accuracy.push_back(static_cast<double>(steps.correct) / static_cast<double>(n));

    if (test_on_device) {
      stepper->sync_model();
      auto evaluation = evaluate(model, *test_on_device, 1000, options.kernels);
      result.test_loss.push_back(evaluation.loss);
      result.test_accuracy.push_back(evaluation.accuracy);
      result.test_predictions = evaluation.predictions;
    }
    if (!options.checkpoint.empty()) {
      Checkpoint checkpoint;
      checkpoint.fingerprint = run_fingerprint;
      checkpoint.epoch = epoch;
      checkpoint.generator = generator.get_state();
      checkpoint.optimizer = stepper->state();
      checkpoint.step_losses = result.step_losses;
      checkpoint.train_loss = result.train_loss;
      checkpoint.train_accuracy = result.train_accuracy;
      checkpoint.test_loss = result.test_loss;
      checkpoint.test_accuracy = result.test_accuracy;
      checkpoint.train_time_s = earlier_train_seconds + train_seconds;
      checkpoint.diverged_at_step = result.diverged_at_step;
      save_checkpoint(options.checkpoint, checkpoint);
    }
  }
  stepper->sync_model();
  if (test_on_device && !result.test_predictions.defined()) {  // no epoch ran in this call
    result.test_predictions = predict(model, test_on_device->images, 1000, options.kernels);
  }

  result.train_time_s = earlier_train_seconds + train_seconds;
  result.wall_time_s = seconds_since(call_start);
  const auto trained = (options.epochs - result.resumed_from_epoch) * n;
  result.images_per_second =
      train_seconds > 0.0 ? static_cast<double>(trained) / train_seconds : 0.0;
  return result;
}

}  // namespace lenet
