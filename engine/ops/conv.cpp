// conv2d: the input unfolded into columns by the launchers' im2col (its backward is col2im),
// then one matrix product per group through matmul, whose backward gives the weight's.
#include "engine/internal.hpp"

namespace ember {
namespace {

using detail::arg;

kernels::Im2colGeometry im2col_geometry(const Tensor& x, const Tensor& weight,
                                        const Conv2dOptions& o) {
  kernels::Im2colGeometry geo{};
  geo.batch = x.size(0);
  geo.channels = x.size(1);
  geo.height = x.size(2);
  geo.width = x.size(3);
  geo.kernel_h = weight.size(2);
  geo.kernel_w = weight.size(3);
  geo.stride_h = o.stride[0];
  geo.stride_w = o.stride[1];
  geo.pad_h = o.padding[0];
  geo.pad_w = o.padding[1];
  geo.dilation_h = o.dilation[0];
  geo.dilation_w = o.dilation[1];
  geo.out_h =
      (geo.height + 2 * geo.pad_h - geo.dilation_h * (geo.kernel_h - 1) - 1) / geo.stride_h + 1;
  geo.out_w =
      (geo.width + 2 * geo.pad_w - geo.dilation_w * (geo.kernel_w - 1) - 1) / geo.stride_w + 1;
  return geo;
}

void set_in_strides(kernels::Im2colGeometry& geo, const Tensor& t) {
  for (int d = 0; d < 4; ++d) geo.in_strides[d] = t.strides()[d];
}

// x (N, C, H, W) unfolded into (C * KH * KW, N * OH * OW); recorded, its backward col2im.
Tensor im2col(const Tensor& x, kernels::Im2colGeometry geo) {
  set_in_strides(geo, x);
  Tensor col = detail::make_tensor(
      {geo.channels * geo.kernel_h * geo.kernel_w, geo.batch * geo.out_h * geo.out_w}, x.dtype(),
      x.device());
  if (col.numel() > 0) detail::backend(x).im2col(arg(col), arg(x), geo);
  if (detail::needs_grad({&x})) {
    detail::record("im2col", {x}, col, [geo, shape = x.shape()](const Tensor& g) {
      Tensor gx = zeros(shape, TensorOptions{}.with_dtype(g.dtype()).with_device(g.device()));
      kernels::Im2colGeometry into = geo;
      set_in_strides(into, gx);
      const Tensor gc = g.contiguous();
      if (gc.numel() > 0) detail::backend(gc).col2im(arg(gx), arg(gc), into);
      return detail::Grads{gx};
    });
  }
  return col;
}

void check_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Conv2dOptions& o) {
  EMBER_CHECK_SHAPE(x.dim() == 4, "conv2d: input must be (N, C, H, W) or (C, H, W), got shape ",
                    x.shape());
  EMBER_CHECK_SHAPE(weight.dim() == 4, "conv2d: weight must be (out_channels, in_channels / ",
                    "groups, KH, KW), got shape ", weight.shape());
  EMBER_CHECK(o.groups >= 1, "conv2d: groups must be positive, got ", o.groups);
  for (int d = 0; d < 2; ++d) {
    EMBER_CHECK(o.stride[d] >= 1 && o.dilation[d] >= 1 && o.padding[d] >= 0,
                "conv2d: stride and dilation must be positive and padding nonnegative, got ",
                "stride ", o.stride[d], ", dilation ", o.dilation[d], ", padding ", o.padding[d]);
  }
  const std::int64_t c = x.size(1), out = weight.size(0);
  EMBER_CHECK_SHAPE(out % o.groups == 0 && weight.size(1) * o.groups == c,
                    "conv2d: input of shape ", x.shape(), " and weight of shape ", weight.shape(),
                    " do not fit ", o.groups,
                    " group(s) (in_channels = weight.size(1) * groups, out_channels divisible by "
                    "groups)");
  EMBER_CHECK_SHAPE(!bias.defined() || (bias.dim() == 1 && bias.size(0) == out),
                    "conv2d: bias of shape ", bias.defined() ? bias.shape() : Shape{},
                    " does not match ", out, " output channels");
  for (int d = 0; d < 2; ++d) {
    const std::int64_t span = o.dilation[d] * (weight.size(2 + d) - 1) + 1;
    EMBER_CHECK_SHAPE(x.size(2 + d) + 2 * o.padding[d] >= span, "conv2d: input of shape ",
                      x.shape(), " (padded by ", o.padding[d], ") is smaller than the kernel's ",
                      "dilated extent ", span, " in spatial dim ", d);
  }
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight_in, const Tensor& bias_in,
              const Conv2dOptions& opts) {
  detail::check_same_device("conv2d", input, weight_in);
  if (bias_in.defined()) detail::check_same_device("conv2d", input, bias_in);
  DType t = promote(input.dtype(), weight_in.dtype());
  if (!is_floating(t)) t = kFloat32;
  const bool unbatched = input.dim() == 3;
  const Tensor x = (unbatched ? input.unsqueeze(0) : input).to(t);
  const Tensor weight = weight_in.to(t);
  const Tensor bias = bias_in.defined() ? bias_in.to(t) : Tensor();
  check_conv2d(x, weight, bias, opts);
  const kernels::Im2colGeometry geo = im2col_geometry(x, weight, opts);
  const std::int64_t g = opts.groups, out_channels = weight.size(0);
  const std::int64_t taps = weight.size(1) * geo.kernel_h * geo.kernel_w;  // per group
  const std::int64_t pixels = geo.batch * geo.out_h * geo.out_w;
  const Tensor col = im2col(x, geo).view({g, taps, pixels});
  // (G, O / G, taps) x (G, taps, N * OH * OW) -> (O, N, OH, OW), then channels after images.
  Tensor y = matmul(weight.reshape({g, out_channels / g, taps}), col)
                 .view({out_channels, geo.batch, geo.out_h, geo.out_w})
                 .permute({1, 0, 2, 3});
  y = bias.defined() ? y + bias.view({out_channels, 1, 1}) : y.contiguous();
  return unbatched ? y.squeeze(0) : y;
}

}  // namespace ember
