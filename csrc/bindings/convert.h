// numpy <-> Tensor without copies: a Tensor made from an array keeps the array
// alive through its owner; an array made from a Tensor keeps the Tensor's
// owner alive through a capsule.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "sliver/tensor.h"

namespace sliver::py_convert {

namespace py = pybind11;

// Numeric arrays become typed tensors (made C-contiguous first); anything else
// (strings, lists, None, maps) becomes DType::opaque holding the object.
Tensor to_tensor(const py::handle& obj);
// The inverse; an opaque tensor gives back its object. Result arrays are read-only
// when `readonly` (values handed to fallback ops must not be changed in place).
py::object to_python(const Tensor& t, bool readonly = false);
DType dtype_of(const py::dtype& dt);
py::dtype numpy_dtype(DType t);

}  // namespace sliver::py_convert
