// Tensor creation, dtypes and conversion, host transfer, printing, geometry and the errors
// of engine/tensor.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

// ---------------------------------------------------------------------- creation ----
TEST(Creation, ZerosOnesFullHaveShapeDtypeAndValues) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_TRUE(z.device().is_cpu());
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dim(), 2);
  expect_values(z, {0, 0, 0, 0, 0, 0});
  expect_values(ones({3}, f64()), {1, 1, 1});
  Tensor f = full({2, 2}, -2.5, f64());
  EXPECT_EQ(f.dtype(), kFloat64);
  expect_values(f, {-2.5, -2.5, -2.5, -2.5});
  Tensor i = full({2}, 7, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 7}));
  EXPECT_EQ(empty({4, 0, 2}).numel(), 0);
}

TEST(Creation, FullOfBoolStoresTrueAsOne) {
  Tensor b = full({3}, 2.0, TensorOptions{}.with_dtype(kBool));
  EXPECT_EQ(b.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 1, 1}));
  EXPECT_TRUE(all(eq(b, ones({3}, TensorOptions{}.with_dtype(kBool)))));
  EXPECT_EQ(sum(b).item(), 3.0);
}

TEST(Creation, LikeFunctionsCopyDtypeAndShape) {
  Tensor x = random_normal({2, 5});
  Tensor z = zeros_like(x), o = ones_like(x), f = full_like(x, 3.0);
  for (const Tensor& t : {z, o, f}) {
    EXPECT_EQ(t.shape(), x.shape());
    EXPECT_EQ(t.dtype(), kFloat64);
    EXPECT_FALSE(t.requires_grad());
  }
  EXPECT_EQ(sum(o).item(), 10.0);
  EXPECT_EQ(sum(f).item(), 30.0);
  EXPECT_EQ(sum(z).item(), 0.0);
}

// A zero dim makes an empty tensor, but the other dims still set its strides: shapes whose
// strides would overflow int64 are refused with a ShapeError naming the shape, whatever
// their element count.
TEST(Creation, ShapesWhoseStridesOverflowAreRefused) {
  const std::int64_t big = std::int64_t{1} << 32;
  EMBER_EXPECT_THROW_WITH(empty({0, big, big}), ShapeError, "(0, 4294967296, 4294967296)",
                          "overflow");
  EMBER_EXPECT_THROW_WITH(zeros({big, 0, big}), ShapeError, "overflow");
  EXPECT_EQ(empty({0, big}).numel(), 0);  // strides (big, 1) fit
  EXPECT_EQ(empty({big, 0}).strides(), (Shape{1, 1}));
}

TEST(Creation, ScalarTensorIsZeroDim) {
  Tensor s = scalar_tensor(4.25, f64());
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 4.25);
}

TEST(Creation, ArangeMatchesNumpy) {
  expect_values(arange(5.0), {0, 1, 2, 3, 4});
  expect_values(arange(1.0, 2.0, 0.25, f64()), {1.0, 1.25, 1.5, 1.75});
  expect_values(arange(5.0, 0.0, -2.0), {5, 3, 1});
  EXPECT_EQ(arange(3.0, 3.0).numel(), 0);
  EXPECT_EQ(arange(3.0, 1.0).numel(), 0);  // wrong direction: empty, as NumPy
  Tensor i = arange(4.0, TensorOptions{}.with_dtype(kInt64));
  EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EMBER_EXPECT_THROW_WITH(arange(0.0, 1.0, 0.0), ValueError, "step");
  EMBER_EXPECT_THROW_WITH(arange(0.0, INFINITY), ValueError, "finite");
}

TEST(Creation, LinspaceIncludesBothEnds) {
  expect_values(linspace(0.0, 1.0, 5, f64()), {0, 0.25, 0.5, 0.75, 1.0});
  expect_values(linspace(2.0, -2.0, 3, f64()), {2, 0, -2});
  expect_values(linspace(3.0, 9.0, 1, f64()), {3});
  EXPECT_EQ(linspace(0.0, 1.0, 0).numel(), 0);
  EXPECT_THROW(linspace(0.0, 1.0, -1), ValueError);
}

TEST(Creation, TensorFromLists) {
  Tensor v = tensor({1.5, -2.0, 3.0}, f64());
  EXPECT_EQ(v.shape(), (Shape{3}));
  expect_values(v, {1.5, -2.0, 3.0});
  Tensor m = tensor({{1, 2, 3}, {4, 5, 6}});
  EXPECT_EQ(m.shape(), (Shape{2, 3}));
  EXPECT_EQ(m.dtype(), kFloat32);
  expect_values(m, {1, 2, 3, 4, 5, 6});
  EMBER_EXPECT_THROW_WITH(tensor({{1, 2}, {3}}), ShapeError, "row 1", "1 values", "2");
}

