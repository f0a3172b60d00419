#pragma once
// CAMKit's glue for oneDNN convolutions (fp32: forward inference and backward data); see cdnnl.c.
#include <stddef.h>
#include <stdint.h>

/// One convolution, or one part of it: the whole problem is `n × c × h × w` input, `o` output
/// channels, `kh × kw` kernel with strides, dilations (1 = dense), pads and groups; the part
/// computes images [n0, n1), output rows [oh0, oh1) and output channels [o0, o1) (aligned to
/// groups when groups > 1), reading its inputs from and writing its outputs into the whole NCHW
/// tensors. `activation`: 0 none, 1 ReLU, 2 clip(lo, hi), applied after the bias. `threads`: the
/// OpenMP threads the part runs on (1 when the caller splits the work over its own threads).
/// A backward-data part (``cdnnl_conv_bwd_create``) computes the input gradient of images
/// [n0, n1) and input channels [c0, c1) (whole groups when groups > 1); it ignores oh0, oh1,
/// o0, o1 and the activation.
typedef struct cdnnl_conv_params {
    int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
    int64_t n0, n1, oh0, oh1, o0, o1, c0, c1;
    int activation;
    float lo, hi;
    int threads;
} cdnnl_conv_params;

/// A prepared convolution (part): a oneDNN primitive, its reordered filter, its reorders.
typedef struct cdnnl_conv cdnnl_conv;

/// Creates oneDNN's CPU engine and stream once (thread-safe). Returns 0 on success.
int cdnnl_init(void);

/// Makes the primitive for `p`, reordering `weights` (the whole OIHW filter, `o × c/groups × kh ×
/// kw` floats) once; `bias` (`o` floats) may be NULL. Returns NULL when oneDNN cannot do it (the
/// caller then uses its own kernels). Call cdnnl_init first.
cdnnl_conv *cdnnl_conv_create(const cdnnl_conv_params *p, const float *weights, const float *bias);

/// Frees everything `c` owns (NULL is allowed).
void cdnnl_conv_destroy(cdnnl_conv *c);

/// The implementation oneDNN chose (e.g. "brgconv:avx512_core", "jit_dw:avx512_core").
const char *cdnnl_conv_impl(const cdnnl_conv *c);

/// y (NCHW) = activation(conv(x (NCHW)) + bias), for the part `c` was made for (`x` and `y` are
/// the whole tensors; parts write disjoint elements of `y` and may run concurrently). Returns 0
/// on success, -1 on failure (out of memory or a oneDNN error; `y` is then unspecified).
int cdnnl_conv_forward(const cdnnl_conv *c, const float *x, float *y);

/// Makes a backward-data primitive (the input gradient) for the part of `p` (images [n0, n1),
/// input channels [c0, c1)), reordering its slice of `weights` (the whole OIHW filter) once.
/// Returns NULL when oneDNN cannot do it. Call cdnnl_init first.
cdnnl_conv *cdnnl_conv_bwd_create(const cdnnl_conv_params *p, const float *weights);

/// dx (NCHW) = the input gradient of the convolution given dy (NCHW), for the part `c` was made
/// for by ``cdnnl_conv_bwd_create`` (`dy` and `dx` are the whole tensors; parts write disjoint
/// elements of `dx` and may run concurrently). Returns 0 on success, -1 on failure.
int cdnnl_conv_backward_data(const cdnnl_conv *c, const float *dy, float *dx);

// MARK: - Channels-last (NHWC) convolutions and layout conversions (regions of a plan)

/// One convolution on channels-last activations: `x` is NHWC (`n × h × w × c`), `y` NHWC
/// (`n × oh × ow × o`), filter OIHW, `groups` as ONNX. Post-ops in this order: `activation`
/// (0 none, 1 ReLU, 2 clip(lo, hi)) after the bias; if `accumulate`, the sum `y = that + y`
/// (y holds the residual on entry); then `post_activation` (same encoding, post_lo / post_hi).
/// `parts`: how many single-threaded parts to split the work into (images when n ≥ parts, else
/// output rows, or output positions for 1×1 stride-1 unpadded convolutions); the object may
/// make fewer (``cdnnl_nhwc_conv_parts``).
typedef struct cdnnl_nhwc_conv_params {
    int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
    int activation;
    float lo, hi;
    int accumulate;
    int post_activation;
    float post_lo, post_hi;
    int parts;
} cdnnl_nhwc_conv_params;

/// A channels-last convolution split into parts (primitives, the filter reordered once).
typedef struct cdnnl_nhwc_conv cdnnl_nhwc_conv;

/// Makes the parts of `p` (filter `weights` OIHW, `bias` `o` floats or NULL). Returns NULL when
/// oneDNN cannot do it, or only with its reference kernels. Call cdnnl_init first.
cdnnl_nhwc_conv *cdnnl_nhwc_conv_create(const cdnnl_nhwc_conv_params *p, const float *weights, const float *bias);

