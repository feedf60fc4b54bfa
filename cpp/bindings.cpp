// pybind11 bindings: Python objects -> C++ values (tensors, NumPy arrays, ints, paths), the
// checks only Python can make, and the module definition. The C++ API checks its own options
// (c10::ValueError, which reaches Python as ValueError); C++ exceptions of our own become
// TrainingDiverged (a FloatingPointError) and OSError. Training, prediction and evaluation run
// with the GIL released; it is taken back only to call the progress callback and to check for
// signals (Ctrl-C).
#include "atomic_file.h"
#include "lenet.h"
#include "lenet1998.h"
#include "trainer.h"

#include <torch/csrc/autograd/python_variable.h>
#include <torch/extension.h>

#include <cmath>
#include <limits>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

namespace py = pybind11;

namespace {

constexpr const char* kFileFormat = "lenet_cpp.LeNet5";
constexpr int64_t kFileVersion = 1;

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__qualname__"));
}

bool is_numpy_array(const py::handle& obj) {
  const auto type = py::type::handle_of(obj);
  return py::hasattr(type, "__module__") && py::str(type.attr("__module__")).cast<std::string>() == "numpy" &&
         py::str(type.attr("__name__")).cast<std::string>() == "ndarray";
}

// A CPU tensor (NumPy arrays are taken without a copy where torch.as_tensor can).
torch::Tensor as_tensor(const py::handle& obj, const char* name) {
  if (is_numpy_array(obj)) {
    const auto tensor = py::module_::import("torch").attr("as_tensor")(obj);
    return THPVariable_Unpack(tensor.ptr());
  }
  if (!THPVariable_Check(obj.ptr())) {
    throw py::type_error(std::string(name) + " must be a torch.Tensor or a numpy.ndarray, got " +
                         type_name(obj));
  }
  const auto tensor = THPVariable_Unpack(obj.ptr());
  if (!tensor.device().is_cpu()) {
    throw py::value_error(std::string(name) + " must be on the CPU (runs move their data to their " +
                          "device themselves), got a tensor on " + tensor.device().str());
  }
  return tensor;
}

// Images: uint8 or float32, [N,28,28] or [N,1,28,28], N >= 1, finite. Returns them normalised.
torch::Tensor checked_images(const py::handle& obj, const char* name) {
  const auto images = as_tensor(obj, name);
  const auto dtype = images.scalar_type();
  if (dtype != torch::kUInt8 && dtype != torch::kFloat32) {
    throw py::type_error(std::string(name) + " must have dtype torch.uint8 (raw pixels) or " +
                         "torch.float32 (normalised), got " + c10::toString(dtype));
  }
  const bool rank3 = images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28;
  const bool rank4 = images.dim() == 4 && images.size(1) == 1 && images.size(2) == 28 &&
                     images.size(3) == 28;
  if (!rank3 && !rank4) {
    throw py::value_error(std::string(name) + " must have shape [N, 28, 28] or [N, 1, 28, 28], got " +
                          shape_of(images));
  }
  if (images.size(0) == 0) {
    throw py::value_error(std::string(name) + " is empty (N = 0); expected at least one image");
  }
  py::gil_scoped_release no_gil;  // the scan and the normalisation read every pixel
  if (dtype == torch::kFloat32 && !torch::isfinite(images).all().item<bool>()) {
    throw py::value_error(std::string(name) + " contains NaN or infinite values; expected finite floats");
  }
  return lenet::normalize_images(images);
}

// Labels: integer dtype, [N], every value in 0..9. Returns them as int64.
torch::Tensor checked_labels(const py::handle& obj, const char* name, int64_t n) {
  const auto labels = as_tensor(obj, name);
  if (c10::isFloatingType(labels.scalar_type()) || c10::isComplexType(labels.scalar_type()) ||
      labels.scalar_type() == torch::kBool) {
    throw py::type_error(std::string(name) + " must have an integer dtype, got " +
                         c10::toString(labels.scalar_type()));
  }
  if (labels.dim() != 1 || labels.size(0) != n) {
    throw py::value_error(std::string(name) + " must have shape [" + std::to_string(n) +
                          "] to match the images, got " + shape_of(labels));
  }
  const auto as_long = labels.to(torch::kInt64).contiguous();
  const auto low = as_long.min().item<int64_t>();
  const auto high = as_long.max().item<int64_t>();
  if (low < 0 || high > 9) {
    throw py::value_error(std::string(name) + " must hold class labels in 0..9, found values in " +
                          std::to_string(low) + ".." + std::to_string(high));
  }
  return as_long;
}

