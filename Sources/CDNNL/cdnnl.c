// CAMKit's glue for oneDNN convolutions (fp32): forward inference, and backward data (input
// gradients, at the end of this file).
//
// A `cdnnl_conv` is made once per convolution shape (a plan specialises per input shape): it
// holds a oneDNN convolution primitive in the layouts oneDNN prefers (`format_tag::any`, on
// AVX-512 machines nChw16c activations), the filter reordered once into the primitive's layout,
// the bias, and the two reorders that convert CAMKit's NCHW input and output to and from those
// layouts. `cdnnl_conv_forward` runs reorder → convolution (bias and activation fused as oneDNN
// post-ops) → reorder, with the blocked intermediates in grow-only per-thread buffers.
//
// Threads: Debian's libdnnl uses the OpenMP runtime; the primitive is made and run with
// `omp_set_num_threads(threads)` on the calling thread. CAMKit normally splits a convolution into
// parts with `threads = 1` and runs them on its own threads (TensorCore's PreparedConvolution).
// Debian 12: libdnnl-dev 2.6.3 (no pkg-config file; linked as -ldnnl -lgomp).
// Semantics follow ONNX Conv: cross-correlation, zero padding (asymmetric allowed), dilations,
// groups (OIHW filters; depthwise is groups == C). oneDNN counts dilation from 0 (d − 1).
#include "cdnnl.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void omp_set_num_threads(int);

struct cdnnl_conv {
    dnnl_primitive_t conv, src_reorder, dst_reorder;  // reorders NULL when the layouts agree
    dnnl_memory_desc_t src_user, dst_user, src_md, dst_md, weights_md, bias_md, scratchpad_md;
    void *weights;          // in the primitive's layout
    float *bias;            // zeros when the convolution has none
    size_t src_bytes, dst_bytes, scratchpad_bytes;
    size_t x_offset, y_offset;  // of the part's first element in the whole input / output (floats)
    int threads;
    char impl[64];
};

static dnnl_engine_t cdnnl_engine_;
static dnnl_stream_t cdnnl_stream_;
static int cdnnl_ready_ = 0;

static void cdnnl_init_once_(void) {
    if (dnnl_engine_create(&cdnnl_engine_, dnnl_cpu, 0) != dnnl_success
        || dnnl_stream_create(&cdnnl_stream_, cdnnl_engine_, dnnl_stream_default_flags) != dnnl_success) {
        cdnnl_ready_ = -1;
        return;
    }
    cdnnl_ready_ = 1;
}

int cdnnl_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cdnnl_init_once_);
    return cdnnl_ready_ > 0 ? 0 : -1;
}

static void *cdnnl_alloc_(size_t bytes) {
    return aligned_alloc(64, ((bytes + 63) / 64) * 64 + 64);
}

/// Grow-only per-thread buffers for the blocked input, the blocked output and oneDNN's scratchpad.
static __thread void *cdnnl_scratch_[3];
static __thread size_t cdnnl_scratch_size_[3];

static void *cdnnl_scratch(int which, size_t bytes) {
    if (cdnnl_scratch_size_[which] < bytes) {
        free(cdnnl_scratch_[which]);
        cdnnl_scratch_[which] = cdnnl_alloc_(bytes);
        cdnnl_scratch_size_[which] = cdnnl_scratch_[which] ? bytes : 0;
    }
    return cdnnl_scratch_[which];
}

static dnnl_primitive_t cdnnl_reorder_(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, from, cdnnl_engine_, to, cdnnl_engine_, NULL) != dnnl_success)
        return NULL;
    dnnl_primitive_t p = NULL;
    if (dnnl_primitive_create(&p, pd) != dnnl_success) p = NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static int cdnnl_run_reorder_(dnnl_primitive_t r, const dnnl_memory_desc_t *from_md, const void *from,
                                     const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_memory_t a, b;
    if (dnnl_memory_create(&a, from_md, cdnnl_engine_, (void *)from) != dnnl_success) return -1;
    if (dnnl_memory_create(&b, to_md, cdnnl_engine_, to) != dnnl_success) { dnnl_memory_destroy(a); return -1; }
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
    dnnl_status_t s = dnnl_primitive_execute(r, cdnnl_stream_, 2, args);
    dnnl_memory_destroy(a);
    dnnl_memory_destroy(b);
    return s == dnnl_success ? 0 : -1;
}

void cdnnl_conv_destroy(cdnnl_conv *c) {
    if (!c) return;
    if (c->conv) dnnl_primitive_destroy(c->conv);
    if (c->src_reorder) dnnl_primitive_destroy(c->src_reorder);
    if (c->dst_reorder) dnnl_primitive_destroy(c->dst_reorder);
    free(c->weights);
    free(c->bias);
    free(c);
}

/// Makes the primitive for `p`, reordering `weights` (OIHW, `o × c/groups × kh × kw` floats)
/// once; `bias` (`o` floats) may be NULL. Returns NULL when oneDNN cannot do it (the caller then
/// uses its own kernels). Call cdnnl_init first.
/// Completes `c` from its primitive descriptor: the implementation's name, the layouts the
/// primitive chose for what it reads (`src_query`) and writes (`dst_query`) and for its filter,
/// its scratchpad, the primitive, and reorders from and to the caller's NCHW layouts
/// (`src_user`, `dst_user`) where they differ. Returns 0 on success.
static int cdnnl_conv_finish_(cdnnl_conv *c, const_dnnl_primitive_desc_t pd, dnnl_query_t src_query,
                              dnnl_query_t dst_query) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    strncpy(c->impl, impl ? impl : "?", sizeof c->impl - 1);
    c->src_md = *dnnl_primitive_desc_query_md(pd, src_query, 0);
    c->dst_md = *dnnl_primitive_desc_query_md(pd, dst_query, 0);
    c->weights_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    c->scratchpad_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    c->scratchpad_bytes = dnnl_memory_desc_get_size(&c->scratchpad_md);
    if (dnnl_primitive_create(&c->conv, pd) != dnnl_success) return -1;
    if (!dnnl_memory_desc_equal(&c->src_md, &c->src_user) && !(c->src_reorder = cdnnl_reorder_(&c->src_user, &c->src_md)))
        return -1;
    if (!dnnl_memory_desc_equal(&c->dst_md, &c->dst_user) && !(c->dst_reorder = cdnnl_reorder_(&c->dst_md, &c->dst_user)))
        return -1;
    c->src_bytes = dnnl_memory_desc_get_size(&c->src_md);
    c->dst_bytes = dnnl_memory_desc_get_size(&c->dst_md);
    return 0;
}

