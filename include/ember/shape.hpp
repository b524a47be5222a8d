// A tensor shape (or stride list): a small inline array, so that creating one never
// allocates on the heap. Rank is limited to kMaxRank.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "ember/error.hpp"

namespace ember {

inline constexpr int kMaxRank = 10;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<std::int64_t>& dims) { assign(dims.begin(), dims.end()); }
  // n dims all equal to value.
  static Shape filled(int n, std::int64_t value) {
    Shape s;
    s.resize(n, value);
    return s;
  }

  int size() const { return ndim_; }
  bool empty() const { return ndim_ == 0; }
  std::int64_t operator[](int i) const { return d_[i]; }
  std::int64_t& operator[](int i) { return d_[i]; }
  const std::int64_t* begin() const { return d_.data(); }
  const std::int64_t* end() const { return d_.data() + ndim_; }
  std::int64_t* begin() { return d_.data(); }
  std::int64_t* end() { return d_.data() + ndim_; }
  const std::int64_t* data() const { return d_.data(); }
  std::int64_t back() const { return d_[ndim_ - 1]; }

  void push_back(std::int64_t v) {
    EMBER_CHECK_T(ShapeError, ndim_ < kMaxRank, "tensor rank exceeds the limit of ", kMaxRank);
    d_[ndim_++] = v;
  }
  void insert(int pos, std::int64_t v) {
    EMBER_CHECK_T(ShapeError, ndim_ < kMaxRank, "tensor rank exceeds the limit of ", kMaxRank);
    for (int i = ndim_; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
    ++ndim_;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < ndim_; ++i) d_[i] = d_[i + 1];
    --ndim_;
  }
  void resize(int n, std::int64_t value = 0) {
    EMBER_CHECK_T(ShapeError, n >= 0 && n <= kMaxRank, "tensor rank ", n, " exceeds the limit of ",
                  kMaxRank);
    for (int i = ndim_; i < n; ++i) d_[i] = value;
    ndim_ = n;
  }

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < ndim_; ++i) n *= d_[i];
    return n;
  }
  std::vector<std::int64_t> vec() const { return {begin(), end()}; }
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.ndim_ == b.ndim_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    const auto n = static_cast<int>(last - first);
    EMBER_CHECK_T(ShapeError, n <= kMaxRank, "tensor rank ", n, " exceeds the limit of ", kMaxRank);
    std::copy(first, last, d_.begin());
    ndim_ = n;
  }

  // Only the first ndim_ entries hold dims; the rest are left unset (a shape is made for
  // nearly every op, and zeroing the whole array each time was a tenth of a small step).
  std::array<std::int64_t, kMaxRank> d_;
  int ndim_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

// Normalizes a possibly negative dim against a rank; throws naming the op on error.
int wrap_dim(int dim, int ndim, const char* op);

// NumPy broadcasting of two shapes; throws ShapeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Row-major (C-contiguous) strides of a shape.
Shape contiguous_strides(const Shape& shape);

}  // namespace ember
