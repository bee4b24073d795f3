// Checks of the NumPy arrays handed to the native core: dtype (float32, or float16 where allowed), dimensions and
// C-contiguity. A failed check raises ValueError naming the argument; nothing is converted or copied silently.
#pragma once
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace dfl {

inline bool is_float32(const pybind11::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 4; }
inline bool is_float16(const pybind11::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 2; }

inline void require_layout(const pybind11::array& a, const char* name, int ndim) {
    if (a.ndim() != ndim) {
        throw pybind11::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got " +
                                    std::to_string(a.ndim()));
    }
    if (!(a.flags() & pybind11::array::c_style)) {
        throw pybind11::value_error(std::string(name) + " must be C-contiguous");
    }
}

// float32 only.
inline void require_float32(const pybind11::array& a, const char* name, int ndim) {
    require_layout(a, name, ndim);
    if (!is_float32(a)) throw pybind11::value_error(std::string(name) + " must be float32");
}

// float32 or float16; returns true for float16.
inline bool require_float32_or_16(const pybind11::array& a, const char* name, int ndim) {
    require_layout(a, name, ndim);
    if (!is_float32(a) && !is_float16(a)) {
        throw pybind11::value_error(std::string(name) + " must be float32 or float16");
    }
    return is_float16(a);
}

inline void require_writeable(const pybind11::array& a, const char* name) {
    if (!a.writeable()) throw pybind11::value_error(std::string(name) + " must be writeable (it is changed in place)");
}

inline int dim(const pybind11::array& a, int axis) { return static_cast<int>(a.shape(axis)); }

}  // namespace dfl

namespace dfl {

using MatrixArg = pybind11::array_t<double, pybind11::array::c_style | pybind11::array::forcecast>;

// A 2x3 affine matrix, row-major, into out[6].
inline void read_matrix(const MatrixArg& matrix, double out[6]) {
    if (matrix.ndim() != 2 || matrix.shape(0) != 2 || matrix.shape(1) != 3) {
        throw pybind11::value_error("matrix must have shape (2, 3)");
    }
    for (int k = 0; k < 6; ++k) out[k] = matrix.data()[k];
}

}  // namespace dfl