cdnnl_conv *cdnnl_conv_create(const cdnnl_conv_params *p, const float *weights, const float *bias) {
    if (cdnnl_ready_ <= 0) return NULL;
    if (p->groups < 1 || p->c % p->groups || p->o % p->groups) return NULL;
    int64_t oh = (p->h + p->pt + p->pb - ((p->kh - 1) * p->dh + 1)) / p->sh + 1;
    int64_t ow = (p->w + p->pl + p->pr - ((p->kw - 1) * p->dw + 1)) / p->sw + 1;
    if (oh <= 0 || ow <= 0) return NULL;
    if (!(0 <= p->n0 && p->n0 < p->n1 && p->n1 <= p->n && 0 <= p->oh0 && p->oh0 < p->oh1 && p->oh1 <= oh
          && 0 <= p->o0 && p->o0 < p->o1 && p->o1 <= p->o)) return NULL;
    int64_t og = p->o / p->groups, cg = p->c / p->groups;
    int grouped = p->groups > 1;
    if (grouped && (p->o0 % og || p->o1 % og)) return NULL;
    // The part: its groups and input channels, and the input rows its output rows read.
    int64_t groups = grouped ? (p->o1 - p->o0) / og : 1;
    int64_t c_off = grouped ? p->o0 / og * cg : 0, c_sub = grouped ? groups * cg : p->c;
    int64_t o_sub = p->o1 - p->o0, n_sub = p->n1 - p->n0, oh_sub = p->oh1 - p->oh0;
    int64_t ih0 = p->oh0 * p->sh - p->pt, ih1 = (p->oh1 - 1) * p->sh - p->pt + (p->kh - 1) * p->dh + 1;
    int64_t r0 = ih0 < 0 ? 0 : ih0, r1 = ih1 > p->h ? p->h : ih1;
    int64_t pad_top = r0 - ih0, pad_bottom = ih1 - r1, rows = r1 - r0;
    if (rows <= 0) return NULL;
    cdnnl_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->threads = p->threads;
    c->x_offset = (size_t)(p->n0 * p->c * p->h * p->w + c_off * p->h * p->w + r0 * p->w);
    c->y_offset = (size_t)(p->n0 * p->o * oh * ow + p->o0 * oh * ow + p->oh0 * ow);
    omp_set_num_threads(p->threads);
    dnnl_dims_t src_dims = {n_sub, c_sub, rows, p->w}, dst_dims = {n_sub, o_sub, oh_sub, ow}, bias_dims = {o_sub};
    dnnl_dims_t src_strides = {p->c * p->h * p->w, p->h * p->w, p->w, 1};
    dnnl_dims_t dst_strides = {p->o * oh * ow, oh * ow, ow, 1};
    dnnl_dims_t w5 = {groups, og, cg, p->kh, p->kw};
    dnnl_dims_t w4 = {o_sub, p->c, p->kh, p->kw};
    dnnl_memory_desc_t w_user, w_any;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_t wr = NULL;
    void *w_copy = NULL;
#define CDNNL_TRY(call) do { if ((call) != dnnl_success) goto fail; } while (0)
    CDNNL_TRY(dnnl_memory_desc_init_by_strides(&c->src_user, 4, src_dims, dnnl_f32, src_strides));
    CDNNL_TRY(dnnl_memory_desc_init_by_strides(&c->dst_user, 4, dst_dims, dnnl_f32, dst_strides));
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&c->bias_md, 1, bias_dims, dnnl_f32, dnnl_x));
    if (grouped) {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 5, w5, dnnl_f32, dnnl_goihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, w5, dnnl_f32, dnnl_format_tag_any));
    } else {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, w4, dnnl_f32, dnnl_oihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, w4, dnnl_f32, dnnl_format_tag_any));
    }
    dnnl_memory_desc_t src_any, dst_any;
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any));
    dnnl_dims_t strides = {p->sh, p->sw}, dilates = {p->dh - 1, p->dw - 1};
    dnnl_dims_t pad_l = {pad_top, p->pl}, pad_r = {pad_bottom, p->pr};
    dnnl_convolution_desc_t desc;
    CDNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                         &src_any, &w_any, &c->bias_md, &dst_any, strides,
                                                         dilates, pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_attr_create(&attr));
    // Our own scratchpad per thread: the library's is shared between primitives and crashed
    // (gemm-based grouped convolutions) when parts ran concurrently.
    CDNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (p->activation != 0) {
        CDNNL_TRY(dnnl_post_ops_create(&ops));
        if (p->activation == 1) CDNNL_TRY(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        else CDNNL_TRY(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_clip_v2, p->lo, p->hi));
        CDNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    CDNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, cdnnl_engine_, NULL));
    if (cdnnl_conv_finish_(c, pd, dnnl_query_src_md, dnnl_query_dst_md) != 0) goto fail;
    // Filter: reorder once (a copy of the user's, so the primitive does not depend on its lifetime).
    c->weights = cdnnl_alloc_(dnnl_memory_desc_get_size(&c->weights_md));
    size_t w_bytes = dnnl_memory_desc_get_size(&w_user);
    w_copy = cdnnl_alloc_(w_bytes);
    if (!c->weights || !w_copy) goto fail;
    memcpy(w_copy, weights + p->o0 * cg * p->kh * p->kw, w_bytes);
    if (dnnl_memory_desc_equal(&c->weights_md, &w_user)) {
        memcpy(c->weights, w_copy, w_bytes);
    } else {
        if (!(wr = cdnnl_reorder_(&w_user, &c->weights_md))) goto fail;
        if (cdnnl_run_reorder_(wr, &w_user, w_copy, &c->weights_md, c->weights) != 0) goto fail;
        dnnl_stream_wait(cdnnl_stream_);
    }
    c->bias = cdnnl_alloc_(o_sub * sizeof(float));
    if (!c->bias) goto fail;
    if (bias) memcpy(c->bias, bias + p->o0, o_sub * sizeof(float));
    else memset(c->bias, 0, o_sub * sizeof(float));
    if (wr) dnnl_primitive_destroy(wr);
    free(w_copy);
    if (ops) dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return c;
fail:
    if (wr) dnnl_primitive_destroy(wr);
    free(w_copy);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    cdnnl_conv_destroy(c);
    return NULL;
#undef CDNNL_TRY
}

/// The implementation oneDNN chose (e.g. "brgconv:avx512_core", "jit_dw:avx512_core").
const char *cdnnl_conv_impl(const cdnnl_conv *c) { return c->impl; }

/// y (NCHW) = activation(conv(x (NCHW)) + bias), for the part `c` was made for (`x` and `y` are
/// the whole tensors; parts write disjoint elements of `y` and may run concurrently). Returns 0
/// on success, -1 on failure (out of memory or a oneDNN error; `y` is then unspecified).
int cdnnl_conv_forward(const cdnnl_conv *c, const float *x, float *y) {
    omp_set_num_threads(c->threads);
    x += c->x_offset;
    y += c->y_offset;
    void *xs = (void *)x, *ys = y;
    if (c->src_reorder) {
        xs = cdnnl_scratch(0, c->src_bytes);
        if (!xs || cdnnl_run_reorder_(c->src_reorder, &c->src_user, x, &c->src_md, xs) != 0) return -1;
    }
    if (c->dst_reorder) {
        ys = cdnnl_scratch(1, c->dst_bytes);
        if (!ys) return -1;
    }
    dnnl_memory_t ms, mw, mb, md;
    if (dnnl_memory_create(&ms, &c->src_md, cdnnl_engine_, xs) != dnnl_success) return -1;
    if (dnnl_memory_create(&mw, &c->weights_md, cdnnl_engine_, c->weights) != dnnl_success) {
        dnnl_memory_destroy(ms); return -1;
    }
    if (dnnl_memory_create(&md, &c->dst_md, cdnnl_engine_, ys) != dnnl_success) {
        dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); return -1;
    }
    if (dnnl_memory_create(&mb, &c->bias_md, cdnnl_engine_, c->bias) != dnnl_success) {
        dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md); return -1;
    }
    dnnl_memory_t mp = NULL;
    void *pad = c->scratchpad_bytes ? cdnnl_scratch(2, c->scratchpad_bytes) : NULL;
    if ((c->scratchpad_bytes && !pad)
        || dnnl_memory_create(&mp, &c->scratchpad_md, cdnnl_engine_, pad) != dnnl_success) {
        dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md); dnnl_memory_destroy(mb);
        return -1;
    }
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md},
                               {DNNL_ARG_SCRATCHPAD, mp}};
    dnnl_status_t s = dnnl_primitive_execute(c->conv, cdnnl_stream_, 5, args);
    dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md); dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mp);
    if (s != dnnl_success) return -1;
    if (c->dst_reorder && cdnnl_run_reorder_(c->dst_reorder, &c->dst_md, ys, &c->dst_user, y) != 0) return -1;
    return 0;
}

// MARK: - Backward data (the input gradient)
//
// A backward-data `cdnnl_conv` reuses the fields of the forward one with the roles of the two
// activations swapped: `src_*` describe dy (read, reordered NCHW → blocked), `dst_*` describe dx
// (written, reordered blocked → NCHW); `x_offset` / `y_offset` locate the part's first dy / dx
// element. The primitive needs a forward primitive descriptor as a hint (oneDNN picks matching
// layouts); it is made for `forward_training` with the same shapes and discarded.

