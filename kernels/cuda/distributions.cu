// Fused log-densities with their partials, Philox samplers and sample gradients on the
// device: the shared area of kernels/common/areas/ over the CUDA Loop, with the
// math of kernels/math/distributions.
#include "kernels/common/areas/distributions.hpp"
#include "kernels/cuda/cuda_backend.cuh"

template class ember::kernels::DistributionArea<ember::kernels::cuda::CudaBackend>;