lenet::Dataset checked_dataset(const py::handle& images, const char* images_name,
                               const py::handle& labels, const char* labels_name) {
  auto x = checked_images(images, images_name);
  auto y = checked_labels(labels, labels_name, x.size(0));
  return {std::move(x), std::move(y)};
}

torch::Device checked_device(const std::string& name) {
  std::optional<torch::Device> device;
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
  }
  if (!device || (!device->is_cpu() && !device->is_cuda())) {
    throw py::value_error("device must be 'cpu' or 'cuda' (optionally 'cuda:N'), got '" + name + "'");
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw py::value_error("device='" + name +
                            "' was asked for, but no CUDA GPU is available here; use device='cpu'");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device->has_index() && device->index() >= count) {
      throw py::value_error("device='" + name + "' does not exist; this machine has " +
                            std::to_string(count) + " CUDA device(s)");
    }
  }
  return *device;
}

void check_positive(const char* name, int64_t value, int64_t minimum) {
  if (value < minimum) {
    throw py::value_error(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " +
                          std::to_string(value));
  }
}

uint64_t checked_seed(const py::handle& seed) {
  const auto fail = [&] {
    return py::value_error("seed must be an integer in 0..2**64-1, got " +
                           py::repr(seed).cast<std::string>());
  };
  if (!py::isinstance<py::int_>(seed) || py::isinstance<py::bool_>(seed)) throw fail();
  if (seed < py::int_(0) || seed > py::int_(std::numeric_limits<uint64_t>::max())) throw fail();
  return seed.cast<uint64_t>();
}

// None -> the device's default: the fused kernels on the CPU, libtorch elsewhere.
lenet::Kernels checked_kernels(const std::optional<std::string>& kernels, const torch::Device& device);

template <typename T, typename Parse>
T checked_choice(Parse parse, const std::string& value) {
  try {
    return parse(value);
  } catch (const std::invalid_argument& error) {
    throw py::value_error(error.what());
  }
}

lenet::Kernels checked_kernels(const std::optional<std::string>& kernels, const torch::Device& device) {
  if (!kernels) return device.is_cpu() ? lenet::Kernels::Fused : lenet::Kernels::Libtorch;
  return checked_choice<lenet::Kernels>(lenet::parse_kernels, *kernels);
}

lenet::Kernels kernels_for(const lenet::LeNet5Impl& model, const std::optional<std::string>& kernels) {
  return checked_kernels(kernels, model.device());
}

// augment=False | True | {range name: number}: True takes the default ranges; a dict changes
// the named ones (lenet::augment_range_names()) and keeps the defaults of the others.
lenet::AugmentOptions checked_augment(const py::handle& augment) {
  lenet::AugmentOptions options;
  if (py::isinstance<py::bool_>(augment)) {
    options.enabled = augment.cast<bool>();
    return options;
  }
  if (!py::isinstance<py::dict>(augment)) {
    throw py::type_error("augment must be a bool or a dict of ranges, got " + type_name(augment));
  }
  options.enabled = true;
  for (const auto& [key, value] : augment.cast<py::dict>()) {
    const bool number = (py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)) &&
                        !py::isinstance<py::bool_>(value);
    if (!py::isinstance<py::str>(key) || !number) {
      throw py::type_error("augment ranges map names to numbers, got " +
                           py::repr(key).cast<std::string>() + ": " +
                           py::repr(value).cast<std::string>());
    }
    lenet::augment_range(options, key.cast<std::string>()) = value.cast<double>();
  }
  return options;
}