cdnnl_conv *cdnnl_conv_bwd_create(const cdnnl_conv_params *p, const float *weights) {
    if (cdnnl_ready_ <= 0) return NULL;
    if (p->groups < 1 || p->c % p->groups || p->o % p->groups) return NULL;
    int64_t oh = (p->h + p->pt + p->pb - ((p->kh - 1) * p->dh + 1)) / p->sh + 1;
    int64_t ow = (p->w + p->pl + p->pr - ((p->kw - 1) * p->dw + 1)) / p->sw + 1;
    if (oh <= 0 || ow <= 0) return NULL;
    if (!(0 <= p->n0 && p->n0 < p->n1 && p->n1 <= p->n && 0 <= p->c0 && p->c0 < p->c1 && p->c1 <= p->c))
        return NULL;
    int64_t og = p->o / p->groups, cg = p->c / p->groups;
    int grouped = p->groups > 1;
    if (grouped && (p->c0 % cg || p->c1 % cg)) return NULL;
    int64_t groups = grouped ? (p->c1 - p->c0) / cg : 1;
    int64_t c_sub = p->c1 - p->c0, n_sub = p->n1 - p->n0;
    int64_t o_off = grouped ? p->c0 / cg * og : 0, o_sub = grouped ? groups * og : p->o;
    cdnnl_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->threads = p->threads;
    c->x_offset = (size_t)(p->n0 * p->o * oh * ow + o_off * oh * ow);
    c->y_offset = (size_t)(p->n0 * p->c * p->h * p->w + p->c0 * p->h * p->w);
    omp_set_num_threads(p->threads);
    dnnl_dims_t dy_dims = {n_sub, o_sub, oh, ow}, dx_dims = {n_sub, c_sub, p->h, p->w};
    dnnl_dims_t dy_strides = {p->o * oh * ow, oh * ow, ow, 1};
    dnnl_dims_t dx_strides = {p->c * p->h * p->w, p->h * p->w, p->w, 1};
    dnnl_dims_t w5 = {groups, og, cg, p->kh, p->kw};
    dnnl_dims_t w4 = {p->o, c_sub, p->kh, p->kw};
    dnnl_memory_desc_t w_user, w_any, dy_any, dx_any, no_bias;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_t wr = NULL;
    float *w_copy = NULL;
    size_t taps = (size_t)(p->kh * p->kw);
#define CDNNL_TRY(call) do { if ((call) != dnnl_success) goto fail; } while (0)
    CDNNL_TRY(dnnl_memory_desc_init_by_strides(&c->src_user, 4, dy_dims, dnnl_f32, dy_strides));
    CDNNL_TRY(dnnl_memory_desc_init_by_strides(&c->dst_user, 4, dx_dims, dnnl_f32, dx_strides));
    if (grouped) {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 5, w5, dnnl_f32, dnnl_goihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, w5, dnnl_f32, dnnl_format_tag_any));
    } else {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, w4, dnnl_f32, dnnl_oihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, w4, dnnl_f32, dnnl_format_tag_any));
    }
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&dy_any, 4, dy_dims, dnnl_f32, dnnl_format_tag_any));
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&dx_any, 4, dx_dims, dnnl_f32, dnnl_format_tag_any));
    memset(&no_bias, 0, sizeof no_bias);
    dnnl_dims_t strides = {p->sh, p->sw}, dilates = {p->dh - 1, p->dw - 1};
    dnnl_dims_t pad_l = {p->pt, p->pl}, pad_r = {p->pb, p->pr};
    dnnl_convolution_desc_t fwd_desc, desc;
    CDNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, dnnl_convolution_direct,
                                                         &dx_any, &w_any, &no_bias, &dy_any, strides, dilates,
                                                         pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_desc_create(&fwd_pd, &fwd_desc, NULL, cdnnl_engine_, NULL));
    CDNNL_TRY(dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &dx_any, &w_any,
                                                               &dy_any, strides, dilates, pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_attr_create(&attr));
    CDNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    CDNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, cdnnl_engine_, fwd_pd));
    // The primitive reads dy (its "source" here) and writes dx.
    if (cdnnl_conv_finish_(c, pd, dnnl_query_diff_dst_md, dnnl_query_diff_src_md) != 0) goto fail;
    // The part's filter slice, contiguous: grouped, the groups' whole filters (consecutive);
    // otherwise input channels [c0, c1) of every output channel.
    c->weights = cdnnl_alloc_(dnnl_memory_desc_get_size(&c->weights_md));
    size_t w_bytes = dnnl_memory_desc_get_size(&w_user);
    w_copy = cdnnl_alloc_(w_bytes);
    if (!c->weights || !w_copy) goto fail;
    if (grouped) {
        memcpy(w_copy, weights + (size_t)o_off * cg * taps, w_bytes);
    } else {
        for (int64_t o = 0; o < p->o; o++)
            memcpy(w_copy + (size_t)o * c_sub * taps, weights + ((size_t)o * p->c + p->c0) * taps,
                   (size_t)c_sub * taps * sizeof(float));
    }
    if (dnnl_memory_desc_equal(&c->weights_md, &w_user)) {
        memcpy(c->weights, w_copy, w_bytes);
    } else {
        if (!(wr = cdnnl_reorder_(&w_user, &c->weights_md))) goto fail;
        if (cdnnl_run_reorder_(wr, &w_user, w_copy, &c->weights_md, c->weights) != 0) goto fail;
        dnnl_stream_wait(cdnnl_stream_);
    }
    if (wr) dnnl_primitive_destroy(wr);
    free(w_copy);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(fwd_pd);
    return c;
fail:
    if (wr) dnnl_primitive_destroy(wr);
    free(w_copy);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    cdnnl_conv_destroy(c);
    return NULL;
#undef CDNNL_TRY
}

int cdnnl_conv_backward_data(const cdnnl_conv *c, const float *dy, float *dx) {
    omp_set_num_threads(c->threads);
    dy += c->x_offset;
    dx += c->y_offset;
    void *gs = (void *)dy, *xs = dx;
    if (c->src_reorder) {
        gs = cdnnl_scratch(0, c->src_bytes);
        if (!gs || cdnnl_run_reorder_(c->src_reorder, &c->src_user, dy, &c->src_md, gs) != 0) return -1;
    }
    if (c->dst_reorder) {
        xs = cdnnl_scratch(1, c->dst_bytes);
        if (!xs) return -1;
    }
    dnnl_memory_t mg, mw, mx, mp = NULL;
    if (dnnl_memory_create(&mg, &c->src_md, cdnnl_engine_, gs) != dnnl_success) return -1;
    if (dnnl_memory_create(&mw, &c->weights_md, cdnnl_engine_, c->weights) != dnnl_success) {
        dnnl_memory_destroy(mg); return -1;
    }
    if (dnnl_memory_create(&mx, &c->dst_md, cdnnl_engine_, xs) != dnnl_success) {
        dnnl_memory_destroy(mg); dnnl_memory_destroy(mw); return -1;
    }
    void *pad = c->scratchpad_bytes ? cdnnl_scratch(2, c->scratchpad_bytes) : NULL;
    if ((c->scratchpad_bytes && !pad)
        || dnnl_memory_create(&mp, &c->scratchpad_md, cdnnl_engine_, pad) != dnnl_success) {
        dnnl_memory_destroy(mg); dnnl_memory_destroy(mw); dnnl_memory_destroy(mx);
        return -1;
    }
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, mg}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mx},
                               {DNNL_ARG_SCRATCHPAD, mp}};
    dnnl_status_t s = dnnl_primitive_execute(c->conv, cdnnl_stream_, 4, args);
    dnnl_memory_destroy(mg); dnnl_memory_destroy(mw); dnnl_memory_destroy(mx); dnnl_memory_destroy(mp);
    if (s != dnnl_success) return -1;
    if (c->dst_reorder && cdnnl_run_reorder_(c->dst_reorder, &c->dst_md, xs, &c->dst_user, dx) != 0) return -1;
    return 0;
}

// MARK: - Channels-last (NHWC) convolutions and layout conversions
//
// For regions of a plan that stay in one layout from convolution to convolution (see
// ONNXGraph's ChannelsLastRegions.swift). The layout is NHWC because that is what oneDNN 2.6
// itself picks for f32 inference with `format_tag::any` on AVX-512 machines: its brgemm
// convolutions (`brgconv`, `brgconv_1x1`, `brdgmm_dw`) take only channels-last activations
// (oneDNN src/cpu/x64/jit_brgemm_conv_utils.cpp, `pick_tags`: src_tag = dst_tag = nhwc). NHWC also
// has no channel padding (24, 40, 112 channels need none) and a part of the rows of one image, or
// of the positions of a 1×1 convolution, is one contiguous block: every part gets a dense
// descriptor and a pointer offset. Each part is a single-threaded primitive (`omp_set_num_threads(1)`);
// the caller runs the parts on its own threads.

/// A channels-last primitive (a forward part or a backward-data kind) and its filter.
typedef struct cdnnl_nhwc_primitive_ {
    dnnl_primitive_t conv;
    dnnl_memory_desc_t weights_md, scratchpad_md;
    void *weights;          // in the primitive's layout; owned when owns_weights
    int owns_weights;
    size_t scratchpad_bytes;
} cdnnl_nhwc_primitive_;

static void cdnnl_nhwc_primitive_destroy_(cdnnl_nhwc_primitive_ *p) {
    if (p->conv) dnnl_primitive_destroy(p->conv);
    if (p->owns_weights) free(p->weights);
}

/// Completes `p` from `pd`: refuses oneDNN's reference kernels (far too slow) and activation
/// layouts other than `in_md` (what it reads, `in_query`) and `out_md` (what it writes), makes the
/// primitive, and takes `share`'s filter when the layouts agree, else reorders `weights` (in
/// `w_user`) into its own. Names the implementation in `impl` when given. Returns 0 on success.
static int cdnnl_nhwc_primitive_init_(cdnnl_nhwc_primitive_ *p, const_dnnl_primitive_desc_t pd,
                                      dnnl_query_t in_query, const dnnl_memory_desc_t *in_md,
                                      dnnl_query_t out_query, const dnnl_memory_desc_t *out_md,
                                      const dnnl_memory_desc_t *w_user, const float *weights,
                                      const cdnnl_nhwc_primitive_ *share, char *impl, size_t impl_size) {
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    if (!name || strncmp(name, "ref", 3) == 0) return -1;
    if (impl) { strncpy(impl, name, impl_size - 1); impl[impl_size - 1] = 0; }
    if (!dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, in_query, 0), in_md)) return -1;
    if (!dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, out_query, 0), out_md)) return -1;
    p->weights_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    p->scratchpad_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->scratchpad_bytes = dnnl_memory_desc_get_size(&p->scratchpad_md);
    if (dnnl_primitive_create(&p->conv, pd) != dnnl_success) { p->conv = NULL; return -1; }
    if (share && dnnl_memory_desc_equal(&share->weights_md, &p->weights_md)) {
        p->weights = share->weights;
        p->owns_weights = 0;
        return 0;
    }
    p->weights = cdnnl_alloc_(dnnl_memory_desc_get_size(&p->weights_md));
    p->owns_weights = 1;
    if (!p->weights) return -1;
    if (dnnl_memory_desc_equal(&p->weights_md, w_user)) {
        memcpy(p->weights, weights, dnnl_memory_desc_get_size(w_user));
        return 0;
    }
    dnnl_primitive_t wr = cdnnl_reorder_(w_user, &p->weights_md);
    int status = wr && cdnnl_run_reorder_(wr, w_user, weights, &p->weights_md, p->weights) == 0 ? 0 : -1;
    if (status == 0) dnnl_stream_wait(cdnnl_stream_);
    if (wr) dnnl_primitive_destroy(wr);
    return status;
}

