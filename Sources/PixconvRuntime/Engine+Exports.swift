// The models are written against the engine's types (Weights, LinearWeight, Kernels, Attention,
// Conv2d, GroupNorm); users of PixconvRuntime see them too.
@_exported import PixconvEngine
