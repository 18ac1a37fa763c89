#include "convert.h"

#include "sliver/error.h"

namespace sliver::py_convert {

namespace {
// Owners that are Python objects must drop their reference with the GIL held:
// the last Tensor may die on a worker thread or inside a GIL-free run().
std::shared_ptr<void> own_pyobject(py::object obj) {
  return std::shared_ptr<void>(new py::object(std::move(obj)), [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
}
}  // namespace

DType dtype_of(const py::dtype& dt) {
  char kind = dt.kind();
  auto size = dt.itemsize();
  if (kind == 'f') {
    if (size == 4) return DType::f32;
    if (size == 8) return DType::f64;
    if (size == 2) return DType::f16;
  } else if (kind == 'i') {
    if (size == 1) return DType::i8;
    if (size == 2) return DType::i16;
    if (size == 4) return DType::i32;
    if (size == 8) return DType::i64;
  } else if (kind == 'u') {
    if (size == 1) return DType::u8;
    if (size == 2) return DType::u16;
    if (size == 4) return DType::u32;
    if (size == 8) return DType::u64;
  } else if (kind == 'b') {
    return DType::boolean;
  }
  return DType::opaque;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::f32: return py::dtype("float32");
    case DType::f64: return py::dtype("float64");
    case DType::f16: return py::dtype("float16");
    case DType::i8: return py::dtype("int8");
    case DType::i16: return py::dtype("int16");
    case DType::i32: return py::dtype("int32");
    case DType::i64: return py::dtype("int64");
    case DType::u8: return py::dtype("uint8");
    case DType::u16: return py::dtype("uint16");
    case DType::u32: return py::dtype("uint32");
    case DType::u64: return py::dtype("uint64");
    case DType::boolean: return py::dtype("bool");
    default: fail("no numpy dtype for ", dtype_name(t));
  }
}

Tensor to_tensor(const py::handle& obj) {
  Tensor t;
  // numpy scalars (x[i] of a 1-D array, as control-flow bodies get) are 0-d tensors.
  static const py::handle np_generic =
      py::object(py::module_::import("numpy").attr("generic")).release();
  if (!py::isinstance<py::array>(obj) && py::isinstance(obj, np_generic)) {
    py::array arr = py::array::ensure(obj);
    if (arr) return to_tensor(arr);
  }
  if (py::isinstance<py::array>(obj)) {
    py::array arr = py::reinterpret_borrow<py::array>(obj);
    DType dt = dtype_of(arr.dtype());
    if (dt != DType::opaque) {
      // Aligned, native byte order, C-contiguous; copies only when the input is not.
      arr = py::array::ensure(arr, py::array::c_style | py::array::forcecast);
      if (!arr.dtype().attr("isnative").cast<bool>())
        arr = arr.attr("astype")(arr.dtype().attr("newbyteorder")("="));
      t.dtype = dt;
      t.shape.assign(arr.shape(), arr.shape() + arr.ndim());
      t.data = const_cast<void*>(arr.data());
      t.owner = own_pyobject(arr);
      return t;
    }
  }
  t.dtype = DType::opaque;
  t.owner = own_pyobject(py::reinterpret_borrow<py::object>(obj));
  return t;
}

py::object to_python(const Tensor& t, bool readonly) {
  if (t.dtype == DType::opaque) return *static_cast<py::object*>(t.owner.get());
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  auto* keep = new std::shared_ptr<void>(t.owner);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  py::array arr(numpy_dtype(t.dtype), shape, {}, t.data, base);
  if (readonly) {
    py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  }
  return std::move(arr);
}

}  // namespace sliver::py_convert
