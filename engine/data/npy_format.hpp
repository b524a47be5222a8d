// The .npy format's pieces that the .npz archive reuses: reading one array from a byte source,
// and the header and payload that write one.
#pragma once

#include <string>

#include "ember/data/npy.hpp"
#include "engine/data/byte_source.hpp"

namespace ember::data::detail {

// Reads a whole .npy stream (magic, header, data) and checks that nothing follows it.
Tensor read_npy_from(ByteSource& src, const NpyReadOptions& options);

// The magic string, version, header length and header of `tensor` stored little-endian in
// C or Fortran order.
std::string npy_header(const Tensor& tensor, bool fortran_order);
// The elements in the order they are written: a contiguous CPU tensor (of the transposed
// shape for Fortran order), whose bytes follow the header unchanged.
Tensor npy_payload(const Tensor& tensor, bool fortran_order);

}  // namespace ember::data::detail