typedef struct cdnnl_nhwc_part_ {
    cdnnl_nhwc_primitive_ prim;
    dnnl_memory_desc_t src_md, dst_md;
    size_t x_offset, y_offset;
} cdnnl_nhwc_part_;

struct cdnnl_nhwc_conv {
    int nparts;
    cdnnl_nhwc_part_ *parts;
    dnnl_memory_desc_t bias_md;
    float *bias;            // zeros when the convolution has none
    char impl[64];
};

void cdnnl_nhwc_conv_destroy(cdnnl_nhwc_conv *c) {
    if (!c) return;
    if (c->parts) {
        for (int i = 0; i < c->nparts; i++) {
            cdnnl_nhwc_primitive_destroy_(&c->parts[i].prim);
        }
        free(c->parts);
    }
    free(c->bias);
    free(c);
}

static int cdnnl_append_eltwise_(dnnl_post_ops_t ops, int kind, float lo, float hi) {
    if (kind == 1) return dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) == dnnl_success ? 0 : -1;
    if (kind == 2) return dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_clip_v2, lo, hi) == dnnl_success ? 0 : -1;
    return 0;
}

/// Makes one part: images [n0, n1), output rows [oh0, oh1), output columns [ow0, ow1) (a column
/// range other than the whole width only for pointwise problems, where input columns = output
/// columns). `q` is the (possibly flattened) problem. Reuses `share`'s filter when the layouts agree.
static int cdnnl_nhwc_part_init_(cdnnl_nhwc_part_ *part, const cdnnl_nhwc_conv_params *q, int64_t oh, int64_t ow,
                                 int64_t n0, int64_t n1, int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1,
                                 const float *weights, const dnnl_memory_desc_t *bias_md,
                                 const cdnnl_nhwc_part_ *share, char *impl, size_t impl_size) {
    int64_t og = q->o / q->groups, cg = q->c / q->groups;
    int grouped = q->groups > 1;
    int64_t ih0 = oh0 * q->sh - q->pt, ih1 = (oh1 - 1) * q->sh - q->pt + (q->kh - 1) * q->dh + 1;
    int64_t r0 = ih0 < 0 ? 0 : ih0, r1 = ih1 > q->h ? q->h : ih1;
    int64_t pad_top = r0 - ih0, pad_bottom = ih1 - r1, rows = r1 - r0;
    int whole_width = ow0 == 0 && ow1 == ow;
    int64_t c0 = whole_width ? 0 : ow0, cols = whole_width ? q->w : ow1 - ow0;
    int64_t pad_left = whole_width ? q->pl : 0, pad_right = whole_width ? q->pr : 0;
    if (rows <= 0 || cols <= 0) return -1;
    part->x_offset = (size_t)(((n0 * q->h + r0) * q->w + c0) * q->c);
    part->y_offset = (size_t)(((n0 * oh + oh0) * ow + ow0) * q->o);
    dnnl_dims_t src_dims = {n1 - n0, q->c, rows, cols}, dst_dims = {n1 - n0, q->o, oh1 - oh0, ow1 - ow0};
    dnnl_dims_t w5 = {q->groups, og, cg, q->kh, q->kw}, w4 = {q->o, q->c, q->kh, q->kw};
    dnnl_memory_desc_t w_user, w_any;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    int status = -1;
#define CDNNL_TRY(call) do { if ((call) != dnnl_success) goto done; } while (0)
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&part->src_md, 4, src_dims, dnnl_f32, dnnl_nhwc));
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&part->dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc));
    if (grouped) {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 5, w5, dnnl_f32, dnnl_goihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, w5, dnnl_f32, dnnl_format_tag_any));
    } else {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, w4, dnnl_f32, dnnl_oihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, w4, dnnl_f32, dnnl_format_tag_any));
    }
    dnnl_dims_t strides = {q->sh, q->sw}, dilates = {q->dh - 1, q->dw - 1};
    dnnl_dims_t pad_l = {pad_top, pad_left}, pad_r = {pad_bottom, pad_right};
    dnnl_convolution_desc_t desc;
    CDNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                         &part->src_md, &w_any, bias_md, &part->dst_md, strides,
                                                         dilates, pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_attr_create(&attr));
    CDNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (q->activation != 0 || q->accumulate || q->post_activation != 0) {
        CDNNL_TRY(dnnl_post_ops_create(&ops));
        if (cdnnl_append_eltwise_(ops, q->activation, q->lo, q->hi) != 0) goto done;
        if (q->accumulate) CDNNL_TRY(dnnl_post_ops_append_sum(ops, 1.0f));
        if (cdnnl_append_eltwise_(ops, q->post_activation, q->post_lo, q->post_hi) != 0) goto done;
        CDNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    CDNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, cdnnl_engine_, NULL));
    if (cdnnl_nhwc_primitive_init_(&part->prim, pd, dnnl_query_src_md, &part->src_md, dnnl_query_dst_md, &part->dst_md,
                                   &w_user, weights, share ? &share->prim : NULL, impl, impl_size) != 0) goto done;
    status = 0;
done:
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return status;
#undef CDNNL_TRY
}

/// `0..<count` in `parts` contiguous ranges: the bounds of range `i`.
static void cdnnl_range_(int64_t count, int parts, int i, int64_t *lo, int64_t *hi) {
    *lo = count * i / parts;
    *hi = count * (i + 1) / parts;
}

cdnnl_nhwc_conv *cdnnl_nhwc_conv_create(const cdnnl_nhwc_conv_params *p, const float *weights, const float *bias) {
    if (cdnnl_ready_ <= 0) return NULL;
    if (p->groups < 1 || p->c % p->groups || p->o % p->groups || p->n < 1 || p->c < 1 || p->o < 1) return NULL;
    cdnnl_nhwc_conv_params q = *p;
    int pointwise = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1
                    && p->pt == 0 && p->pl == 0 && p->pb == 0 && p->pr == 0;
    if (pointwise) { q.w = p->h * p->w; q.h = 1; }   // the same memory: one row of h·w positions
    int64_t oh = (q.h + q.pt + q.pb - ((q.kh - 1) * q.dh + 1)) / q.sh + 1;
    int64_t ow = (q.w + q.pl + q.pr - ((q.kw - 1) * q.dw + 1)) / q.sw + 1;
    if (oh <= 0 || ow <= 0) return NULL;
    int t = p->parts < 1 ? 1 : p->parts;
    // How to split: 0 images, 1 output rows, 2 output positions (pointwise).
    int mode = 0, nparts = 1;
    if (t > 1) {
        if (q.n >= t) { mode = 0; nparts = t; }
        else if (q.n == 1 && pointwise) { mode = 2; nparts = ow < t ? (int)ow : t; }
        else if (q.n == 1) { mode = 1; nparts = oh < t ? (int)oh : t; }
        else { mode = 0; nparts = (int)q.n; }
    }
    cdnnl_nhwc_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->parts = calloc((size_t)nparts, sizeof *c->parts);
    c->bias = cdnnl_alloc_((size_t)p->o * sizeof(float));
    if (!c->parts || !c->bias) { cdnnl_nhwc_conv_destroy(c); return NULL; }
    if (bias) memcpy(c->bias, bias, (size_t)p->o * sizeof(float));
    else memset(c->bias, 0, (size_t)p->o * sizeof(float));
    dnnl_dims_t bias_dims = {p->o};
    if (dnnl_memory_desc_init_by_tag(&c->bias_md, 1, bias_dims, dnnl_f32, dnnl_x) != dnnl_success) {
        cdnnl_nhwc_conv_destroy(c);
        return NULL;
    }
    omp_set_num_threads(1);
    for (int i = 0; i < nparts; i++) {
        int64_t n0 = 0, n1 = q.n, oh0 = 0, oh1 = oh, ow0 = 0, ow1 = ow;
        if (nparts > 1) {
            if (mode == 0) cdnnl_range_(q.n, nparts, i, &n0, &n1);
            else if (mode == 1) cdnnl_range_(oh, nparts, i, &oh0, &oh1);
            else cdnnl_range_(ow, nparts, i, &ow0, &ow1);
        }
        c->nparts = i + 1;  // destroy frees the parts made so far
        if (cdnnl_nhwc_part_init_(&c->parts[i], &q, oh, ow, n0, n1, oh0, oh1, ow0, ow1, weights, &c->bias_md,
                                  i > 0 ? &c->parts[0] : NULL, i == 0 ? c->impl : NULL, sizeof c->impl) != 0) {
            cdnnl_nhwc_conv_destroy(c);
            return NULL;
        }
    }
    return c;
}

int cdnnl_nhwc_conv_parts(const cdnnl_nhwc_conv *c) { return c->nparts; }

const char *cdnnl_nhwc_conv_impl(const cdnnl_nhwc_conv *c) { return c->impl; }

