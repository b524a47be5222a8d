// Generators and plain random tensors: ranges and moments, reproducibility, independence of
// copies, and the device-resident offset used for CUDA Graph replay.
#include <gtest/gtest.h>

#include <cmath>
#include <ember/ember.hpp>

#include "test_util.hpp"

using namespace ember;
using namespace ember::test;

TEST(Random, UniformAndNormalDraws) {
  Generator gen(11);
  for (DType dt : {kFloat32, kFloat64}) {
    const auto u = rand({50000}, TensorOptions{}.with_dtype(dt), &gen).to_vector<double>();
    double m = 0;
    for (double x : u) {
      ASSERT_GT(x, 0.0);
      ASSERT_LT(x, 1.0);
      m += x;
    }
    EXPECT_NEAR(m / u.size(), 0.5, 4 * std::sqrt(1.0 / 12 / u.size()));
    const auto z = randn({50000}, TensorOptions{}.with_dtype(dt), &gen).to_vector<double>();
    double s = 0, s2 = 0;
    for (double x : z) {
      s += x;
      s2 += x * x;
    }
    EXPECT_NEAR(s / z.size(), 0.0, 4 / std::sqrt(z.size()));
    EXPECT_NEAR(s2 / z.size(), 1.0, 0.03);
  }
  EMBER_EXPECT_THROW_WITH(rand({3}, TensorOptions{}.with_dtype(kInt64)), DTypeError, "Uniform",
                          "int64");
}

TEST(Random, CopiesAreIndependentAndReproducible) {
  Generator a(5);
  (void)randn({3}, {}, &a);
  Generator b = a;  // same seed and position
  EXPECT_EQ(randn({4}, {}, &a).to_vector<double>(), randn({4}, {}, &b).to_vector<double>());
  (void)randn({4}, {}, &a);  // advancing a does not move b
  EXPECT_EQ(a.offset(), b.offset() + 1);
}

TEST(Random, DeviceOffsetFollowsTheSameStreamWhenCommittedPerDraw) {
  Generator host(77), dev(77);
  dev.use_device_offset(Device::cpu());
  for (int step = 0; step < 4; ++step) {
    EXPECT_EQ(randn({6}, {}, &host).to_vector<double>(), randn({6}, {}, &dev).to_vector<double>())
        << "step " << step;
    dev.commit_device_offset();
  }
  EXPECT_EQ(dev.device_offset().item(), 4.0);
  EXPECT_EQ(dev.offset(), 0u);
}

// A draw's relative offset and the base it is added to must come from the same side of a
// commit; only the owning thread can order the two, so another thread's draw or commit raises
// (naming the site) instead of silently reusing or skipping numbers.
TEST(Random, ADeviceOffsetBelongsToTheThreadThatSetItUp) {
  Generator gen(5);
  gen.use_device_offset(Device::cpu());
  std::string draw_error, commit_error;
  std::thread other([&] {
    try {
      (void)randn({4}, {}, &gen);
    } catch (const ValueError& e) {
      draw_error = e.what();
    }
    try {
      gen.commit_device_offset();
    } catch (const ValueError& e) {
      commit_error = e.what();
    }
    Generator mine = gen;  // a copy belongs to the thread that made it
    EXPECT_NO_THROW((void)randn({4}, {}, &mine));
    EXPECT_NO_THROW(mine.commit_device_offset());
  });
  other.join();
  EXPECT_NE(draw_error.find("Normal"), std::string::npos) << draw_error;
  EXPECT_NE(draw_error.find("fork"), std::string::npos) << draw_error;
  EXPECT_NE(commit_error.find("commit_device_offset"), std::string::npos) << commit_error;
  EXPECT_EQ(gen.offset(), 0u);  // nothing was drawn from it
  EXPECT_NO_THROW((void)randn({4}, {}, &gen));
  EXPECT_NO_THROW(gen.commit_device_offset());
}

TEST(Random, ReplayedDrawWithTheSameRelativeOffsetIsFreshAfterCommit) {
  // A captured graph replays the same launch arguments: relative offset 0 each time.
  Generator gen(3);
  gen.use_device_offset(Device::cpu());
  const auto first = randn({8}, {}, &gen).to_vector<double>();
  gen.commit_device_offset();
  const auto second = randn({8}, {}, &gen).to_vector<double>();
  EXPECT_NE(first, second);
  // A copy carries its own base: committing one does not move the other.
  Generator copy = gen;
  gen.commit_device_offset();
  EXPECT_EQ(copy.device_offset().item(), 1.0);
  EXPECT_EQ(gen.device_offset().item(), 2.0);
  Generator plain(3);
  EMBER_EXPECT_THROW_WITH(plain.commit_device_offset(), ValueError, "use_device_offset");
}
