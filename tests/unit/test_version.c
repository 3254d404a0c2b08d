/* SPDX-License-Identifier: MIT */
/*
 * The version a user can check: RIPC_VERSION_* in ringipc.h, ripc_version()
 * and ripc_version_number() of the shared library this test is linked to,
 * its SONAME, and the version the CMake package and the pkg-config module
 * announce must all be the one project() sets in CMakeLists.txt. Built by
 * tests/CMakeLists.txt, which passes that version and the generated files'
 * paths.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "ringipc/ringipc.h"

#define STR_(x) #x
#define STR(x)  STR_(x)
#define HEADER_VERSION                                                                             \
    STR(RIPC_VERSION_MAJOR) "." STR(RIPC_VERSION_MINOR) "." STR(RIPC_VERSION_PATCH)

static void test_version_header_matches_project(void **state)
{
    (void)state;
    assert_string_equal(HEADER_VERSION, RIPC_TEST_PROJECT_VERSION);
    assert_int_equal(RIPC_VERSION_NUMBER,
                     (RIPC_VERSION_MAJOR << 16) | (RIPC_VERSION_MINOR << 8) | RIPC_VERSION_PATCH);
}

static void test_version_runtime_matches_header(void **state)
{
    (void)state;
    assert_non_null(ripc_version());
    assert_string_equal(ripc_version(), HEADER_VERSION);
    assert_int_equal(ripc_version_number(), RIPC_VERSION_NUMBER);
}

/* The loader found the library by the SONAME recorded at link time, so the
 * file it mapped ripc_version from is named after it. */
static void test_version_soname_is_major(void **state)
{
    (void)state;
    Dl_info info;
    assert_int_not_equal(dladdr((void *)ripc_version, &info), 0);
    assert_non_null(info.dli_fname);
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    assert_string_equal(base, "libringipc.so." STR(RIPC_VERSION_MAJOR));
    assert_string_equal(base, RIPC_TEST_SONAME);
}

/* The first line of path that starts with key, the rest of it in out. */
static int line_after(const char *path, const char *key, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            snprintf(out, len, "%s", line + strlen(key));
            out[strcspn(out, "\r\n")] = 0;
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static void test_version_packages_match(void **state)
{
    (void)state;
    char v[128];
    assert_int_equal(line_after(RIPC_TEST_PC_FILE, "Version: ", v, sizeof v), 0);
    assert_string_equal(v, ripc_version());
    assert_int_equal(
        line_after(RIPC_TEST_CMAKE_VERSION_FILE, "set(PACKAGE_VERSION \"", v, sizeof v), 0);
    assert_string_equal(v, HEADER_VERSION "\")");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_header_matches_project),
        cmocka_unit_test(test_version_runtime_matches_header),
        cmocka_unit_test(test_version_soname_is_major),
        cmocka_unit_test(test_version_packages_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
