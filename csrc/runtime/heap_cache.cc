// Tensor heap memory with recycling of large blocks (see heap_allocate in tensor.h).
//
// glibc serves blocks above its mmap threshold with a fresh mapping and unmaps them on free, so
// a 1.6 MB output allocated and dropped every run pays ~400 page faults each time (measured:
// a 640x640 Sigmoid spent more time faulting its output in than computing it). Keeping freed
// blocks for reuse removes that. Small blocks are left to malloc, which already reuses them.
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "sliver/error.h"
#include "sliver/tensor.h"

namespace sliver {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMinCached = 64 << 10;   // below this, malloc's own bins are as good
constexpr size_t kMaxCachedTotal = 256 << 20;
constexpr size_t kMaxPerSize = 8;

struct HeapCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t total = 0;
};

// Never destroyed: numpy may release an output after static destructors have run.
HeapCache& cache() {
  static HeapCache* c = new HeapCache;
  return *c;
}

}  // namespace

void* heap_allocate(size_t bytes) {
  if (bytes >= kMinCached) {
    HeapCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.total -= bytes;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) fail("out of memory allocating ", bytes, " bytes");
  return p;
}

void heap_release(void* p, size_t bytes) {
  if (!p) return;
  if (bytes >= kMinCached) {
    HeapCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    std::vector<void*>& v = c.free_blocks[bytes];
    if (v.size() < kMaxPerSize && c.total + bytes <= kMaxCachedTotal) {
      v.push_back(p);
      c.total += bytes;
      return;
    }
  }
  std::free(p);
}

}  // namespace sliver