/// The number of parts `c` was split into.
int cdnnl_nhwc_conv_parts(const cdnnl_nhwc_conv *c);

/// The implementation oneDNN chose for part 0 (e.g. "brgconv:avx512_core").
const char *cdnnl_nhwc_conv_impl(const cdnnl_nhwc_conv *c);

/// Runs part `part` (0 ≤ part < parts; parts write disjoint elements of `y` and may run
/// concurrently): `x` and `y` are the whole NHWC tensors. Returns 0 on success, -1 on failure.
int cdnnl_nhwc_conv_forward(const cdnnl_nhwc_conv *c, int part, const float *x, float *y);

/// Frees everything `c` owns (NULL is allowed).
void cdnnl_nhwc_conv_destroy(cdnnl_nhwc_conv *c);

/// A conversion of an `n × c × h × w` tensor between NCHW and NHWC (`to_nhwc` 1: NCHW → NHWC,
/// 0: NHWC → NCHW), split into at most `parts` single-threaded parts (images, else rows).
typedef struct cdnnl_layout_reorder cdnnl_layout_reorder;

/// Makes the conversion, or NULL when oneDNN cannot. Call cdnnl_init first.
cdnnl_layout_reorder *cdnnl_layout_reorder_create(int64_t n, int64_t c, int64_t h, int64_t w, int to_nhwc, int parts);

/// The number of parts `r` was split into.
int cdnnl_layout_reorder_parts(const cdnnl_layout_reorder *r);

/// Runs part `part` from `from` (the whole source tensor) into `to` (the whole destination).
/// Returns 0 on success, -1 on failure.
int cdnnl_layout_reorder_run(const cdnnl_layout_reorder *r, int part, const float *from, float *to);

/// Frees `r` (NULL is allowed).
void cdnnl_layout_reorder_destroy(cdnnl_layout_reorder *r);

// MARK: - Channels-last (NHWC) backward data (input gradients)

/// A row-major single-precision GEMM, `C = alpha · op(A) · op(B) + beta · C` (transa / transb
/// nonzero: transposed), run on the calling thread (e.g. a single-threaded cblas_sgemm).
typedef void (*cdnnl_sgemm_fn)(int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                               const float *b, int ldb, float beta, float *c, int ldc);

/// The input gradient of a convolution on channels-last activations: dx (NHWC, `n × h × w × c`)
/// from dy (NHWC, `n × oh × ow × o`), filter OIHW, shapes and `groups` as ONNX Conv (as
/// ``cdnnl_nhwc_conv_params``). `accumulate`: add to dx instead of overwriting it. `parts`: how
/// many single-threaded parts to split the work into (images when n ≥ parts, else bands of input
/// rows with the output rows that reach them; a 1×1 stride-1 unpadded GEMM, or an accumulating
/// oneDNN one, splits the positions of the whole batch). `method`: 0 oneDNN backward-data
/// primitives, 1 GEMM + col2im (for few input channels per group). `tile_elements`: floats of dx
/// per accumulating oneDNN tile, or of the GEMM's column buffer per chunk (0: 65536). `gemm`: the
/// GEMM of method 1 (NULL: oneDNN's dnnl_sgemm, single-threaded). `portable`: nonzero to use the
/// portable col2im and add loops even where AVX-512 is available (for tests).
typedef struct cdnnl_nhwc_bwd_params {
    int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
    int accumulate;
    int parts;
    int method;
    int64_t tile_elements;
    cdnnl_sgemm_fn gemm;
    int portable;
} cdnnl_nhwc_bwd_params;

/// A channels-last backward-data convolution split into parts.
typedef struct cdnnl_nhwc_bwd cdnnl_nhwc_bwd;

/// Makes the parts of `p` (filter `weights` OIHW, copied / reordered). Returns NULL when oneDNN
/// cannot do it or only with its reference kernels (method 0), or out of memory. Call cdnnl_init first.
cdnnl_nhwc_bwd *cdnnl_nhwc_bwd_create(const cdnnl_nhwc_bwd_params *p, const float *weights);

/// The number of parts `b` was split into.
int cdnnl_nhwc_bwd_parts(const cdnnl_nhwc_bwd *b);

/// The implementation: oneDNN's name for its first primitive (e.g. "jit_1x1:avx512_core"), or
/// "gemm-col2im" / "gemm" (method 1).
const char *cdnnl_nhwc_bwd_impl(const cdnnl_nhwc_bwd *b);

/// Runs part `part` (0 ≤ part < parts; parts write disjoint elements of `dx` and may run
/// concurrently): `dy` and `dx` are the whole NHWC tensors. Returns 0 on success, -1 on failure
/// (dx is then unspecified).
int cdnnl_nhwc_bwd_run(const cdnnl_nhwc_bwd *b, int part, const float *dy, float *dx);

/// Frees everything `b` owns (NULL is allowed).
void cdnnl_nhwc_bwd_destroy(cdnnl_nhwc_bwd *b);
