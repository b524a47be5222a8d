// Creation, copies, selection, and unary math with its gradients on the device: the shared
// area of kernels/common/areas/ instantiated over the CUDA Loop.
#include "kernels/common/areas/elementwise.hpp"
#include "kernels/cuda/cuda_backend.cuh"

template class ember::kernels::ElementwiseArea<ember::kernels::cuda::CudaBackend>;
