// CKernels: hand-tuned C kernels for TensorCore.
//
// Every kernel is compiled several times — for AVX-512F, for AVX2+FMA and portably — with
// per-function `__attribute__((target(...)))`, and the variant is chosen at run time with
// `__builtin_cpu_supports`, so the package builds without any compiler flags and runs on any
// x86-64 (or non-x86) CPU.
//
// Layouts: images are NCHW planes, row-major; filters are OIHW. All pointers are Float32.
#ifndef CKERNELS_H
#define CKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The geometry of one 2-D convolution (or pooling window) over a single plane.
///
/// `C` is the number of input channels a kernel call sees (per group for im2col). The bottom and
/// right paddings are implied by `OH`, `OW`: the window of output row `oy` starts at input row
/// `oy * SH - PT` and covers rows `oy * SH - PT + ki * DH` for `ki` in `0..<KH`.
typedef struct ck_conv_geom {
    int C, H, W;      ///< input channels, height, width
    int KH, KW;       ///< kernel (window) height and width
    int SH, SW;       ///< strides
    int DH, DW;       ///< dilations
    int PT, PL;       ///< top and left padding
    int OH, OW;       ///< output height and width
} ck_conv_geom;

/// A hint to the CPU that the caller is spinning on a flag (x86 `pause`, Arm `yield`): saves
/// power and lets the sibling hyper-thread run. Used by TensorCore's worker pool.
static inline void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// How many `parallelFor` chunks the calling thread is inside (0 on a thread not running one;
/// TensorCore's worker pool keeps it). Thread-local.
int ck_parallel_depth(void);
/// Adds `delta` to the calling thread's ``ck_parallel_depth``.
void ck_parallel_depth_add(int delta);

/// The calling thread's thread-count override (0: none); see `ComputeSettings.withThreadCount`.
int ck_thread_count_override(void);
/// Sets the calling thread's thread-count override (0 removes it).
void ck_set_thread_count_override(int count);

/// The instruction set the dispatching kernels use: 3 = AVX-512F, 2 = AVX2+FMA, 0 = portable.
int ck_isa_level(void);

/// Overrides the instruction set (for tests and benchmarks): 3, 2 or 0; values the CPU does not
/// support are lowered. Pass -1 to return to automatic detection.
void ck_set_isa_level(int level);

/// im2col: writes the patches of channels `c0..<c1` (of the image at `x`, channel 0) for the
/// output positions `p0..<p1` (flattened `oy * OW + ox`) into `col`, a row-major matrix of
/// `(c1 - c0) * KH * KW` rows with row stride `ldcol`; row `(c - c0) * KH * KW + ki * KW + kj`.
/// Taps that fall in the padding are written as zeros.
void ck_im2col(const float *x, const ck_conv_geom *g, int c0, int c1, int p0, int p1,
               float *col, long ldcol);

/// col2im: the adjoint of `ck_im2col`: adds every element of `col` (same layout, positions
/// `p0..<p1`, channels `c0..<c1`) into the image gradient `dx` (channel 0 at `dx`). Taps in
/// the padding are dropped.
void ck_col2im(const float *col, long ldcol, const ck_conv_geom *g, int c0, int c1, int p0, int p1,
               float *dx);

/// The output epilogue of a convolution: for each of `rows` rows (channels) of `y` (row stride
/// `ldy`, `cols` elements each) adds `bias[r]` (when `bias` is not NULL) and, when `clamp` is
/// non-zero, clamps to `[lo, hi]` (ReLU is `lo = 0, hi = +inf`).
void ck_bias_activation(float *y, int rows, int cols, long ldy, const float *bias,
                        int clamp, float lo, float hi);

/// Depthwise convolution (groups == input channels; each input channel `c` feeds the
/// `multiplier` output channels `c * multiplier ..< (c + 1) * multiplier`), direct SIMD kernel,
/// specialised for 3x3 and 5x5. Computes the output planes `plane0..<plane1`, numbered
/// `n * O + o` with `O = g->C * multiplier`. `w` is `O x KH x KW`; `bias` (length O) may be NULL;
/// `clamp`, `lo`, `hi` as in `ck_bias_activation`. Returns 0, or -1 if scratch memory could not
/// be allocated.
int ck_depthwise_conv2d(const float *x, const float *w, const float *bias, float *y,
                        const ck_conv_geom *g, int multiplier, int plane0, int plane1,
                        int clamp, float lo, float hi);

/// The input gradient of ``ck_depthwise_conv2d``: writes (overwrites) the input-gradient planes
/// `plane0..<plane1` (numbered `n * C + c`) from the output gradient `dy`. Returns 0 or -1.
int ck_depthwise_conv2d_backward_input(const float *dy, const float *w, float *dx,
                                       const ck_conv_geom *g, int multiplier, int plane0, int plane1);

/// The filter gradient of ``ck_depthwise_conv2d``: writes (overwrites) `dw[o]` (each `KH x KW`)
/// for output channels `o0..<o1`, summing over the `batch` images. Returns 0 or -1.
int ck_depthwise_conv2d_backward_filter(const float *x, const float *dy, float *dw,
                                        const ck_conv_geom *g, int multiplier, int batch, int o0, int o1);

/// Max pooling (ONNX MaxPool / PyTorch `max_pool2d`) of the planes `plane0..<plane1` (`x`, `y`
/// point at plane 0; `g->C` is unused): padded taps never win, a NaN in a window is its maximum,
/// a window without input taps yields `-FLT_MAX`. Returns 0, or -1 if scratch memory could not
/// be allocated.
int ck_maxpool2d(const float *x, float *y, const ck_conv_geom *g, int plane0, int plane1);

/// The pullback of ``ck_maxpool2d``: adds each output gradient of planes `plane0..<plane1` to the
/// input element that won its window — the first NaN if the window has one, else the first
/// maximum in scan order (PyTorch's CPU rule). `dx` must hold zeros (or gradients to add to).
/// Returns 0 or -1.
int ck_maxpool2d_backward(const float *x, const float *dy, float *dx, const ck_conv_geom *g,
                          int plane0, int plane1);

/// Max pooling of a channels-last (NHWC) tensor: `x` is `[N, H, W, C]` (`C = g->C`), `y` is
/// `[N, OH, OW, C]`; computes the output rows `row0..<row1`, numbered `n * OH + oy`. The numbers
/// of ``ck_maxpool2d`` (NaN wins, `-FLT_MAX` for a window without input taps or of -inf taps).
/// When `argmax` is not NULL, also writes there (`[N, OH, OW, C]` elements of `argmax_bytes` =
/// 1, 2 or 4 bytes, unsigned) each window's winner as its window offset `ki * KW + kj` — the
/// element ``ck_maxpool2d_backward`` gives the gradient to (0 for a window without input taps).
/// Returns 0, or -1 if scratch memory could not be allocated.
int ck_maxpool2d_nhwc(const float *x, float *y, void *argmax, int argmax_bytes, const ck_conv_geom *g,
                      long row0, long row1);

/// The pullback of ``ck_maxpool2d_nhwc`` from its recorded argmax: writes (overwrites) the input
/// gradient rows `row0..<row1` of `dx` (`[N, H, W, C]`, rows numbered `n * H + iy`): each
/// element is the sum, in the order ``ck_maxpool2d_backward`` adds them, of the output gradients
/// `dy` (`[N, OH, OW, C]`) of the windows it won (0 if none). Returns 0 or -1.
int ck_maxpool2d_nhwc_backward(const float *dy, const void *argmax, int argmax_bytes, float *dx,
                               const ck_conv_geom *g, long row0, long row1);

#ifdef __cplusplus
}
#endif

#endif
