#include "shard_pool.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lenet::fused {
namespace {

constexpr uint64_t kIndexBits = 16;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr int64_t kMaxShards = static_cast<int64_t>(kIndexMask);

uint64_t generation_of(uint64_t word) { return word >> 32; }
int64_t count_of(uint64_t word) { return static_cast<int64_t>((word >> kIndexBits) & kIndexMask); }
int64_t index_of(uint64_t word) { return static_cast<int64_t>(word & kIndexMask); }

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Returns the first value of `value` for which ready(value) holds: spins for up to
// ShardPool::kSpin, then sleeps on the atomic (woken by notify_all).
template <typename T, typename Ready>
T await(const std::atomic<T>& value, const Ready& ready) {
  const auto deadline = std::chrono::steady_clock::now() + ShardPool::kSpin;
  for (int spin = 1;; ++spin) {
    const T seen = value.load(std::memory_order_acquire);
    if (ready(seen)) return seen;
    cpu_relax();
    if (spin % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
  }
  for (;;) {
    const T seen = value.load(std::memory_order_acquire);
    if (ready(seen)) return seen;
    value.wait(seen, std::memory_order_acquire);
  }
}

}  // namespace

ShardPool::ShardPool(int64_t workers) : workers_(std::max<int64_t>(1, workers)) {
  threads_.reserve(static_cast<size_t>(workers_ - 1));
  for (int64_t worker = 1; worker < workers_; ++worker) {
    threads_.emplace_back([this, worker] { serve(worker); });
  }
}

ShardPool::~ShardPool() {
  stop_.store(true, std::memory_order_release);
  claim_.fetch_add(uint64_t{1} << 32, std::memory_order_acq_rel);  // wake everyone up
  claim_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void ShardPool::run(int64_t shards, const Work& work) {
  TORCH_CHECK(shards <= kMaxShards, "too many shards in one step: ", shards);
  if (threads_.empty()) {
    for (int64_t shard = 0; shard < shards; ++shard) work(shard, 0);
    return;
  }
  work_.store(&work, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  ++generation_;
  claim_.store((generation_ << 32) | (static_cast<uint64_t>(shards) << kIndexBits),
               std::memory_order_release);
  claim_.notify_all();
  claim_shards(generation_, 0);
  await(done_, [shards](int64_t done) { return done >= shards; });
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ShardPool::serve(int64_t worker) {
  uint64_t seen = 0;
  for (;;) {
    const uint64_t word =
        await(claim_, [seen](uint64_t word) { return generation_of(word) != seen; });
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_of(word);
    claim_shards(seen, worker);
  }
}

void ShardPool::claim_shards(uint64_t generation, int64_t worker) {
  // A successful claim is of the current step: the caller waits for it before the next one.
  uint64_t word = claim_.load(std::memory_order_acquire);
  while (generation_of(word) == generation && index_of(word) < count_of(word)) {
    if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      continue;
    }
    try {
      (*work_.load(std::memory_order_relaxed))(index_of(word), worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
    done_.notify_all();
    scheduling_point();
    word = claim_.load(std::memory_order_acquire);
  }
}

}  // namespace lenet::fused