TEST(Creation, FromVectorConvertsToTheRequestedDtype) {
  std::vector<std::int64_t> iv{1, -2, 3, 4};
  Tensor t = from_vector(iv, {2, 2}, f64());
  EXPECT_EQ(t.dtype(), kFloat64);
  expect_values(t, {1, -2, 3, 4});
  std::vector<float> fv{0.5f, 0.0f, -1.5f};
  Tensor b = from_vector(fv, {3}, TensorOptions{}.with_dtype(kBool));
  EXPECT_EQ(b.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 0, 1}));
  Tensor r = from_vector(fv, {3}, TensorOptions{}.with_requires_grad());
  EXPECT_TRUE(r.requires_grad());
  EXPECT_TRUE(r.is_leaf());
  EMBER_EXPECT_THROW_WITH(from_vector(iv, {3}), ShapeError, "4 values", "(3)");
}

// Tensors at and around the size whose bytes live in the storage object itself
// (Storage::kInlineBytes) are 64-byte aligned like any other, each its own memory, and keep
// their values through views, clones and the release of their neighbours.
TEST(Creation, SmallTensorsAreAlignedAndIndependentAtEverySize) {
  std::vector<Tensor> made;
  for (std::int64_t n = 0; n <= 20; ++n) {
    for (DType dtype : {kFloat32, kFloat64, kInt64, kBool}) {
      Tensor t = zeros({n}, TensorOptions{}.with_dtype(dtype));
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 64, 0U) << n << " " << dtype;
      made.push_back(t);
    }
  }
  const auto bytes = [](const Tensor& t) {
    const auto* p = static_cast<const unsigned char*>(t.data_ptr());
    return std::vector<unsigned char>(p, p + t.numel() * element_size(t.dtype()));
  };
  // Write every one's bytes, then read every one back: no two share memory.
  for (std::size_t k = 0; k < made.size(); ++k) {
    const std::vector<unsigned char> b = bytes(made[k]);
    std::memset(made[k].data_ptr(), static_cast<int>(k % 200) + 1, b.size());
  }
  for (std::size_t k = 0; k < made.size(); ++k) {
    for (unsigned char b : bytes(made[k])) ASSERT_EQ(b, k % 200 + 1) << "tensor " << k;
  }
  // Views outlive their bases' handles, the storage with them; a clone is its own memory.
  const std::size_t big = 4 * 16 + 1, small = 4 * 5;  // 16 float64s (128 bytes); 5 float32s
  const Tensor view = made[big].narrow(0, 4, 8);
  const Tensor small_view = made[small].narrow(0, 1, 3);
  const Tensor copy = made[small].clone();
  made.clear();
  for (unsigned char b : bytes(view)) EXPECT_EQ(b, big % 200 + 1);
  for (unsigned char b : bytes(small_view)) EXPECT_EQ(b, small % 200 + 1);
  std::memset(copy.data_ptr(), 0, 5 * sizeof(float));
  for (unsigned char b : bytes(small_view)) EXPECT_EQ(b, small % 200 + 1);
}

TEST(Creation, NegativeSizeThrows) {
  EMBER_EXPECT_THROW_WITH(zeros({2, -1}), ShapeError, "(2, -1)", "negative");
}

TEST(Creation, RequiresGradOption) {
  Tensor x = zeros({2}, f64(true));
  EXPECT_TRUE(x.requires_grad());
  EXPECT_THROW(zeros({2}, TensorOptions{}.with_dtype(kInt64).with_requires_grad()), DTypeError);
}

// ------------------------------------------------------------------------- dtypes ----
TEST(DTypes, PromotionOrderAndSizes) {
  EXPECT_EQ(promote(kBool, kInt64), kInt64);
  EXPECT_EQ(promote(kInt64, kFloat32), kFloat32);
  EXPECT_EQ(promote(kFloat64, kFloat32), kFloat64);
  EXPECT_EQ(element_size(kBool), 1u);
  EXPECT_EQ(element_size(kFloat32), 4u);
  EXPECT_EQ(element_size(kInt64), 8u);
  EXPECT_STREQ(dtype_name(kFloat64), "float64");
}

