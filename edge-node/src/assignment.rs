//! Optimal assignment (the Hungarian method, Kuhn-Munkres with potentials) for the small cost
//! matrices of one gated cluster of observations and tracks.

/// For an `n x m` cost matrix (`n <= m`, row-major), the column assigned to each row, with the
/// least total cost. O(n^2 m).
pub fn hungarian(n: usize, m: usize, cost: &[f64]) -> Vec<usize> {
    assert!(
        n <= m && cost.len() == n * m,
        "rows must not outnumber columns"
    );
    // 1-based arrays as in the classic formulation; column 0 is a sentinel.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![0; n];
    for j in 1..=m {
        if p[j] != 0 {
            out[p[j] - 1] = j - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(n: usize, m: usize, cost: &[f64], a: &[usize]) -> f64 {
        (0..n).map(|i| cost[i * m + a[i]]).sum()
    }

    /// Every injective assignment, for checking small cases.
    fn brute(n: usize, m: usize, cost: &[f64]) -> f64 {
        fn go(i: usize, n: usize, m: usize, cost: &[f64], used: &mut Vec<bool>) -> f64 {
            if i == n {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..m {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[i * m + j] + go(i + 1, n, m, cost, used));
                    used[j] = false;
                }
            }
            best
        }
        go(0, n, m, cost, &mut vec![false; m])
    }

    #[test]
    fn greedy_would_be_wrong_here() {
        // Greedy takes (0,0) at cost 1 and is left with (1,1) at 10; optimal is 2 + 3.
        let cost = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(hungarian(2, 2, &cost), vec![1, 0]);
    }

    #[test]
    fn matches_brute_force_on_many_small_matrices() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for n in 1..=4 {
            for m in n..=6 {
                for _ in 0..30 {
                    let cost: Vec<f64> = (0..n * m).map(|_| (next() * 20.0).floor()).collect();
                    let a = hungarian(n, m, &cost);
                    let mut seen = a.clone();
                    seen.sort();
                    seen.dedup();
                    assert_eq!(seen.len(), n, "assignment is injective");
                    assert_eq!(total(n, m, &cost, &a), brute(n, m, &cost));
                }
            }
        }
    }
}
