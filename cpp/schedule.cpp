#include "schedule.h"

#include "fixed_trig.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace lenet {
namespace {

constexpr double kOneCycleDivFactor = 25.0;        // torch's OneCycleLR div_factor
constexpr double kOneCycleFinalDivFactor = 1e4;    // and final_div_factor
constexpr double kOneCycleWarmup = 0.3;            // and pct_start

// The paper's passes and factors: {last pass, factor} (0.0005, 0.0002, 0.0001, 5e-5, 1e-5).
struct Stage {
  int64_t last_pass;
  double factor;
};
constexpr Stage kLeCun1998[] = {{2, 1.0}, {5, 0.4}, {8, 0.2}, {12, 0.1}};
constexpr double kLeCun1998Final = 0.02;

// end + (start - end) * (1 + cos(pi t)) / 2 for t in [0, 1].
double anneal_cos(double start, double end, double t) {
  return end + (start - end) * 0.5 * (1.0 + fixed_trig::cos_pi(t));
}

double step_rate(const ScheduleOptions& options, double base, int64_t pass) {
  double rate = base;
  for (const auto milestone : options.milestones) {
    if (milestone < pass) rate *= options.gamma;
  }
  return rate;
}

double lecun1998_rate(double base, int64_t pass) {
  for (const auto& stage : kLeCun1998) {
    if (pass <= stage.last_pass) return base * stage.factor;
  }
  return base * kLeCun1998Final;
}

// Linear warm-up over the first floor(warmup * total) steps, then a cosine to final.
double cosine_rate(const ScheduleOptions& options, double base, const StepPosition& at) {
  const auto warm = static_cast<int64_t>(options.warmup.value_or(0.0) *
                                         static_cast<double>(at.total_steps));
  if (at.step < warm) {
    return base * static_cast<double>(at.step + 1) / static_cast<double>(warm);
  }
  const double t = static_cast<double>(at.step - warm) / static_cast<double>(at.total_steps - warm);
  return anneal_cos(base, options.final_learning_rate.value_or(0.0), t);
}

// torch.optim.lr_scheduler.OneCycleLR (anneal_strategy="cos", two phases), step by step.
double onecycle_rate(const ScheduleOptions& options, double base, const StepPosition& at) {
  const double initial = base / kOneCycleDivFactor;
  const double final_rate = options.final_learning_rate.value_or(initial / kOneCycleFinalDivFactor);
  const double peak_step =
      options.warmup.value_or(kOneCycleWarmup) * static_cast<double>(at.total_steps) - 1.0;
  const double last_step = static_cast<double>(at.total_steps - 1);
  const double step = static_cast<double>(at.step);
  if (step <= peak_step) {
    return anneal_cos(initial, base, peak_step > 0.0 ? step / peak_step : 1.0);
  }
  const double span = last_step - peak_step;
  return anneal_cos(base, final_rate, span > 0.0 ? (step - peak_step) / span : 1.0);
}

}  // namespace

Schedule parse_schedule(const std::string& name) {
  if (name == "constant") return Schedule::Constant;
  if (name == "step") return Schedule::Step;
  if (name == "cosine") return Schedule::Cosine;
  if (name == "onecycle") return Schedule::OneCycle;
  if (name == "lecun1998") return Schedule::LeCun1998;
  throw std::invalid_argument(
      "schedule must be 'constant', 'step', 'cosine', 'onecycle' or 'lecun1998', got '" + name +
      "'");
}

std::string to_string(Schedule schedule) {
  switch (schedule) {
    case Schedule::Constant: return "constant";
    case Schedule::Step: return "step";
    case Schedule::Cosine: return "cosine";
    case Schedule::OneCycle: return "onecycle";
    case Schedule::LeCun1998: return "lecun1998";
  }
  return "?";
}

void validate(const ScheduleOptions& options) {
  int64_t previous = 0;
  for (const auto milestone : options.milestones) {
    TORCH_CHECK_VALUE(milestone > previous,
                      "milestones must be increasing pass numbers >= 1, got ", milestone,
                      " after ", previous);
    previous = milestone;
  }
  TORCH_CHECK_VALUE(std::isfinite(options.gamma) && options.gamma > 0.0,
                    "gamma must be a finite number > 0, got ", options.gamma);
  if (options.warmup) {
    TORCH_CHECK_VALUE(*options.warmup >= 0.0 && *options.warmup < 1.0,
                      "warmup must be a fraction of the run's steps in [0, 1), got ",
                      *options.warmup);
  }
  if (options.final_learning_rate) {
    TORCH_CHECK_VALUE(std::isfinite(*options.final_learning_rate) &&
                          *options.final_learning_rate >= 0.0,
                      "final_learning_rate must be a finite number >= 0, got ",
                      *options.final_learning_rate);
  }
}

std::string describe(const ScheduleOptions& options) {
  std::ostringstream out;
  out.precision(17);
  out << "schedule=" << to_string(options.kind);
  if (options.kind == Schedule::Step) {
    out << " milestones=";
    for (size_t i = 0; i < options.milestones.size(); ++i) {
      out << (i ? "," : "") << options.milestones[i];
    }
    out << " gamma=" << options.gamma;
  }
  if (options.kind == Schedule::Cosine || options.kind == Schedule::OneCycle) {
    const auto optional = [&out](const char* name, const std::optional<double>& value) {
      out << " " << name << "=";
      if (value) {
        out << *value;
      } else {
        out << "default";
      }
    };
    optional("warmup", options.warmup);
    optional("final_learning_rate", options.final_learning_rate);
  }
  return out.str();
}

double learning_rate_at(const ScheduleOptions& options, double base, const StepPosition& position) {
  switch (options.kind) {
    case Schedule::Constant: return base;
    case Schedule::Step: return step_rate(options, base, position.pass);
    case Schedule::Cosine: return cosine_rate(options, base, position);
    case Schedule::OneCycle: return onecycle_rate(options, base, position);
    case Schedule::LeCun1998: return lecun1998_rate(base, position.pass);
  }
  return base;
}

}  // namespace lenet
