/* SPDX-License-Identifier: MIT */
/* ringipc-bench --workers forks its master and workers: Linux only. */
#include <stdio.h>

#include "workers.h"

int workers_main(const int *counts, int ncounts, int reps, double budget_s, int busy_rows,
                 int idle_transport, int busy_transport)
{
    (void)counts, (void)ncounts, (void)reps, (void)budget_s, (void)busy_rows;
    (void)idle_transport, (void)busy_transport;
    fprintf(stderr, "ringipc-bench: --workers is not available on Windows\n");
    return 2;
}
