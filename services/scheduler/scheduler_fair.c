/*
 * Weighted max-min fair shares by progressive filling (scheduler_fair.h).
 */
#include "scheduler_fair.h"

#include <stdbool.h>

void scheduler_fair_share(const long *demand, const long *weight, int n, long total, int start,
                          long *share)
{
    long left = total;
    for (int i = 0; i < n; i++)
        share[i] = 0;
    /* Rounds: split what is left among the deployments still wanting more,
     * by weight, rounding down; stop when a round gives nothing. */
    for (;;) {
        double weights = 0;
        for (int i = 0; i < n; i++)
            if (share[i] < demand[i])
                weights += (double)(weight[i] > 0 ? weight[i] : 1);
        if (left <= 0 || weights == 0)
            return;
        long given = 0;
        for (int i = 0; i < n; i++) {
            if (share[i] >= demand[i])
                continue;
            long w = weight[i] > 0 ? weight[i] : 1;
            long want = demand[i] - share[i];
            long part = (long)((double)left * (double)w / weights);
            if (part > want)
                part = want;
            share[i] += part;
            given += part;
        }
        left -= given;
        if (given == 0)
            break;
    }
    /* What rounding left: one unit each, in turn from start. */
    for (int k = 0; k < n && left > 0; k++) {
        int i = ((start % n) + n + k) % n;
        if (share[i] < demand[i]) {
            share[i]++;
            left--;
        }
    }
}