// A str or os.PathLike -> its path string.
std::string checked_path(const py::handle& path, const char* name) {
  if (!py::isinstance<py::str>(path) && !py::hasattr(path, "__fspath__")) {
    throw py::type_error(std::string(name) + " must be a str or os.PathLike, got " + type_name(path));
  }
  return py::module_::import("os").attr("fspath")(path).cast<std::string>();
}

lenet::LeNet5Options model_options(const std::string& activation, const std::string& pooling,
                                   const std::string& architecture, const std::string& output) {
  lenet::LeNet5Options options;
  options.activation = checked_choice<lenet::Activation>(lenet::parse_activation, activation);
  options.pooling = checked_choice<lenet::Pooling>(lenet::parse_pooling, pooling);
  options.architecture = checked_choice<lenet::Architecture>(lenet::parse_architecture, architecture);
  options.output = checked_choice<lenet::Output>(lenet::parse_output, output);
  return options;
}

lenet::LeNet5 new_model(const lenet::LeNet5Options& options, uint64_t seed) {
  return lenet::LeNet5(options, at::make_generator<at::CPUGeneratorImpl>(seed));
}

py::dict state_dict(const lenet::LeNet5Impl& model) {
  py::dict out;
  for (const auto& item : model.named_parameters()) {
    out[py::str(item.key())] = item.value().detach();
  }
  return out;
}

void load_state_dict(lenet::LeNet5Impl& model, const py::dict& state) {
  auto params = model.named_parameters();
  std::vector<std::string> unexpected;
  for (const auto& item : state) {
    const auto key = py::str(item.first).cast<std::string>();
    if (!params.contains(key)) unexpected.push_back(key);
  }
  std::vector<std::string> missing;
  for (const auto& item : params) {
    if (!state.contains(item.key())) missing.push_back(item.key());
  }
  if (!missing.empty() || !unexpected.empty()) {
    std::string message = "state_dict does not match LeNet5:";
    for (const auto& key : missing) message += " missing '" + key + "';";
    for (const auto& key : unexpected) message += " unexpected '" + key + "';";
    throw py::value_error(message);
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) {
    const auto key = item.key();
    const auto value = as_tensor(state[key.c_str()], ("state_dict['" + key + "']").c_str());
    if (value.sizes() != item.value().sizes() || !c10::isFloatingType(value.scalar_type())) {
      throw py::value_error("state_dict['" + key + "'] must be a floating tensor of shape " +
                            shape_of(item.value()) + ", got " + c10::toString(value.scalar_type()) +
                            " " + shape_of(value));
    }
    item.value().copy_(value);
  }
}

// Model files are plain torch.save dicts, so torch.load(path, weights_only=True) reads them
// anywhere. torch.save serialises them (GIL held); the bytes are written atomically by the
// one file-writing path of the C++ core (atomic_file.h).
void save_model(const lenet::LeNet5Impl& model, const std::string& path) {
  py::dict payload;
  payload["format"] = kFileFormat;
  payload["version"] = kFileVersion;
  payload["activation"] = lenet::to_string(model.options().activation);
  payload["pooling"] = lenet::to_string(model.options().pooling);
  payload["architecture"] = lenet::to_string(model.options().architecture);
  payload["output"] = lenet::to_string(model.options().output);
  py::dict tensors;
  for (const auto& item : model.named_parameters()) {
    tensors[py::str(item.key())] = item.value().detach().cpu();
  }
  payload["state_dict"] = tensors;
  auto buffer = py::module_::import("io").attr("BytesIO")();
  py::module_::import("torch").attr("save")(payload, buffer);
  const auto bytes = buffer.attr("getvalue")().cast<std::string>();
  lenet::write_atomically(path, std::vector<char>(bytes.begin(), bytes.end()));
}

