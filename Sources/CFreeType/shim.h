#pragma once
// FreeType 2 (Debian: libfreetype-dev), used by Imaging/Text.swift to draw captions.
#include <ft2build.h>
#include FT_FREETYPE_H

// Function-like and cast macros are not imported into Swift: plain constants and helpers instead.
static const FT_Int32 camkit_ft_load_default = FT_LOAD_DEFAULT;
static const FT_Int32 camkit_ft_load_render = FT_LOAD_RENDER;

static inline int camkit_ft_has_kerning(FT_Face face) { return FT_HAS_KERNING(face) ? 1 : 0; }