TEST(DTypes, ToDtypeConvertsValues) {
  Tensor x = tensor({-1.7, 0.0, 2.9, 3.0}, f64());
  Tensor i = x.to(kInt64);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{-1, 0, 2, 3}));  // truncation
  Tensor b = x.to(kBool);
  EXPECT_EQ(b.to_vector<std::uint8_t>(), (std::vector<std::uint8_t>{1, 0, 1, 1}));
  Tensor f = x.to(kFloat32);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_FLOAT_EQ(f.to_vector<float>()[0], -1.7f);
  // Same dtype: the same tensor, no copy.
  EXPECT_EQ(x.to(kFloat64).data_ptr(), x.data_ptr());
  expect_values(b.to(kFloat64), {1, 0, 1, 1});
}

TEST(DTypes, ToDtypeOfNonContiguousInput) {
  Tensor x = arange(6.0, f64()).reshape({2, 3}).t();
  Tensor i = x.to(kInt64);
  EXPECT_TRUE(i.is_contiguous());
  EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 3, 1, 4, 2, 5}));
}

TEST(DTypes, DataOfTheWrongTypeThrows) {
  Tensor x = zeros({2});
  EXPECT_NE(x.data<float>(), nullptr);
  EMBER_EXPECT_THROW_WITH(x.data<double>(), DTypeError, "float32");
}

// ------------------------------------------------------------------ item, vectors ----
TEST(Transfer, ItemOfOneElement) {
  EXPECT_EQ(tensor({3.5}).item(), 3.5);
  EXPECT_EQ(full({1, 1, 1}, -2.0).item(), -2.0);
  EXPECT_EQ(scalar_tensor(7, TensorOptions{}.with_dtype(kInt64)).item(), 7.0);
  EMBER_EXPECT_THROW_WITH(zeros({2, 3}).item(), ValueError, "(2, 3)", "6 elements");
  EXPECT_THROW(zeros({0}).item(), ValueError);
}