int cdnnl_nhwc_conv_forward(const cdnnl_nhwc_conv *c, int part, const float *x, float *y) {
    if (part < 0 || part >= c->nparts) return -1;
    const cdnnl_nhwc_part_ *p = &c->parts[part];
    const cdnnl_nhwc_primitive_ *prim = &p->prim;
    omp_set_num_threads(1);
    dnnl_memory_t ms = NULL, mw = NULL, mb = NULL, md = NULL, mp = NULL;
    int status = -1;
    void *pad = prim->scratchpad_bytes ? cdnnl_scratch(2, prim->scratchpad_bytes) : NULL;
    if (prim->scratchpad_bytes && !pad) return -1;
    if (dnnl_memory_create(&ms, &p->src_md, cdnnl_engine_, (void *)(x + p->x_offset)) != dnnl_success) goto done;
    if (dnnl_memory_create(&mw, &prim->weights_md, cdnnl_engine_, prim->weights) != dnnl_success) goto done;
    if (dnnl_memory_create(&mb, &c->bias_md, cdnnl_engine_, c->bias) != dnnl_success) goto done;
    if (dnnl_memory_create(&md, &p->dst_md, cdnnl_engine_, y + p->y_offset) != dnnl_success) goto done;
    if (dnnl_memory_create(&mp, &prim->scratchpad_md, cdnnl_engine_, pad) != dnnl_success) goto done;
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md},
                               {DNNL_ARG_SCRATCHPAD, mp}};
    if (dnnl_primitive_execute(prim->conv, cdnnl_stream_, 5, args) == dnnl_success) status = 0;
done:
    if (ms) dnnl_memory_destroy(ms);
    if (mw) dnnl_memory_destroy(mw);
    if (mb) dnnl_memory_destroy(mb);
    if (md) dnnl_memory_destroy(md);
    if (mp) dnnl_memory_destroy(mp);
    return status;
}

typedef struct cdnnl_layout_part_ {
    dnnl_primitive_t reorder;
    dnnl_memory_desc_t from_md, to_md;
    size_t from_offset, to_offset;
} cdnnl_layout_part_;

struct cdnnl_layout_reorder {
    int nparts;
    cdnnl_layout_part_ *parts;
};

void cdnnl_layout_reorder_destroy(cdnnl_layout_reorder *r) {
    if (!r) return;
    if (r->parts) {
        for (int i = 0; i < r->nparts; i++) if (r->parts[i].reorder) dnnl_primitive_destroy(r->parts[i].reorder);
        free(r->parts);
    }
    free(r);
}

cdnnl_layout_reorder *cdnnl_layout_reorder_create(int64_t n, int64_t c, int64_t h, int64_t w, int to_nhwc, int parts) {
    if (cdnnl_ready_ <= 0 || n < 1 || c < 1 || h < 1 || w < 1) return NULL;
    int t = parts < 1 ? 1 : parts;
    int by_rows = n < t && n == 1;
    int nparts = t == 1 ? 1 : (n >= t ? t : (by_rows ? (h < t ? (int)h : t) : (int)n));
    cdnnl_layout_reorder *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->parts = calloc((size_t)nparts, sizeof *r->parts);
    if (!r->parts) { free(r); return NULL; }
    omp_set_num_threads(1);
    for (int i = 0; i < nparts; i++) {
        int64_t n0 = 0, n1 = n, h0 = 0, h1 = h;
        if (nparts > 1) {
            if (by_rows) cdnnl_range_(h, nparts, i, &h0, &h1);
            else cdnnl_range_(n, nparts, i, &n0, &n1);
        }
        r->nparts = i + 1;
        cdnnl_layout_part_ *p = &r->parts[i];
        dnnl_dims_t dims = {n1 - n0, c, h1 - h0, w};
        dnnl_dims_t nchw_strides = {c * h * w, h * w, w, 1};
        dnnl_memory_desc_t nchw, nhwc;
        if (dnnl_memory_desc_init_by_strides(&nchw, 4, dims, dnnl_f32, nchw_strides) != dnnl_success
            || dnnl_memory_desc_init_by_tag(&nhwc, 4, dims, dnnl_f32, dnnl_nhwc) != dnnl_success) {
            cdnnl_layout_reorder_destroy(r);
            return NULL;
        }
        size_t nchw_offset = (size_t)(n0 * c * h * w + h0 * w), nhwc_offset = (size_t)((n0 * h + h0) * w * c);
        p->from_md = to_nhwc ? nchw : nhwc;
        p->to_md = to_nhwc ? nhwc : nchw;
        p->from_offset = to_nhwc ? nchw_offset : nhwc_offset;
        p->to_offset = to_nhwc ? nhwc_offset : nchw_offset;
        if (!(p->reorder = cdnnl_reorder_(&p->from_md, &p->to_md))) {
            cdnnl_layout_reorder_destroy(r);
            return NULL;
        }
    }
    return r;
}

int cdnnl_layout_reorder_parts(const cdnnl_layout_reorder *r) { return r->nparts; }

int cdnnl_layout_reorder_run(const cdnnl_layout_reorder *r, int part, const float *from, float *to) {
    if (part < 0 || part >= r->nparts) return -1;
    const cdnnl_layout_part_ *p = &r->parts[part];
    omp_set_num_threads(1);
    return cdnnl_run_reorder_(p->reorder, &p->from_md, from + p->from_offset, &p->to_md, to + p->to_offset);
}

// MARK: - Channels-last (NHWC) backward data: input gradients of convolutions
//
// dx = convᵀ(dy) on NHWC activations (dy `n × oh × ow × o`, dx `n × h × w × c`, filter OIHW), the
// input gradient of ONNX Conv: dx[n,ih,iw,c] = Σ dy[n,oh,ow,o]·w[o, c − g·cg, kh, kw] over the
// output channels o of c's group and the positions with ih = oh·sh − pt + kh·dh, iw likewise.
// Two methods (TensorCore's ChannelsLastConvolutionGradient chooses, and for stride 1 mostly
// uses a third: the forward convolution with the flipped filter):
// - oneDNN backward-data primitives (`jit:avx512_core`, `jit_1x1:avx512_core` here), made with a
//   `forward_training` descriptor as the hint oneDNN requires, explicit NHWC descriptors;
// - GEMM + col2im, for 1×1 convolutions and few input channels per group (oneDNN's bwd_d of
//   ResNet's stem, C = 3, ran at a quarter of this method's speed): per chunk of output rows
//   dcol[P × kh·kw·cg] = dy[P × og] · W[og × kh·kw·cg] (oneDNN's JIT sgemm by default; W's columns
//   ordered (kh, kw, c) so one kernel row of taps covers kw·C contiguous floats of dx), scattered
//   into dx at once, while the chunk is in cache (AVX-512: cdnnl_col2im_rows_avx512_).
//   A 1×1 stride-1 unpadded convolution needs no col2im: dx[P × C] (+)= dy[P × O] · W[O × C].
// The work is a list of tiles (images, or bands of input rows of one image with the output rows
// that reach them, or position ranges of a pointwise convolution); part i of `parts` runs a
// contiguous range of tiles single-threaded. Tiles that share a shape share a primitive.
// Accumulating (dx += convᵀ(dy)): oneDNN 2.6's bwd_d has no sum post-op, so each tile is computed
// into a per-thread buffer of at most `tile_elements` floats and added to dx while it is in
// cache; the GEMM path scatters into dx directly (no zeroing) and the pointwise GEMM uses β = 1.

#include <immintrin.h>

typedef struct cdnnl_nhwc_bwd_kind_ {
    cdnnl_nhwc_primitive_ prim;
    dnnl_memory_desc_t dy_md, dx_md;
    size_t dx_count;
    int64_t key[9];         // nimg, rows, cols, orows, ocols, pt, pb, pl, pr
} cdnnl_nhwc_bwd_kind_;

typedef struct cdnnl_nhwc_bwd_tile_ {
    int kind;               // oneDNN: index into kinds, −1: no output row reaches these rows (zeros)
    int64_t image0, images; // GEMM: the images, the input rows [r0, r1) it writes, the output rows
    int64_t r0, r1, a0, a1; // [a0, a1) that reach them (pointwise GEMM: positions [r0, r1))
    size_t dy_offset, dx_offset;
} cdnnl_nhwc_bwd_tile_;

struct cdnnl_nhwc_bwd {
    cdnnl_nhwc_bwd_params p;
    int64_t oh, ow;
    int method, pointwise, accumulate;
    int nparts, ntiles, nkinds;
    int *first;             // part i runs tiles [first[i], first[i + 1])
    cdnnl_nhwc_bwd_tile_ *tiles;
    cdnnl_nhwc_bwd_kind_ *kinds;
    float *wmat;            // GEMM: [o × kh·kw·cg], columns (kh, kw, c)
    int64_t chunk_rows;     // GEMM: output rows per dcol chunk
    // GEMM, groups == 1, dw == 1: how one kernel row of one output row adds into a row of dx, per
    // 16-float block k of the row: entries [block_first[k], block_first[k + 1]) of (offset in
    // dcol of the block's lane 0, mask of the lanes) (see cdnnl_row_schedule_).
    int nblocks;
    int32_t *block_first, *entry_offset;
    uint16_t *entry_mask;
    char impl[64];
};

void cdnnl_nhwc_bwd_destroy(cdnnl_nhwc_bwd *b) {
    if (!b) return;
    if (b->kinds) {
        for (int i = 0; i < b->nkinds; i++) {
            cdnnl_nhwc_primitive_destroy_(&b->kinds[i].prim);
        }
        free(b->kinds);
    }
    free(b->tiles);
    free(b->first);
    free(b->wmat);
    free(b->block_first);
    free(b->entry_offset);
    free(b->entry_mask);
    free(b);
}

