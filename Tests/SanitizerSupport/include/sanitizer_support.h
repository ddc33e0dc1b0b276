#ifndef PIXCONV_SANITIZER_SUPPORT_H
#define PIXCONV_SANITIZER_SUPPORT_H

// LeakSanitizer's hook for default suppressions (see lsan_suppressions.c).
const char *__lsan_default_suppressions(void);

#endif
