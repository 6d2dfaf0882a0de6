//! The search: a dynamic program over beads, each bead's cost the sum of a
//! prior on its shape, a Gale–Church length cost, anchor matches and
//! misses, and (with a translation of the source) how far the translation
//! of its source group is from its target group. Long documents are
//! aligned coarse to fine: blocks of two sentences first, then a band
//! around that path.

use super::features::{Anchor, BUCKETS, Feat, Kind};

/// Cells (rows × columns) a level may search in full; above this the
/// sentences are paired into blocks and the level below searches a band.
const FULL_CELLS: usize = 40_000;
/// Rows and columns searched on either side of the coarse path.
const MARGIN: usize = 6;

/// Cost weights, in nats (negative log probabilities) like the prior.
/// Per [`Kind`]: a match of two anchors, a missed one.
const HIT: [f32; 3] = [2.0, 2.0, 0.25];
const MISS: [f32; 3] = [1.0, 1.0, 0.25];
/// A match where one side is soft (a number word, a month name).
const SOFT_HIT: f32 = 1.0;
/// Weight of the translation distance, per sentence of the bead.
const MT_WEIGHT: f32 = 4.0;
/// A sentence left out costs as much translation distance as a match at
/// this normalised similarity.
const DELETION_SIMILARITY: f32 = 0.6;
/// A group that spans a paragraph break, on either side.
const PARAGRAPH_BREAK: f32 = 3.0;

/// Everything one level of the search compares.
pub(super) struct Level<'a> {
    pub src: &'a [Feat],
    pub tgt: &'a [Feat],
    /// Whether groups that span paragraphs pay [`PARAGRAPH_BREAK`].
    pub paragraphs: bool,
}

/// The length model and the similarity baseline a search runs with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Model {
    /// Target characters per source character.
    pub ratio: f32,
    /// Variance of target length per source character (Gale and Church's s²).
    pub variance: f32,
}

/// Bead shapes searched: 1-0, 0-1, 1-1, 1-n and n-1 up to `max_group`,
/// 2-2, 2-3 and 3-2.
pub(super) fn shapes(max_group: usize) -> Vec<(usize, usize)> {
    let mut s = vec![(1, 1), (1, 0), (0, 1)];
    for n in 2..=max_group {
        s.push((1, n));
        s.push((n, 1));
    }
    for extra in [(2, 2), (2, 3), (3, 2)] {
        if extra.0 <= max_group && extra.1 <= max_group {
            s.push(extra);
        }
    }
    s
}

/// -ln P(shape): Gale and Church's priors (0.89 for 1-1, 0.089 shared by
/// 2-1 and 1-2, 0.011 for 2-2, 0.0099 for each deletion side), each
/// further sentence of a 1-n or n-1 bead three times less likely.
fn prior(a: usize, b: usize) -> f32 {
    let p: f32 = match (a, b) {
        (1, 1) => 0.89,
        (0, _) | (_, 0) => 0.0099,
        (1, n) | (n, 1) => 0.0445 * (1.0f32 / 3.0).powi(n as i32 - 2),
        (2, 2) => 0.011,
        _ => 0.002,
    };
    -p.ln()
}

/// -ln P(|δ| or more) for a standard normal δ: the two-sided tail,
/// `erfc(|δ|/√2)`, computed in the log domain so that it never underflows
/// (Numerical Recipes' `erfcc`, fractional error below 1.2e-7; std has no
/// erfc and the `libm` one would underflow at the tails we need).
fn neg_ln_tail(delta: f32) -> f32 {
    let z = (delta.abs() / std::f32::consts::SQRT_2) as f64;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    -(t.ln() + poly) as f32
}

/// Gale and Church's δ for a bead of `ls` source and `lt` target characters.
pub(super) fn delta(model: Model, ls: f32, lt: f32) -> f32 {
    let mean = (ls * model.ratio + lt) / 2.0;
    (lt - ls * model.ratio) / (model.variance * mean.max(1.0)).sqrt()
}