lenet::LeNet5 load_model(const std::string& path) {
  const auto not_ours = [&path](const std::string& why) {
    return py::value_error("'" + path + "' is not a LeNet5 file written by LeNet5.save (" + why + ")");
  };
  if (!std::filesystem::is_regular_file(path)) throw py::value_error("model file '" + path + "' does not exist");
  py::object loaded;
  try {
    loaded = py::module_::import("torch").attr("load")(path, py::arg("map_location") = "cpu",
                                                       py::arg("weights_only") = true);
  } catch (const py::error_already_set& error) {
    throw not_ours(std::string("torch.load failed: ") + error.what());
  }
  if (!py::isinstance<py::dict>(loaded)) throw not_ours("top level is not a dict");
  const auto payload = loaded.cast<py::dict>();
  const auto text = [&](const char* key) -> std::string {
    if (!payload.contains(key) || !py::isinstance<py::str>(payload[key])) {
      throw not_ours(std::string("no string '") + key + "'");
    }
    return payload[key].cast<std::string>();
  };
  if (text("format") != kFileFormat) throw not_ours("format is '" + text("format") + "'");
  if (!payload.contains("state_dict") || !py::isinstance<py::dict>(payload["state_dict"])) {
    throw not_ours("no 'state_dict' dict");
  }
  // files written before architecture/output existed hold today's network
  const auto text_or = [&](const char* key, const char* absent) {
    return payload.contains(key) ? text(key) : std::string(absent);
  };
  auto model = new_model(model_options(text("activation"), text("pooling"),
                                       text_or("architecture", "lenet5"),
                                       text_or("output", "softmax")),
                         0);
  load_state_dict(*model, payload["state_dict"].cast<py::dict>());
  return model;
}

py::list to_list(const std::vector<double>& values) { return py::cast(values); }

lenet::LeNet5 handle_of(lenet::LeNet5Impl& model) {
  return lenet::LeNet5(std::static_pointer_cast<lenet::LeNet5Impl>(model.shared_from_this()));
}

torch::Tensor logits(lenet::LeNet5Impl& model, const py::object& images,
                     const std::optional<std::string>& kernels) {
  const auto x = checked_images(images, "images");
  const auto choice = kernels_for(model, kernels);
  auto handle = handle_of(model);
  py::gil_scoped_release no_gil;
  return lenet::logits(handle, x, choice);
}

