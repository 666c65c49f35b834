//! rowsim workloads: CONV layer shapes ([`ConvLayer`]), the built-in networks (AlexNet in its
//! grouped original, VGG-16), synthetic tensors from a seed, and the reference convolution that
//! every end-to-end run is checked against.

pub mod import;
pub mod layer;
pub mod tensor;

pub use import::{scalesim_csv, timeloop_yaml, ImportError};
pub use layer::{
    alexnet, alexnet_fc, layer, network, printable, vgg16, vgg16_fc, ConvLayer, ShapeError,
    MAX_DIM, MAX_TENSOR_ELEMENTS, NETWORKS,
};
pub use tensor::{
    keep_largest, kept, ofmap_dims, reference_conv, reference_conv_plain, reference_conv_until,
    synthetic_filters, synthetic_ifmap, synthetic_weights, Formats, SplitMix64, Tensor, Weights,
};
