/*
 * Sharing scarce capacity between deployments: when the live dialers have
 * fewer free channels than the due deployments could use, each gets a share
 * in proportion to its capacity (weighted max-min fairness), so one huge
 * deployment cannot starve a small one, and what one cannot use goes to the
 * others.
 */
#ifndef SCHEDULER_FAIR_H
#define SCHEDULER_FAIR_H

/*
 * Divides total between n deployments. demand[i] is how many deployment i
 * could take now (its free capacity), weight[i] its share's weight (its
 * capacity, >= 1). Writes share[i] <= demand[i] with sum(share) =
 * min(total, sum(demand)): every deployment gets min(demand, its weighted
 * share of what is left), repeatedly, until total or demand runs out. Units
 * left over by rounding go one each to the deployments first in the order
 * that starts at index `start` (rotate it from pass to pass so no one is
 * always last). Pure; O(n log n) at worst per round, few rounds.
 */
void scheduler_fair_share(const long *demand, const long *weight, int n, long total, int start,
                          long *share);

#endif
