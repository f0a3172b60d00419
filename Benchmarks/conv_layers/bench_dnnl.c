// Times oneDNN (Debian's libdnnl 2.6.3) forward convolutions on the shapes listed in a file, in
// two ways: with CAMKit's layouts (NCHW activations, OIHW filters) and with the layouts oneDNN
// prefers (`format_tag::any`, usually nChw16c blocked), both with and without the reorders that
// convert NCHW input/output to and from the blocked layout. Filters are reordered once, outside
// the timing (a plan would do that at specialisation). Bias is included; no post-ops.
//
// Build: cc -O2 -o bench_dnnl bench_dnnl.c -ldnnl
// Run:   OMP_NUM_THREADS=2 ./bench_dnnl shapes.txt BATCH REPS
// shapes.txt lines: C H W O KH KW STRIDE GROUPS PAD_TOP PAD_LEFT PAD_BOTTOM PAD_RIGHT COUNT LABEL
// Output: one JSON object per shape (milliseconds, medians of REPS after 3 warm-up runs).
// Debian's libdnnl uses the OpenMP runtime (DNNL_CPU_RUNTIME = OMP): OMP_NUM_THREADS sets its threads.
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) { \
    fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)s_); return -1; } } while (0)

static double now_ms(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y;
}

static dnnl_engine_t engine;
static dnnl_stream_t stream;

typedef struct { int c, h, w, o, kh, kw, s, g, pt, pl, pb, pr; } shape_t;

static float *random_buffer(size_t n) {
    float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64 + 64);
    for (size_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX - 0.5f;
    return p;
}

// A memory object over `md`, with its own buffer (NULL handle allocates).
static dnnl_memory_t make_memory(const dnnl_memory_desc_t *md, void *handle) {
    dnnl_memory_t m;
    if (dnnl_memory_create(&m, md, engine, handle ? handle : DNNL_MEMORY_ALLOCATE) != dnnl_success) return NULL;
    return m;
}

static dnnl_primitive_t make_reorder(dnnl_memory_t from, dnnl_memory_t to) {
    const dnnl_memory_desc_t *a, *b;
    dnnl_memory_get_memory_desc(from, &a);
    dnnl_memory_get_memory_desc(to, &b);
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, a, engine, b, engine, NULL) != dnnl_success) return NULL;
    dnnl_primitive_t p;
    dnnl_primitive_create(&p, pd);
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static void run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    dnnl_primitive_execute(r, stream, 2, args);
}

