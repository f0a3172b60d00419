// CCodecs implementation. See include/ccodecs.h for the contract.
//
// libjpeg: the error manager below replaces jpeg_std_error's error_exit (which calls exit()) by a
// longjmp back into the function that started the operation; every libjpeg object is destroyed
// on that path, and all memory allocated after setjmp comes from libjpeg's own pools (freed by
// jpeg_destroy_*) or is reachable from the context struct, so an error leaks nothing.
// libpng: the simplified API (png_image_*) reports errors in png_image.message.

#include "ccodecs.h"

#include <setjmp.h>
#include <stdio.h>   // must precede jpeglib.h (size_t, FILE)
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void copy_message(char *message, const char *text) {
    if (message == NULL) return;
    snprintf(message, CCODECS_MESSAGE_SIZE, "%s", text);
}

// MARK: - libjpeg error handling

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char text[JMSG_LENGTH_MAX];
    /// Output of the encoder (kept here, in memory the longjmp cannot roll back).
    unsigned char *out_buffer;
    unsigned long out_size;
} ccodecs_jpeg_context;

static void ccodecs_jpeg_error_exit(j_common_ptr cinfo) {
    ccodecs_jpeg_context *ctx = (ccodecs_jpeg_context *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, ctx->text);
    longjmp(ctx->jump, 1);
}

static void ccodecs_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) {
        // A truncated file is an error, not a grey-padded image.
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
            ccodecs_jpeg_error_exit(cinfo);
        }
        cinfo->err->num_warnings++;
    }
    // Trace messages (level >= 0) and other warnings are silent: library code never prints.
}

static void ccodecs_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void ccodecs_jpeg_install(ccodecs_jpeg_context *ctx) {
    memset(ctx, 0, sizeof(*ctx));
    jpeg_std_error(&ctx->pub);
    ctx->pub.error_exit = ccodecs_jpeg_error_exit;
    ctx->pub.emit_message = ccodecs_jpeg_emit_message;
    ctx->pub.output_message = ccodecs_jpeg_output_message;
}

// MARK: - JPEG decoding