TEST(Transfer, ToVectorIsRowMajorOfTheView) {
  Tensor x = arange(12.0, f64()).reshape({3, 4});
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(x.t().to_vector<double>(), (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(x.slice(1, 1, 4, 2).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(x.to_vector<float>()[11], 11.0f);
  EXPECT_TRUE(zeros({0, 3}).to_vector<double>().empty());
}

TEST(Transfer, CloneIsIndependentAndContiguous) {
  Tensor x = arange(6.0, f64()).reshape({2, 3});
  Tensor c = x.t().clone();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.data_ptr(), x.data_ptr());
  x.data<double>()[0] = 100.0;
  expect_values(c, {0, 3, 1, 4, 2, 5});
}

TEST(Transfer, ContiguousReturnsSelfWhenAlreadyContiguous) {
  Tensor x = zeros({3, 4});
  EXPECT_EQ(x.contiguous().data_ptr(), x.data_ptr());
  Tensor t = x.t();
  EXPECT_FALSE(t.is_contiguous());
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.data_ptr(), x.data_ptr());
}

TEST(Transfer, ToSameDeviceIsANoOp) {
  Tensor x = ones({2});
  EXPECT_EQ(x.to(Device::cpu()).data_ptr(), x.data_ptr());
}

// -------------------------------------------------------------------- printing ----
TEST(Printing, ShowsValuesShapeAndDtype) {
  const std::string s = tensor({{1, 2}, {3, 4}}).str();
  EXPECT_NE(s.find("[[1, 2], [3, 4]]"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=(2, 2)"), std::string::npos) << s;
  EXPECT_NE(s.find("float32"), std::string::npos) << s;
  EXPECT_EQ(s.find("requires_grad"), std::string::npos) << s;
  const std::string g = ones({2}, f64(true)).str();
  EXPECT_NE(g.find("requires_grad"), std::string::npos) << g;
  EXPECT_NE(g.find("float64"), std::string::npos) << g;
  std::ostringstream os;
  os << scalar_tensor(2.5);
  EXPECT_NE(os.str().find("2.5"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("shape=()"), std::string::npos) << os.str();
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
}

TEST(Printing, LongRowsAreElided) {
  const std::string s = arange(20.0).str();
  EXPECT_NE(s.find("..."), std::string::npos) << s;
  EXPECT_NE(s.find("[0, 1, 2, ..., 17, 18, 19]"), std::string::npos) << s;
}

TEST(Printing, IntegersPrintExactly) {
  const std::string s = tensor({1234567, -98765432}, TensorOptions{}.with_dtype(kInt64)).str();
  EXPECT_NE(s.find("1234567"), std::string::npos) << s;
  EXPECT_NE(s.find("-98765432"), std::string::npos) << s;
  EXPECT_NE(s.find("int64"), std::string::npos) << s;
}

TEST(Printing, EmptyAndNonContiguous) {
  const std::string e = zeros({0, 3}).str();
  EXPECT_NE(e.find("shape=(0, 3)"), std::string::npos) << e;
  const std::string t = tensor({{1, 2}, {3, 4}}).t().str();
  EXPECT_NE(t.find("[[1, 3], [2, 4]]"), std::string::npos) << t;
}

// --------------------------------------------------------------------- geometry ----
TEST(Geometry, SizeAcceptsNegativeDims) {
  Tensor x = zeros({2, 3, 4});
  EXPECT_EQ(x.size(0), 2);
  EXPECT_EQ(x.size(-1), 4);
  EXPECT_EQ(x.size(-3), 2);
  EMBER_EXPECT_THROW_WITH(x.size(3), ShapeError, "dim 3", "3 dims");
  EXPECT_THROW(x.size(-4), ShapeError);
}

TEST(Geometry, ContiguousStrides) {
  EXPECT_EQ(zeros({2, 3, 4}).strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({5, 0, 2}), (Shape{2, 2, 1}));
  EXPECT_EQ(Shape({2, 3}).str(), "(2, 3)");
  EXPECT_EQ(Shape{}.str(), "()");
}

TEST(Geometry, BroadcastShapes) {
  EXPECT_EQ(broadcast_shapes({3, 1}, {1, 4}, "t"), (Shape{3, 4}));
  EXPECT_EQ(broadcast_shapes({2, 3, 4}, {4}, "t"), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes({}, {2, 2}, "t"), (Shape{2, 2}));
  EXPECT_EQ(broadcast_shapes({0, 1}, {1, 5}, "t"), (Shape{0, 5}));
  EMBER_EXPECT_THROW_WITH(broadcast_shapes({2, 3}, {4}, "myop"), ShapeError, "myop", "(2, 3)",
                          "(4)");
}

TEST(Geometry, RankEightWorksAndRankElevenThrows) {
  Tensor x = ones({2, 1, 2, 1, 2, 1, 2, 2});
  EXPECT_EQ(x.dim(), 8);
  EXPECT_EQ(sum(x).item(), 32.0);
  Tensor y = exp(x * 0.0) + x.transpose(0, 7);
  EXPECT_EQ(y.dim(), 8);
  EXPECT_EQ(sum(y).item(), 64.0);
  EMBER_EXPECT_THROW_WITH(zeros({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}), ShapeError, "rank 11");
  Tensor ten = zeros({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  EXPECT_THROW(ten.unsqueeze(0), ShapeError);
}

TEST(Geometry, UndefinedTensorUseThrows) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EMBER_EXPECT_THROW_WITH(t.shape(), ValueError, "undefined");
}

TEST(Devices, CpuOnlyBuildReportsNoCuda) {
  if (cuda_built()) GTEST_SKIP() << "CUDA backend built; the CPU-only behaviour does not apply";
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_FALSE(cuda_available());
  EXPECT_TRUE(Device::best().is_cpu());
  EMBER_EXPECT_THROW_WITH(Device::cuda(0), DeviceError, "CUDA");
  EXPECT_EQ(Device::cpu().str(), "cpu");
}

TEST(Validation, Toggle) {
  EXPECT_TRUE(validation_enabled());
  set_validation_enabled(false);
  EXPECT_FALSE(validation_enabled());
  set_validation_enabled(true);
  EXPECT_TRUE(validation_enabled());
}

// A ValidationScope overrides the process-wide switch for its own thread only, and nests.
TEST(Validation, AScopeSwitchesItsOwnThreadOnly) {
  ASSERT_TRUE(validation_enabled());
  {
    const ValidationScope off(false);
    EXPECT_FALSE(validation_enabled());
    bool other = false;
    std::thread([&] { other = validation_enabled(); }).join();
    EXPECT_TRUE(other);
    {
      const ValidationScope on(true);
      EXPECT_TRUE(validation_enabled());
      set_validation_enabled(false);  // the process-wide switch does not pierce a scope
      EXPECT_TRUE(validation_enabled());
      set_validation_enabled(true);
    }
    EXPECT_FALSE(validation_enabled());
    // The checks themselves follow the thread's setting, in this thread only.
    EXPECT_NO_THROW(dist::Bernoulli(0.5).log_prob(tensor({0.25})));
    std::string strict_error;
    std::thread([&] {
      try {
        (void)dist::Bernoulli(0.5).log_prob(tensor({0.25}));
      } catch (const ValueError& e) {
        strict_error = e.what();
      }
    }).join();
    EXPECT_NE(strict_error.find("Bernoulli.log_prob"), std::string::npos) << strict_error;
  }
  EXPECT_TRUE(validation_enabled());
}
