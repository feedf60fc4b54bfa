#include "shard_pool.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <utility>


namespace lenet::fused {
namespace {

constexpr uint64_t kIndexBits = 16;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr int64_t kMaxShards = static_cast<int64_t>(kIndexMask);

uint64_t generation_of(uint64_t word) { return word >> 32; }
int64_t count_of(uint64_t word) { return static_cast<int64_t>((word >> kIndexBits) & kIndexMask); }
int64_t index_of(uint64_t word) { return static_cast<int64_t>(word & kIndexMask); }

}  // namespace

ShardPool::ShardPool(int64_t workers) : workers_(std::max<int64_t>(1, workers)) {
  if (workers_ == 1) return;
  threads_.reserve(static_cast<size_t>(workers_));
  for (int64_t worker = 0; worker < workers_; ++worker) {
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
  for (int64_t done = done_.load(std::memory_order_acquire); done < shards;
       done = done_.load(std::memory_order_acquire)) {
    done_.wait(done, std::memory_order_acquire);
  }
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ShardPool::serve(int64_t worker) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t word = claim_.load(std::memory_order_acquire);
    while (generation_of(word) == seen) {
      claim_.wait(word, std::memory_order_acquire);
      word = claim_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_of(word);
    // A successful claim is of the current step: the caller waits for it before the next one.
    while (generation_of(word) == seen && index_of(word) < count_of(word)) {
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
}

}  // namespace lenet::fused