// TrainingDiverged (with its step, epoch, learning_rate and loss as attributes) and OSError.
void translate_exceptions(std::exception_ptr error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const lenet::TrainingDiverged& diverged) {
    const auto type = py::module_::import("lenet_cpp._C").attr("TrainingDiverged");
    auto exception = type(diverged.what());
    exception.attr("step") = diverged.step;
    exception.attr("epoch") = diverged.epoch;
    exception.attr("learning_rate") = diverged.learning_rate;
    exception.attr("loss") = diverged.loss;
    PyErr_SetObject(type.ptr(), exception.ptr());
  } catch (const lenet::FileError& file_error) {
    const auto exception = py::reinterpret_steal<py::object>(PyObject_CallFunction(
        PyExc_OSError, "iss", file_error.error_number, file_error.what(), file_error.path.c_str()));
    PyErr_SetObject(PyExc_OSError, exception.ptr());
  }
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "LeNet-5 trained in C++ (libtorch) with the GIL released.";
  m.attr("MNIST_MEAN") = lenet::kMnistMean;
  m.attr("MNIST_STD") = lenet::kMnistStd;
  m.attr("MAX_THREADS") = lenet::max_threads();
  m.attr("TrainingDiverged") = py::exception<lenet::TrainingDiverged>(m, "TrainingDiverged",
                                                                      PyExc_FloatingPointError);
  m.attr("TrainingDiverged").attr("__doc__") =
      "train() met a non-finite loss; attributes step, epoch, learning_rate and loss say where.";
  py::register_exception_translator(&translate_exceptions);

  m.def(
      "normalize",
      [](const py::object& images) { return checked_images(images, "images"); }, py::arg("images"),
      "uint8 pixels -> float32 [N,1,28,28], (x/255 - MNIST_MEAN) / MNIST_STD; float32 passes through.");

  m.def(
      "tune_allocator",
      [](int64_t mmap_threshold, int64_t trim_threshold) {
        check_positive("mmap_threshold", mmap_threshold, 0);
        check_positive("trim_threshold", trim_threshold, 0);
        return lenet::tune_allocator(mmap_threshold, trim_threshold);
      },
      py::arg("mmap_threshold") = lenet::kTunedMmapThreshold,
      py::arg("trim_threshold") = lenet::kTunedTrimThreshold,
      "Raise glibc malloc's mmap/trim thresholds for the whole process so that freed large blocks "
      "are reused instead of returned to the OS and page-faulted in again (up to 1.35x for "
      "PyTorch loops). Call once at start-up; returns False where it is not supported (non-glibc).");

  m.def(
      "distort",
      [](const py::object& images, const py::object& seed, const py::object& augment) {
        const auto x = checked_images(images, "images");
        const auto options = checked_augment(augment);
        lenet::validate(options);
        auto generator = at::make_generator<at::CPUGeneratorImpl>(checked_seed(seed));
        py::gil_scoped_release no_gil;
        if (!options.enabled) return x.clone();
        return lenet::distort(x, options, generator, lenet::normalized_background());
      },
      py::arg("images"), py::kw_only(), py::arg("seed") = 0, py::arg("augment") = true,
      "The random affine distortions train(augment=...) applies, drawn from a generator seeded "
      "with `seed`: normalised float32 [N,1,28,28] (uint8 pixels are normalised first).");

  py::class_<lenet::Progress>(m, "Progress", "Where a training run is; passed to the progress callback.")
      .def_readonly("step", &lenet::Progress::step)
      .def_readonly("total_steps", &lenet::Progress::total_steps)
      .def_readonly("epoch", &lenet::Progress::epoch)
      .def_readonly("epochs", &lenet::Progress::epochs)
      .def_readonly("loss", &lenet::Progress::loss)
      .def("__repr__", [](const lenet::Progress& p) {
        return "Progress(step=" + std::to_string(p.step) + "/" + std::to_string(p.total_steps) +
               ", epoch=" + std::to_string(p.epoch) + "/" + std::to_string(p.epochs) +
               ", loss=" + std::to_string(p.loss) + ")";
      });

  py::class_<lenet::LeNet5Impl, std::shared_ptr<lenet::LeNet5Impl>>(m, "LeNet5",
                                                                    "LeNet-5 implemented in libtorch.")
      .def(py::init([](const std::string& activation, const std::string& pooling,
                       const py::object& seed, const std::string& architecture,
                       const std::string& output) {
             return new_model(model_options(activation, pooling, architecture, output),
                              checked_seed(seed))
                 .ptr();
           }),
           py::arg("activation") = "relu", py::arg("pooling") = "max", py::arg("seed") = 0,
           py::kw_only(), py::arg("architecture") = "lenet5", py::arg("output") = "softmax")
      .def_property_readonly("activation",
                             [](const lenet::LeNet5Impl& m) { return lenet::to_string(m.options().activation); })
      .def_property_readonly("pooling",
                             [](const lenet::LeNet5Impl& m) { return lenet::to_string(m.options().pooling); })
      .def_property_readonly("architecture",
                             [](const lenet::LeNet5Impl& m) { return lenet::to_string(m.options().architecture); })
      .def_property_readonly("output",
                             [](const lenet::LeNet5Impl& m) { return lenet::to_string(m.options().output); })
      .def_property_readonly(
          "parameter_counts",
          [](const lenet::LeNet5Impl& m) {
            py::dict out;
            for (const auto& [layer, count] : m.parameter_counts()) out[py::str(layer)] = count;
            return out;
          },
          "Trainable parameters per layer, in layer order (lenet5-1998: C3 without its "
          "non-connected weights).")
      .def_property_readonly(
          "rbf_codes",
          [](const lenet::LeNet5Impl& m) -> py::object {
            const auto* net = m.lenet1998();
            if (net == nullptr || !net->codes.defined()) return py::none();
            return py::cast(net->codes.detach().cpu().clone());
          },
          "The fixed +-1 codes [10,84] of the RBF output (None without one): bit 0 of the "
          "32-bit draws of an mt19937 seeded 1998, in row order.")
      .def_property_readonly("device",
                             [](const lenet::LeNet5Impl& m) { return m.device().str(); })
      .def(
          "to",
          [](lenet::LeNet5Impl& model, const std::string& device) {
            model.to(checked_device(device));
            return model.shared_from_this();
          },
          py::arg("device"), "Move the parameters to `device` ('cpu' or 'cuda'); returns self.")
      .def("forward", &logits, py::arg("images"), py::kw_only(), py::arg("kernels") = py::none(),
           "Logits [N,10] (no autograd graph).")
      .def("__call__", &logits, py::arg("images"), py::kw_only(), py::arg("kernels") = py::none())
      .def(
          "predict",
          [](lenet::LeNet5Impl& model, const py::object& images, int64_t batch_size,
             const std::optional<std::string>& kernels) {
            const auto x = checked_images(images, "images");
            const auto choice = kernels_for(model, kernels);
            auto handle = handle_of(model);
            py::gil_scoped_release no_gil;
            return lenet::predict(handle, x, batch_size, choice);
          },
          py::arg("images"), py::arg("batch_size") = 1000, py::kw_only(),
          py::arg("kernels") = py::none(), "Predicted class per image, int64 [N].")
      .def(
          "evaluate",
          [](lenet::LeNet5Impl& model, const py::object& images, const py::object& targets,
             int64_t batch_size, const std::optional<std::string>& kernels) {
            const auto data = checked_dataset(images, "images", targets, "targets");
            const auto choice = kernels_for(model, kernels);
            auto handle = handle_of(model);
            lenet::Evaluation evaluation;
            {
              py::gil_scoped_release no_gil;
              evaluation = lenet::evaluate(handle, data, batch_size, choice);
            }
            py::dict out;
            out["loss"] = evaluation.loss;
            out["accuracy"] = evaluation.accuracy;
            out["confusion"] = evaluation.confusion;
            out["predictions"] = evaluation.predictions;
            return out;
          },
          py::arg("images"), py::arg("targets"), py::arg("batch_size") = 1000, py::kw_only(),
          py::arg("kernels") = py::none(),
          "Mean loss, accuracy, confusion matrix [10,10] (rows: true label) and predictions.")
      .def(
          "gradients",
          [](lenet::LeNet5Impl& model, const py::object& images, const py::object& targets,
             const std::optional<std::string>& kernels) {
            const auto data = checked_dataset(images, "images", targets, "targets");
            const auto choice = kernels_for(model, kernels);
            auto handle = handle_of(model);
            std::vector<std::pair<std::string, torch::Tensor>> grads;
            {
              py::gil_scoped_release no_gil;
              grads = lenet::gradients(handle, data, choice);
            }
            py::dict out;
            for (const auto& [name, grad] : grads) out[py::str(name)] = grad;
            return out;
          },
          py::arg("images"), py::arg("targets"), py::kw_only(), py::arg("kernels") = py::none(),
          "Gradient of the mean loss (cross-entropy; lenet5-1998 with rbf: the paper's) for every parameter, by name (for gradient checks).")
      .def("state_dict", &state_dict, "Parameters by name, as detached tensors (shared storage).")
      .def("load_state_dict", &load_state_dict, py::arg("state_dict"),
           "Copy parameters in; keys and shapes must match exactly.")
      .def(
          "save",
          [](const lenet::LeNet5Impl& model, const py::object& path) {
            save_model(model, checked_path(path, "path"));
          },
          py::arg("path"),
           "Write a torch.save-compatible file (a dict with 'activation', 'pooling', "
           "'architecture', 'output', 'state_dict').")
      .def_static(
          "load", [](const std::string& path) { return load_model(path).ptr(); }, py::arg("path"),
          "Read a file written by save(); the model comes back on the CPU.")
      .def("__repr__", [](const lenet::LeNet5Impl& m) {
        const auto& options = m.options();
        const auto architecture = options.architecture == lenet::Architecture::LeNet5
                                      ? std::string()
                                      : "', architecture='" + lenet::to_string(options.architecture) +
                                            "', output='" + lenet::to_string(options.output);
        return "LeNet5(activation='" + lenet::to_string(options.activation) + "', pooling='" +
               lenet::to_string(options.pooling) + architecture + "', device='" +
               m.device().str() + "')";
      });

  py::class_<lenet::TrainResult>(m, "TrainResult", "What train() returns.")
      .def_property_readonly("model", [](const lenet::TrainResult& r) { return r.model.ptr(); })
      .def_property_readonly("step_losses",
                             [](const lenet::TrainResult& r) {
                               return torch::tensor(r.step_losses, torch::kFloat32);
                             })
      .def_property_readonly("step_learning_rates",
                             [](const lenet::TrainResult& r) {
                               return torch::tensor(r.step_learning_rates, torch::kFloat64);
                             })
      .def_property_readonly("train_loss", [](const lenet::TrainResult& r) { return to_list(r.train_loss); })
      .def_property_readonly("train_accuracy",
                             [](const lenet::TrainResult& r) { return to_list(r.train_accuracy); })
      .def_property_readonly("test_loss", [](const lenet::TrainResult& r) { return to_list(r.test_loss); })
      .def_property_readonly("test_accuracy",
                             [](const lenet::TrainResult& r) { return to_list(r.test_accuracy); })
      .def_property_readonly("test_predictions",
                             [](const lenet::TrainResult& r) -> py::object {
                               if (!r.test_predictions.defined()) return py::none();
                               return py::cast(r.test_predictions);
                             })
      .def_readonly("diverged_at_step", &lenet::TrainResult::diverged_at_step,
                    "First step whose loss was not finite (0: none); see on_divergence.")
      .def_readonly("resumed_from_epoch", &lenet::TrainResult::resumed_from_epoch,
                    "Epochs restored from the checkpoint (0: the run started fresh).")
      .def_readonly("wall_time_s", &lenet::TrainResult::wall_time_s)
      .def_readonly("train_time_s", &lenet::TrainResult::train_time_s)
      .def_readonly("images_per_second", &lenet::TrainResult::images_per_second);

  m.def(
      "train",
      [](const py::object& data, const py::object& targets, int64_t epochs, double learning_rate,
         int64_t batch_size, double momentum, double weight_decay, const std::string& activation,
         const std::string& pooling, const py::object& seed, int threads, const std::string& device,
         const std::optional<std::string>& kernels, const py::object& test_data,
         const py::object& test_targets, const py::object& progress, int64_t progress_every,
         const py::object& checkpoint, const std::string& on_divergence,
         const std::string& architecture, const std::string& output,
         const std::string& schedule, const std::vector<int64_t>& milestones, double gamma,
         const std::optional<double>& warmup, const std::optional<double>& final_learning_rate,
         const py::object& augment) {
        if (!progress.is_none() && !PyCallable_Check(progress.ptr())) {
          throw py::type_error("progress must be a callable or None, got " + type_name(progress));
        }
        if (test_data.is_none() != test_targets.is_none()) {
          throw py::value_error("test_data and test_targets must be given together (one of them is None)");
        }
        if (on_divergence != "raise" && on_divergence != "continue") {
          throw py::value_error("on_divergence must be 'raise' or 'continue', got '" + on_divergence + "'");
        }
        lenet::TrainOptions options;
        options.epochs = epochs;
        options.batch_size = batch_size;
        options.sgd = {learning_rate, momentum, weight_decay};
        options.model = model_options(activation, pooling, architecture, output);
        options.seed = checked_seed(seed);
        options.threads = threads;
        options.device = checked_device(device);
        options.kernels = checked_kernels(kernels, options.device);
        options.progress_every = progress_every;
        options.checkpoint = checkpoint.is_none() ? "" : checked_path(checkpoint, "checkpoint");
        options.stop_on_divergence = on_divergence == "raise";
        options.schedule = {checked_choice<lenet::Schedule>(lenet::parse_schedule, schedule),
                            milestones, gamma, warmup, final_learning_rate};
        options.augment = checked_augment(augment);
        lenet::validate(options);

        const auto train_set = checked_dataset(data, "data", targets, "targets");
        std::optional<lenet::Dataset> test_set;
        if (!test_data.is_none()) {
          test_set = checked_dataset(test_data, "test_data", test_targets, "test_targets");
        }
        // Runs on the training thread with the GIL released: it holds no Python reference
        // of its own (the callback is borrowed from this frame) and takes the GIL to use it.
        const lenet::ProgressCallback on_progress = [&progress](const lenet::Progress& p) {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none()) progress(p);
        };
        py::gil_scoped_release no_gil;
        return lenet::train(train_set, test_set, options, on_progress);
      },
      py::arg("data"), py::arg("targets"), py::arg("epochs"), py::arg("learning_rate"), py::kw_only(),
      py::arg("batch_size") = 64, py::arg("momentum") = 0.0, py::arg("weight_decay") = 0.0,
      py::arg("activation") = "relu", py::arg("pooling") = "max", py::arg("seed") = 0,
      py::arg("threads") = 0, py::arg("device") = "cpu", py::arg("kernels") = py::none(),
      py::arg("test_data") = py::none(), py::arg("test_targets") = py::none(),
      py::arg("progress") = py::none(), py::arg("progress_every") = 100,
      py::arg("checkpoint") = py::none(), py::arg("on_divergence") = "raise",
      py::arg("architecture") = "lenet5", py::arg("output") = "softmax",
      py::arg("schedule") = "constant", py::arg("milestones") = std::vector<int64_t>{},
      py::arg("gamma") = 0.1, py::arg("warmup") = py::none(),
      py::arg("final_learning_rate") = py::none(), py::arg("augment") = false,
      R"doc(Train a fresh LeNet-5 with minibatch SGD (shuffled every epoch) and return a TrainResult.

