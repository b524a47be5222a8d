// Messenger's RAII: a handler is on the calling thread's stack from its construction to its
// destruction without doing anything itself; a constructor that throws leaves the stack (and
// the plates' dims) as they were; a plate on the stack during its own construction changes
// nothing; the per-iteration handlers (sequential plates, markov) enter only while iterated.
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

namespace ember {
namespace {

using test::f64;

class MessengerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_param_store();
    set_rng_seed(3);
  }
  void TearDown() override { EXPECT_TRUE(handler_stack_empty()); }
};

// A handler written without a word about the stack.
class CountSites : public Messenger {
 public:
  void process_message(Message& msg) override {
    if (msg.type == SiteType::Sample) ++count;
  }
  int count = 0;
};

// A handler written the old way, entering in its constructor: it enters once.
class EntersItself : public Messenger {
 public:
  EntersItself() { enter(); }
};

// A handler whose constructor fails after the base has entered.
class FailsToConstruct : public Messenger {
 public:
  FailsToConstruct() { throw ValueError("no"); }
};

TEST_F(MessengerTest, AHandlerIsActiveFromConstructionToDestruction) {
  {
    CountSites counter;
    EXPECT_TRUE(counter.active());
    ASSERT_EQ(handler_stack().size(), 1u);
    EXPECT_EQ(handler_stack()[0], &counter);
    sample("a", dist::Normal(0.0, 1.0));
    EXPECT_EQ(counter.count, 1);
  }
  {
    EntersItself old_style;
    EXPECT_EQ(handler_stack().size(), 1u);
  }
}

TEST_F(MessengerTest, AConstructorThatThrowsLeavesTheStackClean) {
  handlers::TraceHandler outer;
  EMBER_EXPECT_THROW_WITH(FailsToConstruct(), ValueError, "no");
  EMBER_EXPECT_THROW_WITH(handlers::ScaleHandler(-1.0), ValueError, "positive");
  EMBER_EXPECT_THROW_WITH(handlers::MaskHandler(Tensor{}), ValueError, "undefined");
  EMBER_EXPECT_THROW_WITH(handlers::BlockHandler({.hide = {"a"}, .expose = {"b"}}), ValueError,
                          "not several");
  EMBER_EXPECT_THROW_WITH(plate("empty", 0), ValueError, "size must be at least 1");
  EMBER_EXPECT_THROW_WITH(plate("big", 3, {.subsample_size = 5}), ValueError, "subsample_size");
  ASSERT_EQ(handler_stack().size(), 1u);
  EXPECT_EQ(handler_stack()[0], &outer);
}

TEST_F(MessengerTest, APlateThatFailsFreesNothingItDidNotTake) {
  auto outer = plate("outer", 2);
  EMBER_EXPECT_THROW_WITH(plate("clash", 3, {.dim = -1}), ValueError, "already used by plate");
  // The failed plate neither stayed on the stack nor freed the outer plate's dim.
  EXPECT_EQ(handler_stack().size(), 1u);
  auto next = plate("next", 3);
  EXPECT_EQ(next.dim(), -2);
}

TEST_F(MessengerTest, APlateOnTheStackDuringItsConstructionChangesNothing) {
  // The plate's own subsample message passes through it while it is being built: the
  // recorded site is as the handlers outside made it, and the sites inside get the frame.
  handlers::TraceHandler tracer;
  {
    auto outer = plate("outer", 2);
    auto inner = plate("inner", 5, {.subsample_size = 3});
    sample("x", dist::Normal(0.0, 1.0));
  }
  const Trace& tr = tracer.trace();
  for (const char* name : {"outer", "inner"}) {
    const Site& s = tr.at(name);
    EXPECT_EQ(s.type, SiteType::Subsample);
    EXPECT_TRUE(s.cond_indep_stack.empty()) << name;
    EXPECT_EQ(s.scale, 1.0) << name;
  }
  EXPECT_EQ(tr.at("inner").value.shape(), (Shape{3}));
  const Site& x = tr.at("x");
  ASSERT_EQ(x.cond_indep_stack.size(), 2u);
  EXPECT_EQ(x.cond_indep_stack[0].name, "outer");
  EXPECT_EQ(x.cond_indep_stack[1].name, "inner");
  EXPECT_EQ(x.value.shape(), (Shape{3, 2}));
  EXPECT_DOUBLE_EQ(x.scale, 5.0 / 3.0);
}

TEST_F(MessengerTest, PerIterationHandlersEnterOnlyWhileIterated) {
  auto points = sequential_plate("points", 3);
  auto chain = markov(2);
  EXPECT_TRUE(handler_stack_empty());
  EXPECT_FALSE(points.active());
  std::vector<std::size_t> depths;
  for ([[maybe_unused]] std::int64_t i : points) {
    for ([[maybe_unused]] std::int64_t t : chain) depths.push_back(handler_stack().size());
    depths.push_back(handler_stack().size());
  }
  EXPECT_EQ(depths, (std::vector<std::size_t>{2, 2, 1, 2, 2, 1, 2, 2, 1}));
  EXPECT_TRUE(handler_stack_empty());
  // Leaving a loop early leaves the handler on the stack until its scope ends.
  {
    auto early = sequential_plate("early", 3);
    for (std::int64_t i : early) {
      if (i >= 0) break;
    }
    EXPECT_EQ(handler_stack().size(), 1u);
  }
}

// Records the order in which the handlers see a message, on the way in and in postprocess.
class Recorder : public Messenger {
 public:
  Recorder(std::string name, std::vector<std::string>& log, bool stop = false)
      : name_(std::move(name)), log_(log), stop_(stop) {}
  void process_message(Message& msg) override {
    log_.push_back("process " + name_);
    if (stop_) msg.stop = true;
  }
  void postprocess_message(Message&) override { log_.push_back("postprocess " + name_); }

 private:
  std::string name_;
  std::vector<std::string>& log_;
  bool stop_;
};

// Pyro's apply_stack order: process from the innermost handler out, postprocess on the
// handlers that saw the message from the outermost of them in; a handler that stops the
// message hides it from the handlers outside it, in both passes.
TEST_F(MessengerTest, ProcessRunsInnermostFirstAndPostprocessOutermostFirst) {
  std::vector<std::string> log;
  {
    Recorder outer("outer", log), middle("middle", log), inner("inner", log);
    sample("x", dist::Normal(0.0, 1.0));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"process inner", "process middle", "process outer",
                                           "postprocess outer", "postprocess middle",
                                           "postprocess inner"}));
  log.clear();
  {
    Recorder outer("outer", log), middle("middle", log, /*stop=*/true), inner("inner", log);
    sample("x", dist::Normal(0.0, 1.0));
  }
  EXPECT_EQ(log, (std::vector<std::string>{"process inner", "process middle", "postprocess middle",
                                           "postprocess inner"}));
}

}  // namespace
}  // namespace ember