// Times one shape; `blocked` selects format_tag::any. Writes the conv-only and the with-reorders
// medians (the same when no reorder is needed) and the implementation name.
static int time_shape(const shape_t *sh, int batch, int reps, int blocked, double *conv_ms,
                      double *total_ms, double *total_min_ms, char *impl, size_t impl_size) {
    int oh = (sh->h + sh->pt + sh->pb - sh->kh) / sh->s + 1;
    int ow = (sh->w + sh->pl + sh->pr - sh->kw) / sh->s + 1;
    dnnl_dims_t src_dims = {batch, sh->c, sh->h, sh->w};
    dnnl_dims_t dst_dims = {batch, sh->o, oh, ow};
    dnnl_dims_t bias_dims = {sh->o};
    dnnl_dims_t w_dims5 = {sh->g, sh->o / sh->g, sh->c / sh->g, sh->kh, sh->kw};
    dnnl_dims_t w_dims4 = {sh->o, sh->c, sh->kh, sh->kw};
    int grouped = sh->g > 1;
    dnnl_memory_desc_t src_user, dst_user, w_user, bias_md, src_md, dst_md, w_md;
    CHECK(dnnl_memory_desc_init_by_tag(&src_user, 4, src_dims, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_user, 4, dst_dims, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_f32, dnnl_x));
    if (grouped) CHECK(dnnl_memory_desc_init_by_tag(&w_user, 5, w_dims5, dnnl_f32, dnnl_goihw));
    else CHECK(dnnl_memory_desc_init_by_tag(&w_user, 4, w_dims4, dnnl_f32, dnnl_oihw));
    dnnl_format_tag_t any = dnnl_format_tag_any;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, blocked ? any : dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, blocked ? any : dnnl_nchw));
    if (grouped) CHECK(dnnl_memory_desc_init_by_tag(&w_md, 5, w_dims5, dnnl_f32, blocked ? any : dnnl_goihw));
    else CHECK(dnnl_memory_desc_init_by_tag(&w_md, 4, w_dims4, dnnl_f32, blocked ? any : dnnl_oihw));
    dnnl_dims_t strides = {sh->s, sh->s}, pad_l = {sh->pt, sh->pl}, pad_r = {sh->pb, sh->pr};
    dnnl_convolution_desc_t desc;
    CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                             &src_md, &w_md, &bias_md, &dst_md, strides, pad_l, pad_r));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, impl_size, "%s", name ? name : "?");
    const dnnl_memory_desc_t *src_pref = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst_pref = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *w_pref = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);

    size_t src_n = (size_t)batch * sh->c * sh->h * sh->w, dst_n = (size_t)batch * sh->o * oh * ow;
    size_t w_n = (size_t)sh->o * (sh->c / sh->g) * sh->kh * sh->kw;
    float *x = random_buffer(src_n), *y = random_buffer(dst_n), *wt = random_buffer(w_n), *b = random_buffer(sh->o);
    dnnl_memory_t x_user = make_memory(&src_user, x), y_user = make_memory(&dst_user, y);
    dnnl_memory_t w_usr = make_memory(&w_user, wt), b_mem = make_memory(&bias_md, b);
    int src_same = dnnl_memory_desc_equal(src_pref, &src_user);
    int dst_same = dnnl_memory_desc_equal(dst_pref, &dst_user);
    int w_same = dnnl_memory_desc_equal(w_pref, &w_user);
    dnnl_memory_t x_conv = src_same ? x_user : make_memory(src_pref, NULL);
    dnnl_memory_t y_conv = dst_same ? y_user : make_memory(dst_pref, NULL);
    dnnl_memory_t w_conv = w_same ? w_usr : make_memory(w_pref, NULL);
    dnnl_primitive_t rx = src_same ? NULL : make_reorder(x_user, x_conv);
    dnnl_primitive_t ry = dst_same ? NULL : make_reorder(y_conv, y_user);
    if (!w_same) {
        dnnl_primitive_t rw = make_reorder(w_usr, w_conv);
        run_reorder(rw, w_usr, w_conv);
        dnnl_stream_wait(stream);
        dnnl_primitive_destroy(rw);
    }
    dnnl_primitive_t conv;
    CHECK(dnnl_primitive_create(&conv, pd));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, x_conv}, {DNNL_ARG_WEIGHTS, w_conv}, {DNNL_ARG_BIAS, b_mem},
                               {DNNL_ARG_DST, y_conv}};
    double *tc = malloc(sizeof(double) * reps), *tt = malloc(sizeof(double) * reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now_ms();
        if (rx) run_reorder(rx, x_user, x_conv);
        double t1 = now_ms();
        dnnl_primitive_execute(conv, stream, 4, args);
        dnnl_stream_wait(stream);
        double t2 = now_ms();
        if (ry) run_reorder(ry, y_conv, y_user);
        dnnl_stream_wait(stream);
        double t3 = now_ms();
        if (r >= 0) { tc[r] = t2 - t1; tt[r] = t3 - t0; }
    }
    qsort(tc, reps, sizeof(double), cmp_double);
    qsort(tt, reps, sizeof(double), cmp_double);
    *conv_ms = tc[reps / 2];
    *total_ms = tt[reps / 2];
    *total_min_ms = tt[0];
    free(tc); free(tt);
    dnnl_primitive_destroy(conv);
    if (rx) { dnnl_primitive_destroy(rx); dnnl_memory_destroy(x_conv); }
    if (ry) { dnnl_primitive_destroy(ry); dnnl_memory_destroy(y_conv); }
    if (!w_same) dnnl_memory_destroy(w_conv);
    dnnl_memory_destroy(x_user); dnnl_memory_destroy(y_user); dnnl_memory_destroy(w_usr); dnnl_memory_destroy(b_mem);
    dnnl_primitive_desc_destroy(pd);
    free(x); free(y); free(wt); free(b);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s shapes.txt batch reps\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 2; }
    int batch = atoi(argv[2]), reps = atoi(argv[3]);
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return 1;
    if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return 1;
    const dnnl_version_t *v = dnnl_version();
    fprintf(stderr, "oneDNN %d.%d.%d, cpu runtime %u, max isa %d\n", v->major, v->minor, v->patch,
            v->cpu_runtime, (int)dnnl_get_effective_cpu_isa());
    char line[512];
    while (fgets(line, sizeof line, f)) {
        shape_t s; int count; char label[256] = "";
        if (line[0] == '#') continue;
        if (sscanf(line, "%d %d %d %d %d %d %d %d %d %d %d %d %d %255s", &s.c, &s.h, &s.w, &s.o, &s.kh, &s.kw,
                   &s.s, &s.g, &s.pt, &s.pl, &s.pb, &s.pr, &count, label) < 13) continue;
        double nc_conv = -1, nc_total = -1, bl_conv = -1, bl_total = -1, nc_min = -1, bl_min = -1;
        char nc_impl[128] = "unsupported", bl_impl[128] = "unsupported";
        if (time_shape(&s, batch, reps, 0, &nc_conv, &nc_total, &nc_min, nc_impl, sizeof nc_impl) != 0) nc_conv = -1;
        if (time_shape(&s, batch, reps, 1, &bl_conv, &bl_total, &bl_min, bl_impl, sizeof bl_impl) != 0) bl_conv = -1;
        printf("{\"label\": \"%s\", \"count\": %d, \"nchw_ms\": %.4f, \"nchw_impl\": \"%s\", "
               "\"blocked_conv_ms\": %.4f, \"blocked_with_reorders_ms\": %.4f, \"blocked_impl\": \"%s\", "
               "\"nchw_min_ms\": %.4f, \"blocked_with_reorders_min_ms\": %.4f}\n",
               label, count, nc_conv, nc_impl, bl_conv, bl_total, bl_impl, nc_min, bl_min);
        fflush(stdout);
    }
    fclose(f);
    return 0;
}
