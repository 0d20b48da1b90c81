// featx/kernels/padding.hpp: TensorFlow SAME padding.
//
// out = ceil(in / stride); the total padding is split with the smaller half
// before (top/left) and the extra row/column after (bottom/right), as TF does.
#pragma once

namespace featx {

struct SamePadding {
  int out = 0;         // output size along this axis
  int pad_before = 0;  // zeros before the first input element
};

inline SamePadding same_padding(int in, int kernel, int stride) {
  SamePadding p;
  p.out = (in + stride - 1) / stride;
  int total = (p.out - 1) * stride + kernel - in;
  if (total < 0) total = 0;
  p.pad_before = total / 2;
  return p;
}

}  // namespace featx
