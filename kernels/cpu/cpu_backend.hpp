// The CPU launcher: iterates the shared math and per-element bodies over strided host
// memory, in parallel across cores for large tensors. Its Backend methods come from the areas
// of kernels/common/launcher.hpp, each instantiated in the file that holds its CPU functions:
// memory.cpp, elementwise.cpp, binary.cpp, index.cpp, distributions.cpp (the
// shared per-element bodies over the CPU Loop), reduce.cpp (reductions and scans), linalg.cpp
// (Eigen's products, factorizations and solves), optim.cpp (the fused optimizer step).
#pragma once

#include "kernels/common/launcher.hpp"
#include "kernels/cpu/cpu_loops.hpp"
#include "kernels/cpu/host_allocator.hpp"

namespace ember::kernels::cpu {

class CpuBackend final : public Launcher<CpuBackend> {
 public:
  Loop loop() const { return Loop{}; }
  BoundCall run_bound(const std::function<void()>& call, bool capture) override;
  bool run_fused(const RangedLoop* const* loops, int count, FuseCarry* carries,
                 std::size_t carry_count, const unsigned* locals) override;
  HostAllocator& allocator() { return allocator_; }

 private:
  HostAllocator allocator_;
};

}  // namespace ember::kernels::cpu