/// Makes the backward-data primitive of one tile shape (`key`: images, dx rows × cols, dy rows ×
/// cols, pads top, bottom, left, right of the sub-problem). Reuses `share`'s filter when the
/// layouts agree. Returns 0 on success.
static int cdnnl_nhwc_bwd_kind_init_(cdnnl_nhwc_bwd_kind_ *k, const cdnnl_nhwc_bwd_params *q, const int64_t key[9],
                                     const float *weights, const cdnnl_nhwc_bwd_kind_ *share, char *impl,
                                     size_t impl_size) {
    memcpy(k->key, key, sizeof k->key);
    int64_t og = q->o / q->groups, cg = q->c / q->groups;
    int grouped = q->groups > 1;
    dnnl_dims_t dx_dims = {key[0], q->c, key[1], key[2]}, dy_dims = {key[0], q->o, key[3], key[4]};
    dnnl_dims_t w5 = {q->groups, og, cg, q->kh, q->kw}, w4 = {q->o, q->c, q->kh, q->kw};
    dnnl_memory_desc_t w_user, w_any, no_bias;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    int status = -1;
    k->dx_count = (size_t)(key[0] * key[1] * key[2] * q->c);
#define CDNNL_TRY(call) do { if ((call) != dnnl_success) goto done; } while (0)
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&k->dx_md, 4, dx_dims, dnnl_f32, dnnl_nhwc));
    CDNNL_TRY(dnnl_memory_desc_init_by_tag(&k->dy_md, 4, dy_dims, dnnl_f32, dnnl_nhwc));
    if (grouped) {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 5, w5, dnnl_f32, dnnl_goihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, w5, dnnl_f32, dnnl_format_tag_any));
    } else {
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, 4, w4, dnnl_f32, dnnl_oihw));
        CDNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, w4, dnnl_f32, dnnl_format_tag_any));
    }
    memset(&no_bias, 0, sizeof no_bias);
    dnnl_dims_t strides = {q->sh, q->sw}, dilates = {q->dh - 1, q->dw - 1};
    dnnl_dims_t pad_l = {key[5], key[7]}, pad_r = {key[6], key[8]};
    dnnl_convolution_desc_t fwd_desc, desc;
    CDNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, dnnl_convolution_direct,
                                                         &k->dx_md, &w_any, &no_bias, &k->dy_md, strides, dilates,
                                                         pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_desc_create(&fwd_pd, &fwd_desc, NULL, cdnnl_engine_, NULL));
    CDNNL_TRY(dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &k->dx_md, &w_any,
                                                               &k->dy_md, strides, dilates, pad_l, pad_r));
    CDNNL_TRY(dnnl_primitive_attr_create(&attr));
    CDNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    CDNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, cdnnl_engine_, fwd_pd));
    if (cdnnl_nhwc_primitive_init_(&k->prim, pd, dnnl_query_diff_dst_md, &k->dy_md, dnnl_query_diff_src_md, &k->dx_md,
                                   &w_user, weights, share ? &share->prim : NULL, impl, impl_size) != 0) goto done;
    status = 0;
done:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    return status;
#undef CDNNL_TRY
}

/// The kind (primitive) for `key`, made if new; −1 on failure.
static int cdnnl_nhwc_bwd_find_kind_(cdnnl_nhwc_bwd *b, const int64_t key[9], const float *weights, int capacity) {
    for (int i = 0; i < b->nkinds; i++)
        if (memcmp(b->kinds[i].key, key, sizeof b->kinds[i].key) == 0) return i;
    if (b->nkinds >= capacity) return -1;
    int i = b->nkinds++;
    if (cdnnl_nhwc_bwd_kind_init_(&b->kinds[i], &b->p, key, weights, i > 0 ? &b->kinds[0] : NULL,
                                  i == 0 ? b->impl : NULL, sizeof b->impl) != 0) return -1;
    return i;
}

