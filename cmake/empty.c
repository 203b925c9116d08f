/* Keeps an area's static library non-empty while the area has no sources yet. */
typedef int aviary_empty_translation_unit;
