#include "checkpoint.h"

#include "atomic_file.h"

#include <torch/serialize.h>

#include <charconv>
#include <cstring>
#include <sstream>

#ifndef LENET_CPP_VERSION
#define LENET_CPP_VERSION "unknown"
#endif

namespace lenet {
namespace {

constexpr const char* kFormat = "lenet_cpp.checkpoint";
constexpr int64_t kVersion = 1;

// FNV-1a over 64-bit words: a fingerprint of the data, not a cryptographic hash.
uint64_t digest(const torch::Tensor& tensor, uint64_t hash) {
  const auto bytes = tensor.contiguous().cpu();
  const auto* data = static_cast<const unsigned char*>(bytes.data_ptr());
  const auto size = static_cast<size_t>(bytes.numel()) * bytes.element_size();
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, sizeof word);
    hash = (hash ^ word) * 0x100000001b3ULL;
  }
  for (; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ULL;
  return hash;
}

// The shortest text that reads back as the same double.
std::string exact(double value) {
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  return {buffer, end};
}

template <typename T>
torch::Tensor to_tensor(const std::vector<T>& values, torch::ScalarType type) {
  return torch::tensor(values, torch::TensorOptions(type)).reshape({static_cast<int64_t>(values.size())});
}

template <typename T>
std::vector<T> from_tensor(const torch::Tensor& tensor) {
  const auto values = tensor.contiguous();
  const auto* data = values.data_ptr<T>();
  return {data, data + values.numel()};
}

}  // namespace

std::string fingerprint(const TrainOptions& options, const Dataset& train,
                        const std::optional<Dataset>& test) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  hash = digest(train.images, digest(train.labels, hash));
  if (test) hash = digest(test->images, digest(test->labels, hash));
  std::ostringstream out;
  out << "lenet_cpp " << LENET_CPP_VERSION << "; epochs=" << options.epochs
      << " batch_size=" << options.batch_size << " learning_rate=" << exact(options.sgd.learning_rate)
      << " momentum=" << exact(options.sgd.momentum)
      << " weight_decay=" << exact(options.sgd.weight_decay)
      << " activation=" << to_string(options.model.activation)
      << " pooling=" << to_string(options.model.pooling)
      << " architecture=" << to_string(options.model.architecture)
      << " output=" << to_string(options.model.output) << " seed=" << options.seed
      << " kernels=" << to_string(options.kernels) << " device=" << options.device.type()
      << " " << describe(options.schedule) << " " << describe(options.augment)
      << "; data=" << std::hex << hash;
  return out.str();
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  c10::impl::GenericDict optimizer(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, tensor] : checkpoint.optimizer) optimizer.insert(name, tensor.cpu());
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("format", std::string(kFormat));
  dict.insert("version", kVersion);
  dict.insert("fingerprint", checkpoint.fingerprint);
  dict.insert("epoch", checkpoint.epoch);
  dict.insert("generator", checkpoint.generator);
  dict.insert("optimizer", optimizer);
  dict.insert("step_losses", to_tensor(checkpoint.step_losses, torch::kFloat32));
  dict.insert("train_loss", to_tensor(checkpoint.train_loss, torch::kFloat64));
  dict.insert("train_accuracy", to_tensor(checkpoint.train_accuracy, torch::kFloat64));
  dict.insert("test_loss", to_tensor(checkpoint.test_loss, torch::kFloat64));
  dict.insert("test_accuracy", to_tensor(checkpoint.test_accuracy, torch::kFloat64));
  dict.insert("train_time_s", checkpoint.train_time_s);
  dict.insert("diverged_at_step", checkpoint.diverged_at_step);
  write_atomically(path, torch::pickle_save(dict));
}

Checkpoint load_checkpoint(const std::string& path) {
  const auto bytes = read_file(path);
  c10::IValue loaded;
  try {
    loaded = torch::pickle_load(bytes);
  } catch (const c10::Error& error) {
    TORCH_CHECK_VALUE(false, "'", path, "' is not a readable checkpoint (", error.what_without_backtrace(),
                      "); delete it to start the run over");
  }
  TORCH_CHECK_VALUE(loaded.isGenericDict(), "'", path, "' is not a lenet_cpp checkpoint");
  const auto dict = loaded.toGenericDict();
  const auto get = [&](const char* key) {
    TORCH_CHECK_VALUE(dict.contains(key), "'", path, "' is not a lenet_cpp checkpoint (no '", key,
                      "'); delete it to start the run over");
    return dict.at(key);
  };
  TORCH_CHECK_VALUE(get("format").isString() && get("format").toStringRef() == kFormat &&
                        get("version").isInt() && get("version").toInt() == kVersion,
                    "'", path, "' is not a version-", kVersion, " lenet_cpp checkpoint");
  Checkpoint checkpoint;
  checkpoint.fingerprint = get("fingerprint").toStringRef();
  checkpoint.epoch = get("epoch").toInt();
  checkpoint.generator = get("generator").toTensor();
  for (const auto& item : get("optimizer").toGenericDict()) {
    checkpoint.optimizer[item.key().toStringRef()] = item.value().toTensor();
  }
  checkpoint.step_losses = from_tensor<float>(get("step_losses").toTensor());
  checkpoint.train_loss = from_tensor<double>(get("train_loss").toTensor());
  checkpoint.train_accuracy = from_tensor<double>(get("train_accuracy").toTensor());
  checkpoint.test_loss = from_tensor<double>(get("test_loss").toTensor());
  checkpoint.test_accuracy = from_tensor<double>(get("test_accuracy").toTensor());
  checkpoint.train_time_s = get("train_time_s").toDouble();
  checkpoint.diverged_at_step = get("diverged_at_step").toInt();
  return checkpoint;
}

}  // namespace lenet