static int64_t cdnnl_floor_div_(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/// A tile of images [i0, i0 + images) and input rows [r0, r1): the output rows [a0, a1) that
/// reach them, and (oneDNN) its kind. Returns 0 on success.
static int cdnnl_nhwc_bwd_band_(cdnnl_nhwc_bwd *b, cdnnl_nhwc_bwd_tile_ *t, int64_t i0, int64_t images,
                                int64_t r0, int64_t r1, const float *weights, int capacity) {
    const cdnnl_nhwc_bwd_params *q = &b->p;
    int64_t keff = (q->kh - 1) * q->dh + 1;
    int64_t a0 = -cdnnl_floor_div_(-(r0 + q->pt - (keff - 1)), q->sh);   // ceil
    int64_t a1 = cdnnl_floor_div_(r1 - 1 + q->pt, q->sh) + 1;
    if (a0 < 0) a0 = 0;
    if (a1 > b->oh) a1 = b->oh;
    t->image0 = i0; t->images = images; t->r0 = r0; t->r1 = r1; t->a0 = a0; t->a1 = a1;
    t->dx_offset = (size_t)(((i0 * q->h + r0) * q->w) * q->c);
    t->dy_offset = (size_t)(((i0 * b->oh + (a0 < a1 ? a0 : 0)) * b->ow) * q->o);
    t->kind = -1;
    if (b->method != 0 || a0 >= a1) return 0;
    int64_t rows = r1 - r0, pt = q->pt + r0 - a0 * q->sh;
    int64_t need = (a1 - a0 - 1) * q->sh + keff - rows - pt;
    int64_t pb = need >= 0 ? need : (need + q->sh - 1 >= 0 ? 0 : need);
    int64_t key[9] = {images, rows, q->w, a1 - a0, b->ow, pt, pb, q->pl, q->pr};
    t->kind = cdnnl_nhwc_bwd_find_kind_(b, key, weights, capacity);
    return t->kind < 0 ? -1 : 0;
}

/// How many pieces of at most `size` make `count` (ceil(count / size)).
static int64_t cdnnl_pieces_(int64_t count, int64_t size) { return (count + size - 1) / size; }

/// Builds the row schedule of a GEMM object (groups == 1, dw == 1): for each 16-float block of a
/// dx row, the kernel-row segments of the output positions x that overlap it — segment x (kw·C
/// floats at dcol + x·kh·kw·C) lands at row offset (x·sw − pl)·C — as (offset of the block's
/// first lane in dcol, mask of the lanes it covers). Returns 0 on success.
static int cdnnl_row_schedule_(cdnnl_nhwc_bwd *b) {
    const cdnnl_nhwc_bwd_params *q = &b->p;
    int64_t rowlen = q->w * q->c, ld = q->kh * q->kw * q->c, step = q->sw * q->c, start = -q->pl * q->c;
    int64_t seg = q->kw * q->c, nx = b->ow;
    int64_t blocks = (rowlen + 15) / 16, count = 0;
    for (int pass = 0; pass < 2; pass++) {
        int64_t x0 = 0, e = 0;
        for (int64_t k = 0; k < blocks; k++) {
            int64_t blk = k * 16, lanes = rowlen - blk < 16 ? rowlen - blk : 16;
            if (pass) b->block_first[k] = (int32_t)e;
            while (x0 < nx && start + x0 * step + seg <= blk) x0++;
            for (int64_t x = x0; x < nx; x++) {
                int64_t o = start + x * step;
                if (o >= blk + lanes) break;
                int64_t lo = o - blk, hi = lo + seg;
                if (lo < 0) lo = 0;
                if (hi > lanes) hi = lanes;
                if (pass) {
                    b->entry_offset[e] = (int32_t)(x * ld + blk - o);
                    b->entry_mask[e] = (uint16_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
                }
                e++;
            }
        }
        if (pass) { b->block_first[blocks] = (int32_t)e; break; }
        count = e;
        if (count > INT32_MAX || nx * ld > INT32_MAX) return -1;
        b->nblocks = (int)blocks;
        b->block_first = calloc((size_t)blocks + 1, sizeof *b->block_first);
        b->entry_offset = calloc((size_t)count + 1, sizeof *b->entry_offset);
        b->entry_mask = calloc((size_t)count + 1, sizeof *b->entry_mask);
        if (!b->block_first || !b->entry_offset || !b->entry_mask) return -1;
    }
    return 0;
}

cdnnl_nhwc_bwd *cdnnl_nhwc_bwd_create(const cdnnl_nhwc_bwd_params *p, const float *weights) {
    if (cdnnl_ready_ <= 0) return NULL;
    if (p->groups < 1 || p->c % p->groups || p->o % p->groups || p->n < 1 || p->c < 1 || p->o < 1
        || p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1) return NULL;
    if (p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0 || (p->method != 0 && p->method != 1)) return NULL;
    int64_t oh = (p->h + p->pt + p->pb - ((p->kh - 1) * p->dh + 1)) / p->sh + 1;
    int64_t ow = (p->w + p->pl + p->pr - ((p->kw - 1) * p->dw + 1)) / p->sw + 1;
    if (p->h + p->pt + p->pb < (p->kh - 1) * p->dh + 1 || p->w + p->pl + p->pr < (p->kw - 1) * p->dw + 1
        || oh <= 0 || ow <= 0) return NULL;
    cdnnl_nhwc_bwd *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->p = *p;
    b->oh = oh; b->ow = ow;
    b->method = p->method;
    b->accumulate = p->accumulate != 0;
    b->pointwise = p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1
                   && p->pt == 0 && p->pl == 0 && p->pb == 0 && p->pr == 0;
    int t = p->parts < 1 ? 1 : p->parts;
    int64_t cg = p->c / p->groups, taps = p->kh * p->kw;
    // Tiles: (images, input-row bands) or, pointwise, position ranges over the whole batch.
    int64_t tile_cap = 0;
    int64_t limit = p->tile_elements > 0 ? p->tile_elements : (int64_t)1 << 16;
    int64_t positions = p->n * p->h * p->w;
    int64_t pw_size = 0, images_per_tile = 0, band_out_rows = oh;
    if (b->pointwise && (b->method == 1 || b->accumulate)) {
        // Pointwise: ranges of positions (rows of the [positions × C] matrices).
        int64_t pieces = t;
        if (b->method == 0) {
            pieces = cdnnl_pieces_(p->c * positions, limit);
            pieces = (pieces + t - 1) / t * t;
        }
        if (pieces > positions) pieces = positions;
        pw_size = cdnnl_pieces_(positions, pieces);
        tile_cap = cdnnl_pieces_(positions, pw_size);
    } else if (!b->accumulate || b->method == 1) {
        if (p->n >= t || t == 1) { images_per_tile = -1; tile_cap = t < p->n ? t : p->n; }
        else if (p->n == 1) { band_out_rows = cdnnl_pieces_(oh, t); tile_cap = cdnnl_pieces_(oh, band_out_rows); }
        else { images_per_tile = 1; tile_cap = p->n; }
    } else {
        // Accumulating with oneDNN: one image's bands of about `limit` dx floats.
        int64_t per_out_row = p->sh * p->w * p->c;
        band_out_rows = limit / (per_out_row > 0 ? per_out_row : 1);
        if (band_out_rows < 1) band_out_rows = 1;
        if (band_out_rows > oh) band_out_rows = oh;
        images_per_tile = 1;
        tile_cap = p->n * cdnnl_pieces_(oh, band_out_rows);
    }
    b->tiles = calloc((size_t)tile_cap, sizeof *b->tiles);
    b->kinds = calloc((size_t)tile_cap, sizeof *b->kinds);
    b->first = calloc((size_t)t + 1, sizeof *b->first);
    if (!b->tiles || !b->kinds || !b->first) goto fail;
    omp_set_num_threads(1);
    if (pw_size > 0) {
        for (int64_t s = 0; s < positions; s += pw_size) {
            int64_t e = s + pw_size < positions ? s + pw_size : positions;
            cdnnl_nhwc_bwd_tile_ *tl = &b->tiles[b->ntiles++];
            tl->r0 = s; tl->r1 = e; tl->a0 = s; tl->a1 = e; tl->image0 = 0; tl->images = 0;
            tl->dx_offset = (size_t)(s * p->c); tl->dy_offset = (size_t)(s * p->o);
            tl->kind = -1;
            if (b->method == 0) {
                int64_t key[9] = {1, 1, e - s, 1, e - s, 0, 0, 0, 0};
                if ((tl->kind = cdnnl_nhwc_bwd_find_kind_(b, key, weights, (int)tile_cap)) < 0) goto fail;
            }
        }
    } else if (images_per_tile < 0) {
        int64_t parts = tile_cap;
        for (int64_t i = 0; i < parts; i++) {
            int64_t n0 = p->n * i / parts, n1 = p->n * (i + 1) / parts;
            if (cdnnl_nhwc_bwd_band_(b, &b->tiles[b->ntiles++], n0, n1 - n0, 0, p->h, weights, (int)tile_cap) != 0)
                goto fail;
        }
    } else {
        // Bands of input rows from bands of output rows: band boundaries at row a·sh − pt, so
        // each band's sub-problem has a non-negative top padding.
        for (int64_t i = 0; i < p->n; i++) {
            for (int64_t a = 0; a < oh; a += band_out_rows) {
                int64_t r0 = a == 0 ? 0 : a * p->sh - p->pt;
                int64_t r1 = a + band_out_rows >= oh ? p->h : (a + band_out_rows) * p->sh - p->pt;
                if (r0 < 0) r0 = 0;
                if (r1 > p->h) r1 = p->h;
                if (r1 <= r0) continue;
                if (cdnnl_nhwc_bwd_band_(b, &b->tiles[b->ntiles++], i, 1, r0, r1, weights, (int)tile_cap) != 0)
                    goto fail;
            }
        }
    }
    if (b->ntiles < 1) goto fail;
    b->nparts = t < b->ntiles ? t : b->ntiles;
    for (int i = 0; i <= b->nparts; i++) b->first[i] = (int)((int64_t)b->ntiles * i / b->nparts);
    if (b->method == 1) {
        // W as [o × (kh, kw, cg)] (each output channel's filter with the channels innermost).
        b->wmat = cdnnl_alloc_((size_t)(p->o * taps * cg) * sizeof(float));
        if (!b->wmat) goto fail;
        for (int64_t o = 0; o < p->o; o++)
            for (int64_t c = 0; c < cg; c++)
                for (int64_t k = 0; k < taps; k++)
                    b->wmat[(o * taps + k) * cg + c] = weights[(o * cg + c) * taps + k];
        int64_t per_row = ow * taps * p->c;
        b->chunk_rows = (p->tile_elements > 0 ? p->tile_elements : (int64_t)1 << 16) / (per_row > 0 ? per_row : 1);
        if (b->chunk_rows < 1) b->chunk_rows = 1;
        strncpy(b->impl, b->pointwise ? "gemm" : "gemm-col2im", sizeof b->impl - 1);
        if (!b->pointwise && p->groups == 1 && p->dw == 1 && cdnnl_row_schedule_(b) != 0) goto fail;
    }
    return b;
fail:
    cdnnl_nhwc_bwd_destroy(b);
    return NULL;
}

int cdnnl_nhwc_bwd_parts(const cdnnl_nhwc_bwd *b) { return b->nparts; }

const char *cdnnl_nhwc_bwd_impl(const cdnnl_nhwc_bwd *b) { return b->impl; }

/// d[i] += s[i] (portable; the compiler vectorises it for the baseline ISA).
static void cdnnl_add_(float *restrict d, const float *restrict s, size_t count) {
    for (size_t i = 0; i < count; i++) d[i] += s[i];
}

/// d[i] += s[i] with AVX-512 (a masked tail: col2im adds short runs, e.g. kw·C = 21 floats).
__attribute__((target("avx512f"))) static inline void cdnnl_add_avx512_(float *d, const float *s, size_t count) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
    if (i < count) {
        __mmask16 m = (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i)));
    }
}

/// Whether the CPU has AVX-512F (checked once).
static int cdnnl_has_avx512_(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return known;
}

static int cdnnl_nhwc_bwd_execute_(const cdnnl_nhwc_bwd_kind_ *k, const float *dy, float *dx) {
    dnnl_memory_t mg = NULL, mw = NULL, mx = NULL, mp = NULL;
    int status = -1;
    const cdnnl_nhwc_primitive_ *prim = &k->prim;
    void *pad = prim->scratchpad_bytes ? cdnnl_scratch(2, prim->scratchpad_bytes) : NULL;
    if (prim->scratchpad_bytes && !pad) return -1;
    if (dnnl_memory_create(&mg, &k->dy_md, cdnnl_engine_, (void *)dy) != dnnl_success) goto done;
    if (dnnl_memory_create(&mw, &prim->weights_md, cdnnl_engine_, prim->weights) != dnnl_success) goto done;
    if (dnnl_memory_create(&mx, &k->dx_md, cdnnl_engine_, dx) != dnnl_success) goto done;
    if (dnnl_memory_create(&mp, &prim->scratchpad_md, cdnnl_engine_, pad) != dnnl_success) goto done;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, mg}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mx},
                               {DNNL_ARG_SCRATCHPAD, mp}};
    if (dnnl_primitive_execute(prim->conv, cdnnl_stream_, 4, args) == dnnl_success) status = 0;
done:
    if (mg) dnnl_memory_destroy(mg);
    if (mw) dnnl_memory_destroy(mw);
    if (mx) dnnl_memory_destroy(mx);
    if (mp) dnnl_memory_destroy(mp);
    return status;
}

static int cdnnl_gemm_(cdnnl_sgemm_fn gemm, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *bm, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (gemm) { gemm(0, 0, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, bm, (int)ldb, beta, c, (int)ldc); return 0; }
    return dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, lda, bm, ldb, beta, c, ldc) == dnnl_success ? 0 : -1;
}

