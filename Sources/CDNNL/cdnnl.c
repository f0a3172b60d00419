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
    const dnnl_memory_desc_t *q;
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
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    strncpy(c->impl, impl ? impl : "?", sizeof c->impl - 1);
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0); c->src_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0); c->dst_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0); c->weights_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0); c->scratchpad_md = *q;
    c->scratchpad_bytes = dnnl_memory_desc_get_size(&c->scratchpad_md);
    CDNNL_TRY(dnnl_primitive_create(&c->conv, pd));
    if (!dnnl_memory_desc_equal(&c->src_md, &c->src_user)) {
        if (!(c->src_reorder = cdnnl_reorder_(&c->src_user, &c->src_md))) goto fail;
    }
    if (!dnnl_memory_desc_equal(&c->dst_md, &c->dst_user)) {
        if (!(c->dst_reorder = cdnnl_reorder_(&c->dst_md, &c->dst_user))) goto fail;
    }
    c->src_bytes = dnnl_memory_desc_get_size(&c->src_md);
    c->dst_bytes = dnnl_memory_desc_get_size(&c->dst_md);
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
    const dnnl_memory_desc_t *q;
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
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    strncpy(c->impl, impl ? impl : "?", sizeof c->impl - 1);
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0); c->src_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0); c->dst_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0); c->weights_md = *q;
    q = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0); c->scratchpad_md = *q;
    c->scratchpad_bytes = dnnl_memory_desc_get_size(&c->scratchpad_md);
    CDNNL_TRY(dnnl_primitive_create(&c->conv, pd));
    if (!dnnl_memory_desc_equal(&c->src_md, &c->src_user)) {
        if (!(c->src_reorder = cdnnl_reorder_(&c->src_user, &c->src_md))) goto fail;
    }
    if (!dnnl_memory_desc_equal(&c->dst_md, &c->dst_user)) {
        if (!(c->dst_reorder = cdnnl_reorder_(&c->dst_md, &c->dst_user))) goto fail;
    }
    c->src_bytes = dnnl_memory_desc_get_size(&c->src_md);
    c->dst_bytes = dnnl_memory_desc_get_size(&c->dst_md);
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