The loop runs in C++ with the GIL released. Every `progress_every` steps the GIL is taken back to
check for signals (Ctrl-C raises KeyboardInterrupt) and to call `progress(Progress)`; an exception
raised by the callback stops training and propagates. `threads` > 0 sets the intra-op threads of
the calling thread for the run and restores them afterwards (0 keeps the current setting).
All randomness (initialisation, shuffling) comes from `seed` alone.

`kernels`: "fused" (the default on the CPU: hand-written kernels, the same bits on every CPU) or
"libtorch" (autograd ops; the reference, and the only choice on CUDA). `checkpoint`: a file path;
the state is saved there atomically after every epoch, and a later call with the same options and
data resumes from it, bit-identical to an uninterrupted run (another run's file is refused).
`on_divergence`: "raise" stops at the first non-finite step loss with TrainingDiverged (a
FloatingPointError); "continue" trains on and reports the step in `diverged_at_step`.
`architecture`: "lenet5" (today's network) or "lenet5-1998" (the paper's: trainable subsampling,
partial C3, scaled tanh; `activation` and `pooling` do not apply to it); `output`: "softmax" or,
for lenet5-1998, "rbf" (the paper's Euclidean RBF units and loss).
`schedule`: the learning rate of each step, from `learning_rate` as the base: "constant";
"step" (per pass: times `gamma` after each pass number in `milestones`); "cosine" (per batch: a
linear warm-up over the fraction `warmup` of all steps, then a cosine down to
`final_learning_rate`, default 0); "onecycle" (per batch, torch's OneCycleLR: up from
learning_rate/25 over `warmup` (default 0.3), then down to `final_learning_rate`, default
learning_rate/25/1e4); "lecun1998" (per pass, the paper's shape: x1 for passes 1-2, x0.4 for 3-5,
x0.2 for 6-8, x0.1 for 9-12, x0.02 after). Parameters a schedule does not use are ignored. The
rates used are in `step_learning_rates`.
`augment`: False, True (default ranges) or a dict of ranges {translate (pixels), scale, squeeze,
shear, rotate (degrees)} overriding the defaults: a random affine distortion of every training
image in every pass, drawn from the run's generator (bilinear resampling; labels unchanged).)doc");
}