/// Defines `NAME`, which scatters dcol (output rows [b0, b1) of one image, `ow` positions each,
/// rows of kh·kw·C floats ordered (group, kh, kw, c)) into dx (that image), adding with `ADD`;
/// only input rows [r0, r1). Instantiated portable and AVX-512 below.
#define CDNNL_DEFINE_COL2IM(ATTR, NAME, ADD) \
ATTR static void NAME(const cdnnl_nhwc_bwd *b, const float *dcol, int64_t b0, int64_t b1, int64_t r0, int64_t r1, \
                      float *dx) { \
    const cdnnl_nhwc_bwd_params *q = &b->p; \
    int64_t cg = q->c / q->groups, taps = q->kh * q->kw, ld = taps * q->c, rowlen = q->w * q->c; \
    for (int64_t a = b0; a < b1; a++) { \
        for (int64_t x = 0; x < b->ow; x++) { \
            const float *col = dcol + ((a - b0) * b->ow + x) * ld; \
            int64_t iw0 = x * q->sw - q->pl; \
            for (int64_t i = 0; i < q->kh; i++) { \
                int64_t ih = a * q->sh - q->pt + i * q->dh; \
                if (ih < r0 || ih >= r1) continue; \
                float *row = dx + ih * rowlen; \
                if (q->groups == 1 && q->dw == 1) { \
                    /* One kernel row of taps: kw·C contiguous floats in dx and in dcol. */ \
                    int64_t j0 = iw0 < 0 ? -iw0 : 0, j1 = q->w - iw0 < q->kw ? q->w - iw0 : q->kw; \
                    if (j1 > j0) ADD(row + (iw0 + j0) * q->c, col + (i * q->kw + j0) * q->c, (size_t)((j1 - j0) * q->c)); \
                    continue; \
                } \
                for (int64_t g = 0; g < q->groups; g++) { \
                    for (int64_t j = 0; j < q->kw; j++) { \
                        int64_t iw = iw0 + j * q->dw; \
                        if (iw < 0 || iw >= q->w) continue; \
                        ADD(row + iw * q->c + g * cg, col + g * taps * cg + (i * q->kw + j) * cg, (size_t)cg); \
                    } \
                } \
            } \
        } \
    } \
}

CDNNL_DEFINE_COL2IM(, cdnnl_col2im_nhwc_, cdnnl_add_)
CDNNL_DEFINE_COL2IM(__attribute__((target("avx512f"))), cdnnl_col2im_nhwc_avx512_, cdnnl_add_avx512_)
#undef CDNNL_DEFINE_COL2IM

/// col2im for groups == 1 and dense kernel columns (dw == 1), AVX-512, with the row schedule
/// (``cdnnl_row_schedule_``): each 16-float block of a dx row is loaded and stored once per kernel
/// row, and the segments overlapping it are added with masked loads. (Adding the overlapping
/// segments to memory one by one — shift sw·C floats, length kw·C — stalled on store-to-load
/// forwarding; computing the masks on the fly cost more than the adds.)
__attribute__((target("avx512f"))) static void cdnnl_col2im_rows_avx512_(const cdnnl_nhwc_bwd *b, const float *dcol,
                                                                         int64_t b0, int64_t b1, int64_t r0,
                                                                         int64_t r1, float *dx) {
    const cdnnl_nhwc_bwd_params *q = &b->p;
    int64_t ld = q->kh * q->kw * q->c, rowlen = q->w * q->c;
    const int32_t *first = b->block_first, *offset = b->entry_offset;
    const uint16_t *mask = b->entry_mask;
    for (int64_t a = b0; a < b1; a++) {
        for (int64_t i = 0; i < q->kh; i++) {
            int64_t ih = a * q->sh - q->pt + i * q->dh;
            if (ih < r0 || ih >= r1) continue;
            float *dst = dx + ih * rowlen;
            const char *src = (const char *)(dcol + (a - b0) * b->ow * ld + i * q->kw * q->c);
            for (int k = 0; k < b->nblocks; k++) {
                int e0 = first[k], e1 = first[k + 1];
                if (e0 == e1) continue;
                int64_t blk = (int64_t)k * 16, lanes = rowlen - blk < 16 ? rowlen - blk : 16;
                __mmask16 bm = (__mmask16)((1u << lanes) - 1);
                // Two accumulators: one chain of dependent adds is latency-bound. Lanes outside
                // a mask are neither read nor faulted on (the address may precede the segment).
                __m512 acc = _mm512_maskz_loadu_ps(bm, dst + blk), acc2 = _mm512_setzero_ps();
                int e = e0;
                for (; e + 1 < e1; e += 2) {
                    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps((__mmask16)mask[e], src + (int64_t)offset[e] * 4));
                    acc2 = _mm512_add_ps(acc2, _mm512_maskz_loadu_ps((__mmask16)mask[e + 1],
                                                                     src + (int64_t)offset[e + 1] * 4));
                }
                if (e < e1) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps((__mmask16)mask[e], src + (int64_t)offset[e] * 4));
                _mm512_mask_storeu_ps(dst + blk, bm, _mm512_add_ps(acc, acc2));
            }
        }
    }
}

/// One GEMM tile: images, input rows [r0, r1) written from output rows [a0, a1).
static int cdnnl_nhwc_bwd_gemm_tile_(const cdnnl_nhwc_bwd *b, const cdnnl_nhwc_bwd_tile_ *t, const float *dy,
                                     float *dx) {
    const cdnnl_nhwc_bwd_params *q = &b->p;
    int64_t cg = q->c / q->groups, og = q->o / q->groups, taps = q->kh * q->kw;
    if (b->pointwise) {
        int64_t m = t->r1 - t->r0;
        for (int64_t g = 0; g < q->groups; g++)
            if (cdnnl_gemm_(q->gemm, m, cg, og, dy + t->dy_offset + g * og, q->o, b->wmat + g * og * cg, cg,
                            b->accumulate ? 1.0f : 0.0f, dx + t->dx_offset + g * cg, q->c) != 0) return -1;
        return 0;
    }
    int64_t rowlen = q->w * q->c, keff = (q->kh - 1) * q->dh + 1, ld = taps * q->c;
    int avx512 = cdnnl_has_avx512_() && !q->portable;
    float *dcol = cdnnl_scratch(1, (size_t)(b->chunk_rows * b->ow * ld) * sizeof(float));
    if (!dcol) return -1;
    for (int64_t i = t->image0; i < t->image0 + t->images; i++) {
        const float *dyi = dy + i * b->oh * b->ow * q->o;
        float *dxi = dx + i * q->h * rowlen;
        int64_t zeroed = t->r0;   // rows [r0, zeroed) of dx are zeroed (not accumulating)
        for (int64_t a = t->a0; a < t->a1; a += b->chunk_rows) {
            int64_t e = a + b->chunk_rows < t->a1 ? a + b->chunk_rows : t->a1, m = (e - a) * b->ow;
            for (int64_t g = 0; g < q->groups; g++)
                if (cdnnl_gemm_(q->gemm, m, taps * cg, og, dyi + a * b->ow * q->o + g * og, q->o,
                                b->wmat + g * og * taps * cg, taps * cg, 0.0f, dcol + g * taps * cg, ld) != 0)
                    return -1;
            if (!b->accumulate) {
                int64_t reach = (e - 1) * q->sh - q->pt + keff;
                if (reach > t->r1) reach = t->r1;
                if (reach > zeroed) {
                    memset(dxi + zeroed * rowlen, 0, (size_t)((reach - zeroed) * rowlen) * sizeof(float));
                    zeroed = reach;
                }
            }
            if (avx512 && b->nblocks > 0) cdnnl_col2im_rows_avx512_(b, dcol, a, e, t->r0, t->r1, dxi);
            else if (avx512) cdnnl_col2im_nhwc_avx512_(b, dcol, a, e, t->r0, t->r1, dxi);
            else cdnnl_col2im_nhwc_(b, dcol, a, e, t->r0, t->r1, dxi);
        }
        if (!b->accumulate && zeroed < t->r1)
            memset(dxi + zeroed * rowlen, 0, (size_t)((t->r1 - zeroed) * rowlen) * sizeof(float));
    }
    return 0;
}

int cdnnl_nhwc_bwd_run(const cdnnl_nhwc_bwd *b, int part, const float *dy, float *dx) {
    if (part < 0 || part >= b->nparts) return -1;
    omp_set_num_threads(1);
    for (int i = b->first[part]; i < b->first[part + 1]; i++) {
        const cdnnl_nhwc_bwd_tile_ *t = &b->tiles[i];
        if (b->method == 1) {
            if (cdnnl_nhwc_bwd_gemm_tile_(b, t, dy, dx) != 0) return -1;
            continue;
        }
        if (t->kind < 0) {
            // No output row reaches these input rows: their gradient is zero.
            if (!b->accumulate)
                memset(dx + t->dx_offset, 0, (size_t)(t->images * (t->r1 - t->r0) * b->p.w * b->p.c) * sizeof(float));
            continue;
        }
        const cdnnl_nhwc_bwd_kind_ *k = &b->kinds[t->kind];
        if (!b->accumulate) {
            if (cdnnl_nhwc_bwd_execute_(k, dy + t->dy_offset, dx + t->dx_offset) != 0) return -1;
            continue;
        }
        float *s = cdnnl_scratch(1, k->dx_count * sizeof(float));
        if (!s || cdnnl_nhwc_bwd_execute_(k, dy + t->dy_offset, s) != 0) return -1;
        if (cdnnl_has_avx512_() && !b->p.portable) cdnnl_add_avx512_(dx + t->dx_offset, s, k->dx_count);
        else cdnnl_add_(dx + t->dx_offset, s, k->dx_count);
    }
    return 0;
}
