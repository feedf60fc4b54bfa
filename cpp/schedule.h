// Learning-rate schedules: the learning rate of every optimiser step as a pure function of the
// step's position in the run, so a resumed run continues its schedule exactly where it stopped.
// Computed in double with +, -, *, / and fixed_trig.h only: the same bits on every CPU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lenet {

//   constant   the base learning rate throughout.
//   step       per pass: base * gamma^k, k = how many milestones (pass numbers) lie before the
//              pass (torch's MultiStepLR with 0-based epochs: milestones {3} drops from pass 4).
//   cosine     per batch: a linear warm-up to base over the first warmup * total steps, then a
//              cosine from base down to final_learning_rate (default 0) over the rest.
//   onecycle   per batch, torch's OneCycleLR (cosine phases): from base/25 up to base over the
//              first warmup * total steps (default 0.3), then down to final_learning_rate
//              (default base/25/1e4).
//   lecun1998  per pass: the shape of LeCun et al. (1998)'s global step, relative to base:
//              passes 1-2 x1, 3-5 x0.4, 6-8 x0.2, 9-12 x0.1, then x0.02.
enum class Schedule { Constant, Step, Cosine, OneCycle, LeCun1998 };

// parse_schedule throws std::invalid_argument naming the accepted values.
Schedule parse_schedule(const std::string& name);
std::string to_string(Schedule schedule);

struct ScheduleOptions {
  Schedule kind = Schedule::Constant;
  std::vector<int64_t> milestones;  // step: increasing pass numbers >= 1
  double gamma = 0.1;               // step: factor per milestone, > 0
  std::optional<double> warmup;     // cosine, onecycle: fraction of all steps in [0, 1)
  std::optional<double> final_learning_rate;  // cosine, onecycle: >= 0
};

// Throws c10::ValueError naming the first bad field.
void validate(const ScheduleOptions& options);

// Text of the options that change results, for checkpoint fingerprints.
std::string describe(const ScheduleOptions& options);

// Where a step lies in the run: its 0-based index among total_steps, and its 1-based pass.
struct StepPosition {
  int64_t step;
  int64_t total_steps;
  int64_t pass;
};

// The learning rate of the step at `position` for a run whose base rate is `base`.
double learning_rate_at(const ScheduleOptions& options, double base, const StepPosition& position);

}  // namespace lenet