/// Matched and missed anchors of a source group against a target group.
/// Anchors meet when kind and hash agree; a soft one never misses and
/// gains less.
fn anchor_cost(s: &[Anchor], t: &[Anchor], src: &[Feat], tgt: &[Feat]) -> f32 {
    // A Latin anchor is looked for among the other side's words.
    let miss = |a: Anchor, others: &[Feat]| match a {
        (_, _, true) => 0.0,
        (Kind::Latin, h, _) if others.iter().any(|f| f.words.binary_search(&h).is_ok()) => {
            -HIT[Kind::Latin as usize]
        }
        (k, _, _) => MISS[k as usize],
    };
    let mut cost = 0.0;
    let (mut i, mut j) = (0, 0);
    while i < s.len() || j < t.len() {
        let order = match (s.get(i), t.get(j)) {
            (Some(x), Some(y)) => (x.0, x.1).cmp(&(y.0, y.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                let soft = s[i].2 || t[j].2;
                cost -= if soft { SOFT_HIT } else { HIT[s[i].0 as usize] };
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                cost += miss(s[i], tgt);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                cost += miss(t[j], src);
                j += 1;
            }
        }
    }
    cost
}

/// The character n-gram F1 of two count vectors (Dice: twice the shared
/// n-grams over all n-grams), as chrF computes it for β = 1 with all orders
/// pooled.
fn dice(x: &[u16], x_total: u32, y: &[u16], y_total: u32) -> f32 {
    2.0 * shared(x, y) as f32 / (x_total + y_total).max(1) as f32
}

/// `Σ min(x, y)`: most of the aligner's time with a translation. The
/// x86-64 baseline (SSE2) has no unsigned 16-bit minimum, so the loop runs
/// compiled for AVX2 where the CPU has it (`benches/align.rs`, 10,000
/// sentences with a translation: 4.4 s → 3.7 s); the result is the same
/// integer either way.
fn shared(x: &[u16], y: &[u16]) -> u32 {
    #[inline(always)]
    fn portable(x: &[u16], y: &[u16]) -> u32 {
        x.iter().zip(y).map(|(a, b)| (*a).min(*b) as u32).sum()
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(x: &[u16], y: &[u16]) -> u32 {
            portable(x, y)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(x, y) };
        }
    }
    portable(x, y)
}

fn add(acc: &mut [u16], g: &[u8]) {
    for (a, &b) in acc.iter_mut().zip(g) {
        *a = a.saturating_add(b as u16);
    }
}

/// The groups of up to `max` consecutive sentences of one side that end at
/// one position, index `k` holding the last `k + 1`: what the cost of every
/// bead ending there needs, gathered once per row (source) or column
/// (target) instead of once per bead.
struct Groups {
    /// Filled for the position before this one (`usize::MAX`: not yet).
    end: usize,
    count: usize,
    len: Vec<f32>,
    /// Sorted anchors of the group.
    anchors: Vec<Vec<Anchor>>,
    /// Whether the group spans a paragraph break.
    spans: Vec<bool>,
    /// N-gram count sums and totals, when n-grams are compared.
    sums: Vec<Vec<u16>>,
    totals: Vec<u32>,
}

impl Groups {
    fn new(max: usize, grams: bool) -> Groups {
        Groups {
            end: usize::MAX,
            count: 0,
            len: vec![0.0; max],
            anchors: vec![Vec::new(); max],
            spans: vec![false; max],
            sums: if grams {
                vec![vec![0; BUCKETS]; max]
            } else {
                Vec::new()
            },
            totals: vec![0; max],
        }
    }

    /// The groups of up to `max` sentences of `side` that end before `end`.
    fn fill(&mut self, side: &[Feat], end: usize, max: usize) {
        self.end = end;
        self.count = max.min(end);
        for k in 0..self.count {
            let f = &side[end - 1 - k];
            let (done, rest) = self.anchors.split_at_mut(k);
            let acc = &mut rest[0];
            acc.clear();
            acc.extend_from_slice(&f.anchors);
            if let Some(prev) = done.last() {
                acc.extend_from_slice(prev);
                acc.sort_unstable();
            }
            let prev_len = if k > 0 { self.len[k - 1] } else { 0.0 };
            self.len[k] = prev_len + f.len;
            self.spans[k] = f.para != side[end - 1].para_end;
            if !self.sums.is_empty() {
                let (done, rest) = self.sums.split_at_mut(k);
                let acc = &mut rest[0];
                match done.last() {
                    Some(prev) => acc.copy_from_slice(prev),
                    None => acc.fill(0),
                }
                add(acc, f.grams.as_deref().expect("n-grams on both sides"));
                self.totals[k] = if k > 0 { self.totals[k - 1] } else { 0 } + f.grams_total;
            }
        }
    }

    fn anchors(&self, size: usize) -> &[Anchor] {
        if size == 0 {
            &[]
        } else {
            &self.anchors[size - 1]
        }
    }
}

