// CCodecs: a thin C layer over libpng (simplified API) and libjpeg-turbo.
//
// Why C: libjpeg and libpng's full API report errors through a callback that must not return; its default handler
// calls exit(). Here a setjmp/longjmp error manager turns every libjpeg error (and the "premature
// end of file" warning of a truncated file) into a non-zero return code and a message, so that a
// corrupt photo can never end the process. PNG decoding uses libpng's simplified API (no setjmp);
// PNG encoding uses the full API with its own setjmp error handler (for the zlib level).
//
// Conventions: every function returns 0 on success and non-zero on failure, in which case
// `message` (at least CCODECS_MESSAGE_SIZE bytes) holds a NUL-terminated reason. Pixel buffers
// are interleaved, top row first, no row padding. Buffers returned through `out` pointers are
// allocated with malloc and released with ccodecs_free.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Size of the message buffers the functions below write into.
#define CCODECS_MESSAGE_SIZE 256

/// What a header says about an image, read before any pixel memory is allocated.
typedef struct {
    int width;
    int height;
    /// JPEG: components in the file (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK). PNG: channels (1-4).
    int components;
    /// PNG: bits per channel (8 or 16; palette images report 8). JPEG: 8 (or 12/16 if the file says so).
    int bit_depth;
    /// JPEG: 1 if the file is progressive. PNG: 1 if the image has a palette.
    int progressive_or_palette;
    /// JPEG: 1 if the file has an Adobe APP14 marker. PNG: 1 if the image has an alpha channel or tRNS.
    int adobe_or_alpha;
} ccodecs_info;

/// Reads a JPEG header from memory.
int ccodecs_jpeg_info(const uint8_t *data, size_t size, ccodecs_info *info, char *message);

/// Decodes a JPEG into `rgb` (capacity bytes; must be width*height*3 of the header).
/// Gray images are expanded to RGB; CMYK and YCCK are converted to RGB, treating the values as
/// inverted (Adobe/Photoshop convention) when the file carries an Adobe marker.
/// A truncated file ("Premature end of JPEG file") is an error.
int ccodecs_jpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *rgb, size_t capacity,
                            char *message);

/// Encodes interleaved 8-bit pixels (components 1 = gray or 3 = RGB) as a baseline JPEG of the
/// given quality (1-100, 4:2:0 chroma subsampling for RGB).
int ccodecs_jpeg_encode(const uint8_t *pixels, int width, int height, int components, int quality,
                        uint8_t **out, size_t *out_size, char *message);

/// Reads a PNG header from memory.
int ccodecs_png_info(const uint8_t *data, size_t size, ccodecs_info *info, char *message);

/// Decodes a PNG of any kind into 8-bit interleaved pixels: RGB (channels 3) or RGBA (channels 4,
/// colour not premultiplied). 16-bit files without colour-space information are taken as sRGB
/// (like PIL and OpenCV), not as linear light.
int ccodecs_png_decode(const uint8_t *data, size_t size, int channels, uint8_t *out, size_t capacity,
                       char *message);

/// Encodes interleaved 8-bit pixels (components 1 = gray, 3 = RGB, 4 = RGBA) as PNG with zlib
/// `level` (0-9): levels up to 3 use the "Up" row filter, higher levels libpng's adaptive filters.
int ccodecs_png_encode(const uint8_t *pixels, int width, int height, int components, int level,
                       uint8_t **out, size_t *out_size, char *message);

/// Releases a buffer returned by an encoder.
void ccodecs_free(void *pointer);

#ifdef __cplusplus
}
#endif
