#include "sliver/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "sliver/error.h"
#include "sliver/memory_plan.h"

namespace sliver {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
    case DType::i32:
    case DType::u32:
      return 4;
    case DType::u8:
    case DType::i8:
    case DType::boolean:
      return 1;
    case DType::u16:
    case DType::i16:
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::i64:
    case DType::u64:
    case DType::f64:
      return 8;
    default:
      return 0;
  }
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float";
    case DType::u8: return "uint8";
    case DType::i8: return "int8";
    case DType::u16: return "uint16";
    case DType::i16: return "int16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::str: return "string";
    case DType::boolean: return "bool";
    case DType::f16: return "float16";
    case DType::f64: return "double";
    case DType::u32: return "uint32";
    case DType::u64: return "uint64";
    case DType::bf16: return "bfloat16";
    case DType::opaque: return "opaque";
    default: return "undefined";
  }
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  for (int64_t d : t.shape) SLIVER_CHECK(d >= 0, "negative dimension in ", shape_str(t.shape));
  size_t bytes = t.nbytes();
  // Round up so vector kernels may read a full register past the end.
  size_t alloc = ((bytes + 64) / 64 + 1) * 64;
  if (AllocHook* hook = current_alloc_hook()) {
    if (void* p = hook->allocate(alloc, &t.owner)) {
      t.data = p;
      return t;
    }
  }
  void* p = heap_allocate(alloc);
  t.owner = std::shared_ptr<void>(p, HeapFree{alloc});
  t.data = p;
  return t;
}

bool allocated_by_sliver(const Tensor& t) {
  return std::get_deleter<HeapFree>(t.owner) || std::get_deleter<ArenaSliceRef>(t.owner);
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(Shape new_shape) const {
  SLIVER_CHECK(shape_numel(new_shape) == numel(), "cannot view ", shape_str(shape), " as ",
               shape_str(new_shape));
  Tensor t = *this;
  t.shape = std::move(new_shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype, shape);
  if (nbytes()) std::memcpy(t.data, data, nbytes());
  return t;
}

}  // namespace sliver