impl Level<'_> {
    /// The cost of the bead of the last `a` sources before `i` and the last
    /// `b` targets before `j`, without the translation term.
    fn cost(
        &self,
        model: Model,
        (i, a, sg): (usize, usize, &Groups),
        (j, b, tg): (usize, usize, &Groups),
    ) -> f32 {
        let mut cost = prior(a, b)
            + anchor_cost(
                sg.anchors(a),
                tg.anchors(b),
                &self.src[i - a..i],
                &self.tgt[j - b..j],
            );
        if a > 0 && b > 0 {
            cost += neg_ln_tail(delta(model, sg.len[a - 1], tg.len[b - 1]));
        }
        if self.paragraphs {
            let spans = |g: &Groups, size: usize| size > 1 && g.spans[size - 1];
            cost += PARAGRAPH_BREAK * (spans(sg, a) as u8 + spans(tg, b) as u8) as f32;
        }
        cost
    }

    /// A bead's score as [`super::Bead::score`] defines it.
    pub fn score(
        &self,
        model: Model,
        src: &std::ops::Range<usize>,
        tgt: &std::ops::Range<usize>,
    ) -> f32 {
        if src.is_empty() || tgt.is_empty() {
            return 0.0;
        }
        if self.has_grams() {
            let sum = |side: &[Feat]| {
                let mut acc = vec![0u16; BUCKETS];
                for f in side {
                    add(&mut acc, f.grams.as_deref().unwrap());
                }
                (acc, side.iter().map(|f| f.grams_total).sum::<u32>())
            };
            let (x, xt) = sum(&self.src[src.clone()]);
            let (y, yt) = sum(&self.tgt[tgt.clone()]);
            return dice(&x, xt, &y, yt);
        }
        let ls: f32 = self.src[src.clone()].iter().map(|f| f.len).sum();
        let lt: f32 = self.tgt[tgt.clone()].iter().map(|f| f.len).sum();
        (-neg_ln_tail(delta(model, ls, lt))).exp()
    }

    fn has_grams(&self) -> bool {
        self.src.first().is_some_and(|f| f.grams.is_some())
            && self.tgt.first().is_some_and(|f| f.grams.is_some())
    }

    /// The mean similarity of unrelated sentence pairs (far apart in both
    /// documents): what "no similarity" is at this level.
    fn baseline(&self) -> f32 {
        let (n, m) = (self.src.len(), self.tgt.len());
        if n < 2 || m < 2 {
            return 0.0;
        }
        let mut sum = 0.0;
        let mut count = 0;
        let mut x = vec![0u16; BUCKETS];
        let mut y = vec![0u16; BUCKETS];
        for k in 0..200.min(n * m) {
            let i = (k * 7919 + 13) % n;
            let j = (i * m / n + m / 2 + k % 7) % m;
            x.fill(0);
            y.fill(0);
            add(&mut x, self.src[i].grams.as_deref().unwrap());
            add(&mut y, self.tgt[j].grams.as_deref().unwrap());
            sum += dice(&x, self.src[i].grams_total, &y, self.tgt[j].grams_total);
            count += 1;
        }
        (sum / count as f32).min(0.9)
    }
}

/// Which columns each row may use: `lo[i]..=hi[i]`.
pub(super) struct Band {
    lo: Vec<usize>,
    hi: Vec<usize>,
}

impl Band {
    fn full(n: usize, m: usize) -> Band {
        Band {
            lo: vec![0; n + 1],
            hi: vec![m; n + 1],
        }
    }

    /// The band around a path found on blocks of two: every cell of the
    /// rectangle each coarse bead covers, widened by [`MARGIN`].
    fn around(coarse: &[(usize, usize)], n: usize, m: usize) -> Band {
        let mut lo = vec![usize::MAX; n + 1];
        let mut hi = vec![0; n + 1];
        for w in coarse.windows(2) {
            let (r0, c0) = ((2 * w[0].0).min(n), (2 * w[0].1).min(m));
            let (r1, c1) = ((2 * w[1].0).min(n), (2 * w[1].1).min(m));
            for r in r0.saturating_sub(MARGIN)..=(r1 + MARGIN).min(n) {
                lo[r] = lo[r].min(c0.saturating_sub(MARGIN));
                hi[r] = hi[r].max((c1 + MARGIN).min(m));
            }
        }
        Band { lo, hi }
    }

    fn cells(&self) -> usize {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(l, h)| (h + 1).saturating_sub(*l))
            .sum()
    }
}

