// Worker threads that share the shards of one training step.
//
// Each shard is claimed from a shared counter, so whoever runs takes the next shard: a worker
// that the OS has not scheduled yet (other processes on a busy machine) delays nothing, unlike
// an OpenMP region whose closing barrier waits for every thread of the team. The caller
// publishes the step and sleeps until every shard is done; the workers sleep between steps.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lenet::fused {

// Called between the stages of a shard: lets a thread that woke up meanwhile (a Python thread,
// on a machine whose cores are all busy) run now rather than at the end of the time slice.
inline void scheduling_point() { std::this_thread::yield(); }

class ShardPool {
 public:
  // work(shard, worker): worker in [0, workers) tells which per-thread buffers to use.
  using Work = std::function<void(int64_t shard, int64_t worker)>;

  // workers <= 1 runs every shard on the calling thread (no threads are started).
  explicit ShardPool(int64_t workers);
  ~ShardPool();
  ShardPool(const ShardPool&) = delete;
  ShardPool& operator=(const ShardPool&) = delete;

  int64_t workers() const { return workers_; }

  // Runs work for every shard in [0, shards) and returns when all are done; rethrows the first
  // exception a shard threw.
  void run(int64_t shards, const Work& work);

 private:
  void serve(int64_t worker);

  int64_t workers_;
  std::vector<std::thread> threads_;
  // generation (high 32 bits) | shard count (16 bits) | next shard to claim (low 16 bits)
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<const Work*> work_{nullptr};
  std::atomic<bool> stop_{false};
  uint64_t generation_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace lenet::fused
