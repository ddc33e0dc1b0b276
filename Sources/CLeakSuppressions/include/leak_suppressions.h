#ifndef PIXCONV_LEAK_SUPPRESSIONS_H
#define PIXCONV_LEAK_SUPPRESSIONS_H

// LeakSanitizer's hook for default suppressions of the pixconv binary (see leak_suppressions.c).
const char *__lsan_default_suppressions(void);

#endif