/// The lowest-cost path from (0, 0) to (n, m): the cells between beads.
fn dp(level: &Level, model: Model, shapes: &[(usize, usize)], band: &Band) -> Vec<(usize, usize)> {
    let (n, m) = (level.src.len(), level.tgt.len());
    let mt = level.has_grams();
    let base = if mt { level.baseline() } else { 0.0 };
    let max_a = shapes.iter().map(|s| s.0).max().unwrap_or(1);
    let max_b = shapes.iter().map(|s| s.1).max().unwrap_or(1);
    let mut src_groups = Groups::new(max_a, mt);
    // Target groups depend on the column only: a ring of recent columns
    // serves the rows of a band without refilling them.
    const RING: usize = 128;
    let mut columns: Vec<Groups> = (0..RING).map(|_| Groups::new(max_b, mt)).collect();
    // Row offsets into the flat cost and back-pointer arrays.
    let mut offset = Vec::with_capacity(n + 2);
    let mut total = 0;
    for i in 0..=n {
        offset.push(total);
        total += (band.hi[i] + 1).saturating_sub(band.lo[i]);
    }
    let mut cost = vec![f32::INFINITY; total];
    let mut back = vec![u8::MAX; total];
    let at = |i: usize, j: usize| -> Option<usize> {
        (band.lo[i] <= j && j <= band.hi[i]).then(|| offset[i] + j - band.lo[i])
    };
    if let Some(k) = at(0, 0) {
        cost[k] = 0.0;
    }
    for i in 0..=n {
        src_groups.fill(level.src, i, max_a);
        for j in band.lo[i]..=band.hi[i].min(m) {
            if i == 0 && j == 0 {
                continue;
            }
            if columns[j % RING].end != j {
                columns[j % RING].fill(level.tgt, j, max_b);
            }
            let tgt_groups = &columns[j % RING];
            let mut best = f32::INFINITY;
            let mut best_shape = u8::MAX;
            for (s, &(a, b)) in shapes.iter().enumerate() {
                if a > i || b > j {
                    continue;
                }
                let Some(prev) = at(i - a, j - b).map(|k| cost[k]).filter(|c| c.is_finite()) else {
                    continue;
                };
                let mut c = prev + level.cost(model, (i, a, &src_groups), (j, b, tgt_groups));
                if mt {
                    let sim = if a > 0 && b > 0 {
                        let raw = dice(
                            &src_groups.sums[a - 1],
                            src_groups.totals[a - 1],
                            &tgt_groups.sums[b - 1],
                            tgt_groups.totals[b - 1],
                        );
                        ((raw - base) / (1.0 - base)).clamp(-1.0, 1.0)
                    } else {
                        DELETION_SIMILARITY
                    };
                    c += MT_WEIGHT * (a + b) as f32 * (1.0 - sim);
                }
                if c < best {
                    best = c;
                    best_shape = s as u8;
                }
            }
            let k = at(i, j).unwrap();
            cost[k] = best;
            back[k] = best_shape;
        }
    }
    let mut path = vec![(n, m)];
    let (mut i, mut j) = (n, m);
    while (i, j) != (0, 0) {
        let s = back[at(i, j).expect("the band holds the end")];
        let (a, b) = shapes[s as usize];
        i -= a;
        j -= b;
        path.push((i, j));
    }
    path.reverse();
    path
}

/// Pairs consecutive sentences (or blocks) into blocks.
fn coarsen(side: &[Feat]) -> Vec<Feat> {
    side.chunks(2)
        .map(|c| match c {
            [a, b] => a.merge(b),
            [a] => a.clone(),
            _ => unreachable!(),
        })
        .collect()
}

/// The path through `level`, coarse to fine when it is large.
pub(super) fn search(
    level: &Level,
    model: Model,
    shapes: &[(usize, usize)],
) -> Vec<(usize, usize)> {
    let (n, m) = (level.src.len(), level.tgt.len());
    let full = Band::full(n, m);
    if full.cells() <= FULL_CELLS || n < 4 || m < 4 {
        return dp(level, model, shapes, &full);
    }
    let (src, tgt) = (coarsen(level.src), coarsen(level.tgt));
    let coarse = Level {
        src: &src,
        tgt: &tgt,
        paragraphs: false,
    };
    let coarse_shapes: Vec<(usize, usize)> = shapes
        .iter()
        .copied()
        .filter(|&(a, b)| a <= 2 && b <= 2)
        .collect();
    let path = search(&coarse, model, &coarse_shapes);
    dp(level, model, shapes, &Band::around(&path, n, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_known_values() {
        // 2·(1 − Φ(x)) for x = 0, 1, 1.96, 3, and −ln erfc(10/√2) (Python
        // `math.erfc`), which would underflow outside the log domain.
        for (x, p) in [
            (0.0f32, 1.0f64),
            (1.0, 0.317_310_5),
            (1.96, 0.049_995_8),
            (3.0, 0.002_699_8),
        ] {
            let got = (-neg_ln_tail(x) as f64).exp();
            assert!((got - p).abs() < 1e-5 * p.max(1e-3), "{x}: {got} vs {p}");
        }
        let far = neg_ln_tail(10.0);
        assert!((far - 52.538).abs() < 0.01, "{far}");
    }

    #[test]
    fn shapes_are_within_the_group_limit() {
        let s = shapes(8);
        assert_eq!(s.len(), 3 + 14 + 3);
        assert!(s.iter().all(|&(a, b)| a <= 8 && b <= 8));
        assert_eq!(shapes(1), [(1, 1), (1, 0), (0, 1)]);
    }
}