int ccodecs_jpeg_info(const uint8_t *data, size_t size, ccodecs_info *info, char *message) {
    struct jpeg_decompress_struct cinfo;
    ccodecs_jpeg_context ctx;
    ccodecs_jpeg_install(&ctx);
    cinfo.err = &ctx.pub;
    if (setjmp(ctx.jump)) {
        copy_message(message, ctx.text);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    memset(info, 0, sizeof(*info));
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->components = cinfo.num_components;
    info->bit_depth = cinfo.data_precision;
    info->progressive_or_palette = cinfo.progressive_mode ? 1 : 0;
    info->adobe_or_alpha = cinfo.saw_Adobe_marker ? 1 : 0;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int ccodecs_jpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *rgb, size_t capacity,
                            char *message) {
    struct jpeg_decompress_struct cinfo;
    ccodecs_jpeg_context ctx;
    ccodecs_jpeg_install(&ctx);
    cinfo.err = &ctx.pub;
    if (setjmp(ctx.jump)) {
        copy_message(message, ctx.text);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    const size_t width = cinfo.image_width, height = cinfo.image_height;
    if (width * height * 3 != capacity) {
        copy_message(message, "output buffer does not match the image size");
        jpeg_destroy_decompress(&cinfo);
        return 2;
    }
    const int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    const int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    if (cinfo.output_width != width || cinfo.output_height != height ||
        cinfo.output_components != (cmyk ? 4 : 3)) {
        copy_message(message, "unexpected output geometry from libjpeg");
        jpeg_destroy_decompress(&cinfo);
        return 2;
    }
    if (!cmyk) {
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW row = rgb + (size_t)cinfo.output_scanline * width * 3;
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
    } else {
        // Freed with the decompressor, also on the error path.
        JSAMPARRAY buffer = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                                      (JDIMENSION)(width * 4), 1);
        while (cinfo.output_scanline < cinfo.output_height) {
            uint8_t *dst = rgb + (size_t)cinfo.output_scanline * width * 3;
            jpeg_read_scanlines(&cinfo, buffer, 1);
            const uint8_t *src = buffer[0];
            for (size_t x = 0; x < width; x++) {
                unsigned c = src[4 * x], m = src[4 * x + 1], y = src[4 * x + 2], k = src[4 * x + 3];
                if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
                // Values are now "255 - ink": R = (1 - C)(1 - K), rounded.
                dst[3 * x] = (uint8_t)((c * k + 127) / 255);
                dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                dst[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

// MARK: - JPEG encoding

int ccodecs_jpeg_encode(const uint8_t *pixels, int width, int height, int components, int quality,
                        uint8_t **out, size_t *out_size, char *message) {
    *out = NULL;
    *out_size = 0;
    if (width <= 0 || height <= 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION ||
        (components != 1 && components != 3)) {
        copy_message(message, "JPEG supports 1 or 3 channels and sides of 1 to 65500 pixels");
        return 2;
    }
    struct jpeg_compress_struct cinfo;
    ccodecs_jpeg_context ctx;
    ccodecs_jpeg_install(&ctx);
    cinfo.err = &ctx.pub;
    if (setjmp(ctx.jump)) {
        copy_message(message, ctx.text);
        jpeg_destroy_compress(&cinfo);
        free(ctx.out_buffer);
        return 1;
    }
    jpeg_CreateCompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_compress_struct));
    jpeg_mem_dest(&cinfo, &ctx.out_buffer, &ctx.out_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const size_t stride = (size_t)width * (size_t)components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = ctx.out_buffer;
    *out_size = (size_t)ctx.out_size;
    return 0;
}

// MARK: - PNG

int ccodecs_png_info(const uint8_t *data, size_t size, ccodecs_info *info, char *message) {
    png_image image;
    memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        copy_message(message, image.message);
        png_image_free(&image);
        return 1;
    }
    memset(info, 0, sizeof(*info));
    info->width = (int)image.width;
    info->height = (int)image.height;
    info->components = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    info->bit_depth = (image.format & PNG_FORMAT_FLAG_LINEAR) ? 16 : 8;
    info->progressive_or_palette = (image.format & PNG_FORMAT_FLAG_COLORMAP) ? 1 : 0;
    info->adobe_or_alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) ? 1 : 0;
    png_image_free(&image);
    return 0;
}

int ccodecs_png_decode(const uint8_t *data, size_t size, int channels, uint8_t *out, size_t capacity,
                       char *message) {
    if (channels != 3 && channels != 4) {
        copy_message(message, "PNG output must have 3 or 4 channels");
        return 2;
    }
    png_image image;
    memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        copy_message(message, image.message);
        png_image_free(&image);
        return 1;
    }
    // 16-bit files without gAMA/sRGB/iCCP are sRGB-encoded in practice (libpng would assume linear).
    image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    image.format = channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    if ((size_t)PNG_IMAGE_SIZE(image) != capacity) {
        copy_message(message, "output buffer does not match the image size");
        png_image_free(&image);
        return 2;
    }
    if (!png_image_finish_read(&image, NULL, out, 0, NULL)) {
        copy_message(message, image.message);
        png_image_free(&image);
        return 1;
    }
    png_image_free(&image);
    return 0;
}

// PNG encoding uses libpng's full write API (not png_image_write_to_memory) because the
// simplified API offers only two settings: libpng's default (zlib 6, adaptive filters; ~6x slower)
// and PNG_IMAGE_FLAG_FAST (zlib 3 without filters). Measured on a 12 MP photo and a 12 MP overlay,
// zlib level 1 with the "Up" filter was 1.3-2x faster than FLAG_FAST *and* 25-40 % smaller.

typedef struct {
    jmp_buf jump;
    char text[CCODECS_MESSAGE_SIZE];
    uint8_t *data;
    size_t size, capacity;
    int out_of_memory;
} ccodecs_png_writer;

static void ccodecs_png_error(png_structp png, png_const_charp text) {
    ccodecs_png_writer *w = (ccodecs_png_writer *)png_get_error_ptr(png);
    snprintf(w->text, sizeof w->text, "%s", text);
    longjmp(w->jump, 1);
}

static void ccodecs_png_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void ccodecs_png_write(png_structp png, png_bytep data, png_size_t length) {
    ccodecs_png_writer *w = (ccodecs_png_writer *)png_get_io_ptr(png);
    if (w->size + length > w->capacity) {
        size_t capacity = w->capacity ? w->capacity : 1 << 16;
        while (capacity < w->size + length) capacity *= 2;
        uint8_t *grown = (uint8_t *)realloc(w->data, capacity);
        if (grown == NULL) {
            w->out_of_memory = 1;
            png_error(png, "out of memory");
        }
        w->data = grown;
        w->capacity = capacity;
    }
    memcpy(w->data + w->size, data, length);
    w->size += length;
}

static void ccodecs_png_flush(png_structp png) { (void)png; }

int ccodecs_png_encode(const uint8_t *pixels, int width, int height, int components, int level,
                       uint8_t **out, size_t *out_size, char *message) {
    *out = NULL;
    *out_size = 0;
    if (width <= 0 || height <= 0 || (components != 1 && components != 3 && components != 4)) {
        copy_message(message, "PNG encoding needs a non-empty image with 1, 3 or 4 channels");
        return 2;
    }
    ccodecs_png_writer *w = (ccodecs_png_writer *)calloc(1, sizeof(ccodecs_png_writer));
    if (w == NULL) {
        copy_message(message, "out of memory");
        return 3;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w, ccodecs_png_error, ccodecs_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, NULL);
        free(w);
        copy_message(message, "out of memory");
        return 3;
    }
    if (setjmp(w->jump)) {
        copy_message(message, w->text);
        png_destroy_write_struct(&png, &info);
        free(w->data);
        free(w);
        return 1;
    }
    png_set_write_fn(png, w, ccodecs_png_write, ccodecs_png_flush);
    const int color = components == 1 ? PNG_COLOR_TYPE_GRAY
                    : (components == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    const int z = level < 0 ? 6 : (level > 9 ? 9 : level);
    png_set_compression_level(png, z);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, z <= 3 ? PNG_FILTER_UP : PNG_ALL_FILTERS);
    png_write_info(png, info);
    const size_t stride = (size_t)width * (size_t)components;
    for (int y = 0; y < height; y++) {
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = w->data;
    *out_size = w->size;
    free(w);
    return 0;
}

void ccodecs_free(void *pointer) { free(pointer); }
