// Worker threads that share the shards of one training step.
//
// Each shard is claimed from a shared counter, so whoever runs takes the next shard: a worker
// that the OS has not scheduled yet (other processes on a busy machine) delays nothing, unlike
// an OpenMP region whose closing barrier waits for every thread of the team. The calling thread
// is worker 0 and claims shards like the others; `workers - 1` threads are started. Whoever
// waits (a worker for the next step, the caller for the last shard) spins for up to kSpin
// before it sleeps: steps follow each other within microseconds, and waking a sleeping thread
// costs more than that.
#pragma once

#include <atomic>
#include <chrono>
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
  static constexpr std::chrono::microseconds kSpin{100};

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
  // Claims and runs shards of generation `generation` until none is left.
  void claim_shards(uint64_t generation, int64_t worker);

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
