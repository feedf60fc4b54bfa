// End-of-epoch checkpoints of a training run, so that a killed run resumes where it stopped and
// ends with the same bits as one that was never interrupted. A checkpoint is a torch.save-
// compatible dict (torch.load reads it), written atomically (atomic_file.h).
#pragma once

#include "trainer.h"

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lenet {

struct Checkpoint {
  std::string fingerprint;  // what the run was (see fingerprint()); must match to resume
  int64_t epoch = 0;        // epochs completed
  torch::Tensor generator;  // the run generator's state after those epochs
  std::map<std::string, torch::Tensor> optimizer;  // parameters and momentum buffers
  std::vector<float> step_losses;
  std::vector<double> train_loss, train_accuracy, test_loss, test_accuracy;
  double train_time_s = 0.0;
  int64_t diverged_at_step = 0;
};

// Everything a run's results depend on: the code's version, the options that change results
// (not threads or progress) and a digest of the data.
std::string fingerprint(const TrainOptions& options, const Dataset& train,
                        const std::optional<Dataset>& test);

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// c10::ValueError when `path` is not a checkpoint written by save_checkpoint.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace lenet
