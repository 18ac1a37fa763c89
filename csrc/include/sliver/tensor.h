// A tensor as the executor sees it: a dtype, a shape and a pointer into memory
// that some owner keeps alive (the arena, a packed constant, a numpy array fed
// by the caller). Values the native code never reads (strings, sequences,
// maps, optionals) travel as DType::opaque with only the owner set, so the
// Python fallback can hand them between nodes unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace sliver {

// Numeric values are onnx.TensorProto.DataType codes, so no table is needed at
// the Python boundary.
enum class DType : int32_t {
  undefined = 0,
  f32 = 1,
  u8 = 2,
  i8 = 3,
  u16 = 4,
  i16 = 5,
  i32 = 6,
  i64 = 7,
  str = 8,
  boolean = 9,
  f16 = 10,
  f64 = 11,
  u32 = 12,
  u64 = 13,
  bf16 = 16,
  opaque = 1000,
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

struct Tensor {
  DType dtype = DType::undefined;
  Shape shape;
  std::shared_ptr<void> owner;  // keeps `data` alive
  void* data = nullptr;

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  bool defined() const { return dtype != DType::undefined; }

  template <class T>
  T* ptr() {
    return static_cast<T*>(data);
  }
  template <class T>
  const T* ptr() const {
    return static_cast<const T*>(data);
  }

  // A fresh, 64-byte aligned, uninitialised tensor.
  static Tensor empty(DType dtype, Shape shape);
  static Tensor zeros(DType dtype, Shape shape);
  // Same memory, another shape with the same number of elements.
  Tensor view(Shape new_shape) const;
  // Deep copy into fresh memory.
  Tensor clone() const;
};

/// 64-byte aligned heap memory for tensors (bytes: a multiple of 64). Large blocks are
/// recycled: a released one is kept, still mapped and faulted in, for the next request of the
/// same size (up to a bounded total), so the outputs a session hands to numpy on every run do
/// not each cost a fresh mmap and a page fault per 4 KiB. Thread-safe.
void* heap_allocate(size_t bytes);
void heap_release(void* p, size_t bytes);

/// Deleter of the memory Tensor::empty takes from the heap.
struct HeapFree {
  size_t bytes = 0;
  void operator()(void* p) const { heap_release(p, bytes); }
};

/// Deleter of an arena slice the memory plan hands out: frees nothing, keeps the arena alive.
struct ArenaSliceRef {
  std::shared_ptr<uint8_t> arena;
  void operator()(void*) const {}
};

/// Whether t's memory came from Tensor::empty (heap or arena), so no other owner (a numpy
/// array, a packed constant) can be sharing its bytes without sharing `owner`.
bool allocated_by_sliver(const Tensor& t);

}  // namespace sliver
