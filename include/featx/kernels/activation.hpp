// featx/kernels/activation.hpp: the clamps that follow a conv.
#pragma once

namespace featx {

enum class Activation { none, relu6, relu };

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu6: return "relu6";
    case Activation::relu: return "relu";
    default: return "none";
  }
}


// Applied to the accumulator before the one rounding to float; a clamp to 0
// and 6 commutes with rounding, so this equals TF's round-then-clamp.
template <typename T>
inline T apply_activation(T x, Activation a) {
  if (a == Activation::none) return x;
  if (x < T(0)) x = T(0);  // also maps -0 and tiny negatives to +0, like TF
  if (a == Activation::relu6 && x > T(6)) x = T(6);
  return x;
}

}  // namespace featx
