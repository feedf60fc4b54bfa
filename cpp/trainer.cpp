#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <chrono>

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

TrainResult train(const Dataset& train_set, const std::optional<Dataset>& test_set,
                  const TrainOptions& options, const ProgressCallback& progress) {
  const auto call_start = Clock::now();
  IntraOpThreads threads(options.threads);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);

  TrainResult result;
  result.model = LeNet5(options.model, generator);
  result.model->to(options.device);
  auto& model = result.model;

  const auto images = train_set.images.to(options.device);
  const auto labels = train_set.labels.to(options.device);
  std::optional<Dataset> test_on_device;
  if (test_set) {
    test_on_device = Dataset{test_set->images.to(options.device), test_set->labels.to(options.device)};
  }

  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(options.learning_rate)
                                  .momentum(options.momentum)
                                  .weight_decay(options.weight_decay));

  const int64_t n = images.size(0);
  const int64_t steps_per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = options.epochs * steps_per_epoch;
  result.step_losses.reserve(static_cast<size_t>(total_steps));

  // Shuffled copies live in persistent buffers; each batch is a contiguous slice of them.
  auto shuffled_images = torch::empty_like(images);
  auto shuffled_labels = torch::empty_like(labels);
  const auto tensor_opts = torch::TensorOptions(torch::kFloat32).device(options.device);
  int64_t step = 0;
  double train_seconds = 0.0;

  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    auto segment_start = Clock::now();  // training time excludes callbacks and evaluation
    const auto order = torch::randperm(n, generator, torch::kInt64).to(options.device);
    torch::index_select_out(shuffled_images, images, 0, order);
    torch::index_select_out(shuffled_labels, labels, 0, order);

    std::vector<torch::Tensor> losses;
    losses.reserve(static_cast<size_t>(steps_per_epoch));
    auto correct = torch::zeros({}, tensor_opts.dtype(torch::kInt64));
    for (int64_t start = 0; start < n; start += options.batch_size) {
      const auto length = std::min(options.batch_size, n - start);
      const auto x = shuffled_images.narrow(0, start, length);
      const auto y = shuffled_labels.narrow(0, start, length);

      optimizer.zero_grad();
      const auto logits = model->forward(x);
      const auto loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      optimizer.step();

      {
        torch::NoGradGuard no_grad;
        losses.push_back(loss.detach());
        correct += logits.argmax(1).eq(y).sum();
      }
      ++step;
      if (progress && (step % options.progress_every == 0 || step == total_steps)) {
        train_seconds += seconds_since(segment_start);
        progress(Progress{step, total_steps, epoch, options.epochs, loss.item<double>()});
        segment_start = Clock::now();
      }
    }
    train_seconds += seconds_since(segment_start);

    const auto epoch_losses = torch::stack(losses).cpu();
    const auto* loss_values = epoch_losses.data_ptr<float>();
    double weighted = 0.0;
    for (int64_t i = 0; i < epoch_losses.size(0); ++i) {
      const auto batch = std::min(options.batch_size, n - i * options.batch_size);
      weighted += static_cast<double>(loss_values[i]) * static_cast<double>(batch);
      result.step_losses.push_back(loss_values[i]);
    }
    result.train_loss.push_back(weighted / static_cast<double>(n));
    result.train_accuracy.push_back(correct.item<double>() / static_cast<double>(n));

    if (test_on_device) {
      auto evaluation = evaluate(model, *test_on_device, 1000);
      result.test_loss.push_back(evaluation.loss);
      result.test_accuracy.push_back(evaluation.accuracy);
      result.test_predictions = evaluation.predictions;
    }
  }
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
