#include "sliver/memory_plan.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace sliver {

namespace {
thread_local AllocHook* t_hook = nullptr;

constexpr size_t kAlign = 64;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Offsets for the blocks that are not heap: largest first, each at the lowest offset where it
// overlaps (in bytes) no placed block whose lifetime overlaps its own.
size_t place_blocks(std::vector<MemoryPlan::Block>& blocks) {
  std::vector<int> order;
  for (int i = 0; i < static_cast<int>(blocks.size()); ++i)
    if (blocks[i].offset >= 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return blocks[a].bytes > blocks[b].bytes; });
  std::vector<int> placed;
  size_t total = 0;
  std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) byte ranges of live neighbours
  for (int i : order) {
    MemoryPlan::Block& b = blocks[i];
    busy.clear();
    for (int j : placed) {
      const MemoryPlan::Block& o = blocks[j];
      if (o.first <= b.last && b.first <= o.last)
        busy.emplace_back(static_cast<size_t>(o.offset), o.offset + o.bytes);
    }
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (auto& r : busy) {
      if (r.first >= at + b.bytes) break;
      at = std::max(at, r.second);
    }
    b.offset = static_cast<int64_t>(at);
    total = std::max(total, at + b.bytes);
    placed.push_back(i);
  }
  return total;
}

bool same_feeds(const MemoryPlan& p, const std::vector<Tensor>& feeds) {
  if (p.feed_shapes.size() != feeds.size()) return false;
  for (size_t i = 0; i < feeds.size(); ++i) {
    // The dtype travels as a trailing pseudo-dimension (see feed_key).
    const Shape& s = p.feed_shapes[i];
    if (s.empty() || s.back() != static_cast<int64_t>(feeds[i].dtype)) return false;
    if (!std::equal(s.begin(), s.end() - 1, feeds[i].shape.begin(), feeds[i].shape.end()))
      return false;
  }
  return true;
}

std::vector<Shape> feed_key(const std::vector<Tensor>& feeds) {
  std::vector<Shape> key;
  for (const Tensor& t : feeds) {
    Shape s = t.dtype == DType::opaque ? Shape{} : t.shape;
    s.push_back(static_cast<int64_t>(t.dtype));
    key.push_back(std::move(s));
  }
  return key;
}

// First run for these feed shapes: heap allocations, each watched until its memory dies.
class Recorder final : public MemoryPlanner::RunScope {
 public:
  Recorder(MemoryPlanner* owner, std::vector<Shape> key, int num_steps)
      : owner_(owner), plan_(std::make_shared<MemoryPlan>()) {
    plan_->feed_shapes = std::move(key);
    plan_->step_blocks.resize(num_steps);
    plan_->dying_after.resize(num_steps);
  }

  void* allocate(size_t bytes, std::shared_ptr<void>* owner) override {
    void* p = heap_allocate(round_up(bytes));
    *owner = std::shared_ptr<void>(p, HeapFree{round_up(bytes)});
    MemoryPlan::Block b;
    b.bytes = round_up(bytes);
    b.first = b.last = step_;
    plan_->step_blocks[step_].push_back(static_cast<int>(plan_->blocks.size()));
    plan_->blocks.push_back(b);
    alive_.emplace_back(static_cast<int>(plan_->blocks.size()) - 1, *owner);
    return p;
  }
  void step_begin(int step) override { step_ = step; }
  void step_end(int step) override {
    auto dead = std::partition(alive_.begin(), alive_.end(),
                               [](const auto& a) { return !a.second.expired(); });
    for (auto it = dead; it != alive_.end(); ++it) {
      plan_->blocks[it->first].last = step;
      plan_->blocks[it->first].offset = 0;  // planned (placed later)
    }
    alive_.erase(dead, alive_.end());
  }
  bool in_arena(const Tensor&) const override { return false; }
  void finish() override {
    // Still alive now: results, or memory the caller or a Python object holds. Heap.
    for (auto& a : alive_) plan_->blocks[a.first].offset = -1;
    plan_->arena_bytes = place_blocks(plan_->blocks);
    for (int i = 0; i < static_cast<int>(plan_->blocks.size()); ++i)
      if (plan_->blocks[i].offset >= 0) plan_->dying_after[plan_->blocks[i].last].push_back(i);
    owner_->finish_record(plan_, static_cast<int64_t>(plan_->blocks.size()));
  }

 private:
  MemoryPlanner* owner_;
  std::shared_ptr<MemoryPlan> plan_;
  std::vector<std::pair<int, std::weak_ptr<void>>> alive_;
  int step_ = 0;
};

