// Binary arithmetic, comparisons and their gradients on the device: the shared area of
// kernels/common/areas/ over the CUDA Loop.
#include "kernels/common/areas/binary.hpp"
#include "kernels/cuda/cuda_backend.cuh"

template class ember::kernels::BinaryArea<ember::kernels::cuda::CudaBackend>;