// Later runs: planned allocations come from the arena; deaths are checked where planned.
class Replayer final : public MemoryPlanner::RunScope {
 public:
  Replayer(MemoryPlanner* owner, std::shared_ptr<MemoryPlan> plan,
           std::shared_ptr<uint8_t> arena)
      : owner_(owner), plan_(std::move(plan)), arena_(std::move(arena)),
        handed_(plan_->blocks.size()) {}

  void* allocate(size_t bytes, std::shared_ptr<void>* owner) override {
    const auto& mine = plan_->step_blocks[step_];
    if (!ok_ || index_ >= mine.size()) return heap();
    const int id = mine[index_++];
    const MemoryPlan::Block& b = plan_->blocks[id];
    if (b.bytes != round_up(bytes)) {
      ok_ = false;  // shapes depend on values: this plan does not describe the run
      return heap();
    }
    if (b.offset < 0) return heap();
    uint8_t* p = arena_.get() + b.offset;
    // Its own control block, so its death can be observed; it keeps the arena alive.
    *owner = std::shared_ptr<void>(p, ArenaSliceRef{arena_});
    handed_[id] = *owner;
    return p;
  }
  void step_begin(int step) override {
    step_ = step;
    index_ = 0;
  }
  void step_end(int step) override {
    for (int id : plan_->dying_after[step])
      if (!handed_[id].expired()) ok_ = false;  // outlived its plan: stop handing out memory
  }
  bool in_arena(const Tensor& t) const override {
    const uint8_t* p = static_cast<const uint8_t*>(t.data);
    return arena_ && p >= arena_.get() && p < arena_.get() + plan_->arena_bytes;
  }
  void finish() override { owner_->finish_replay(plan_, std::move(arena_), ok_, heap_allocs_); }

 private:
  void* heap() {
    ++heap_allocs_;
    return nullptr;
  }
  MemoryPlanner* owner_;
  std::shared_ptr<MemoryPlan> plan_;
  std::shared_ptr<uint8_t> arena_;
  std::vector<std::weak_ptr<void>> handed_;
  size_t index_ = 0;
  int step_ = 0;
  bool ok_ = true;
  int64_t heap_allocs_ = 0;
};
}  // namespace

ScopedAllocHook::ScopedAllocHook(AllocHook* hook) : saved_(t_hook) { t_hook = hook; }
ScopedAllocHook::~ScopedAllocHook() { t_hook = saved_; }
AllocHook* current_alloc_hook() { return t_hook; }

std::unique_ptr<MemoryPlanner::RunScope> MemoryPlanner::begin(const std::vector<Tensor>& feeds,
                                                              int num_steps) {
  std::shared_ptr<MemoryPlan> plan;
  std::shared_ptr<uint8_t> arena;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (plan_ && same_feeds(*plan_, feeds)) {
      plan = plan_;
      if (!idle_arenas_.empty()) {
        arena = std::move(idle_arenas_.back());
        idle_arenas_.pop_back();
      }
    }
  }
  if (!plan) return std::make_unique<Recorder>(this, feed_key(feeds), num_steps);
  if (!arena && plan->arena_bytes) {
    void* p = std::aligned_alloc(kAlign, plan->arena_bytes);
    if (!p) throw std::bad_alloc();
    arena = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
  }
  return std::make_unique<Replayer>(this, std::move(plan), std::move(arena));
}

void MemoryPlanner::finish_record(std::shared_ptr<MemoryPlan> plan, int64_t heap_allocs) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = std::move(plan);
  idle_arenas_.clear();
  stats_.arena_bytes = plan_->arena_bytes;
  stats_.planned_blocks = 0;
  for (auto& b : plan_->blocks) stats_.planned_blocks += b.offset >= 0;
  stats_.heap_allocs = heap_allocs;
  stats_.replayed = false;
}

void MemoryPlanner::finish_replay(std::shared_ptr<MemoryPlan> plan, std::shared_ptr<uint8_t> arena,
                                  bool ok, int64_t heap_allocs) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.heap_allocs = heap_allocs;
  stats_.replayed = true;
  if (plan_ != plan) return;  // replanned meanwhile: drop the old arena
  if (!ok) {
    plan_.reset();  // record again next time
    idle_arenas_.clear();
    return;
  }
  // Reuse only if no tensor outside the executor still points into it.
  if (arena && arena.use_count() == 1) idle_arenas_.push_back(std::move(arena));
}

MemoryStats MemoryPlanner::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sliver
