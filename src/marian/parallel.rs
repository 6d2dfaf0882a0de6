//! How the engine's parallel passes use the rayon pool. A decoder step is
//! about 80 short passes (one per matrix product, attention, layer norm,
//! selection), each a few hundred microseconds at beam 4. Under rayon's
//! `join`, whichever thread ends its half first waits in rayon's idle loop,
//! which after some 30 yields parks the thread on a futex; the half it
//! waits for then has to wake it through the OS, and on this VM the pass's
//! critical path paid that once per pass (≈ 10,000 context switches in an
//! 80-step beam search; decoder layers scaled 1.73× on two threads where
//! the vocabulary projection scaled 1.92×). Here a pass is `n` tasks
//! claimed from an atomic counter by the caller and by one helper job per
//! other worker; the caller spins on a completion count, and never sleeps
//! for a task that another thread is running. Tasks must not wait on the
//! pool themselves (none here do): the caller's spin is only bounded by
//! tasks that are running. benches/NOTES.md has the measurements.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `f(0)`, …, `f(n - 1)` on the current pool (each exactly once, in
/// no particular order) and returns when all have returned.
pub(crate) fn par_tasks(n: usize, f: impl Fn(usize) + Sync) {
    let helpers = rayon::current_num_threads().min(n).saturating_sub(1);
    if helpers == 0 {
        (0..n).for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let work = || {
        loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= n {
                break;
            }
            // Counted when the task returns or unwinds: a panicking task
            // must not leave the others spinning; rayon's scope then
            // carries the panic to the caller.
            let _counted = Counted(&done);
            f(t);
        }
    };
    // Every task is claimed when `work` returns; those left run on threads
    // that are awake. Helpers wait for them too, so that they enter rayon's
    // idle loop when the caller leaves, not before: the caller's next pass
    // then finds them still polling, not parked. The wait yields after a
    // short spin: where the OS has put two of the pool's threads on one
    // core, a spinner would hold it from the task it waits for.
    let wait = || {
        let mut spins = 0u32;
        while done.load(Ordering::Acquire) < n {
            if spins < 256 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    };
    rayon::scope(|s| {
        for _ in 0..helpers {
            s.spawn(|_| {
                work();
                wait();
            });
        }
        work();
        wait();
    });
}

/// Adds one to the count when dropped. Release: a task's writes are
/// visible to the thread whose Acquire load sees the count.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// `data` as pieces of `chunk` elements (the last may be shorter), `per`
/// pieces per task: `f(index of the task's first piece, its pieces)`.
pub(crate) fn par_chunks<T: Send>(
    data: &mut [T],
    chunk: usize,
    per: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let per = per.max(1);
    let parts = Parts::new(data, chunk.max(1) * per);
    par_tasks(parts.count(), |i| {
        // SAFETY: each task index comes once, and parts are disjoint.
        f(i * per, unsafe { parts.get(i) })
    });
}

/// [`par_chunks`] over two slices whose pieces pair up (`a` in pieces of
/// `ca`, `b` of `cb`; both have as many tasks' worth).
pub(crate) fn par_chunks2<A: Send, B: Send>(
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    per: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let per = per.max(1);
    let (pa, pb) = (
        Parts::new(a, ca.max(1) * per),
        Parts::new(b, cb.max(1) * per),
    );
    assert!(
        pb.count() >= pa.count(),
        "par_chunks2: the second slice is shorter"
    );
    par_tasks(pa.count(), |i| {
        // SAFETY: each task index comes once, and parts are disjoint.
        f(i * per, unsafe { pa.get(i) }, unsafe { pb.get(i) })
    });
}

/// A mutable slice handed out in disjoint `span`-long parts to tasks.
struct Parts<'a, T> {
    ptr: *mut T,
    len: usize,
    span: usize,
    _slice: PhantomData<&'a mut [T]>,
}

// SAFETY: tasks get disjoint parts (see `get`), so sharing the pointer is
// sharing `&mut` to different elements, which `T: Send` allows.
unsafe impl<T: Send> Sync for Parts<'_, T> {}

impl<'a, T> Parts<'a, T> {
    fn new(s: &'a mut [T], span: usize) -> Self {
        Self {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            span,
            _slice: PhantomData,
        }
    }

    fn count(&self) -> usize {
        self.len.div_ceil(self.span)
    }

    /// Part `i`.
    ///
    /// # Safety
    /// No two live results may share an `i`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, i: usize) -> &'a mut [T] {
        let start = (i * self.span).min(self.len);
        let end = (start + self.span).min(self.len);
        // SAFETY: in bounds; exclusive by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), end - start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task runs once, on a pool of three, for task counts around the
    /// thread count; pieces pair up and cover the slices.
    #[test]
    fn every_task_runs_once_and_pieces_cover_the_slices() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            for n in [0, 1, 2, 3, 4, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                par_tasks(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "n {n}");
            }
            for (len, chunk, per) in [(10, 3, 1), (10, 3, 2), (12, 4, 3), (0, 5, 1), (7, 10, 4)] {
                let mut a = vec![usize::MAX; len];
                let mut b = vec![(0, 0); len.div_ceil(chunk)];
                par_chunks2(&mut a, chunk, &mut b, 1, per, |first, a, b| {
                    for (j, (piece, slot)) in a.chunks_mut(chunk).zip(b.iter_mut()).enumerate() {
                        piece.fill(first + j);
                        *slot = (first + j, piece.len());
                    }
                });
                let want: Vec<usize> = (0..len).map(|i| i / chunk).collect();
                assert_eq!(a, want, "len {len}, chunk {chunk}, per {per}");
                for (p, &(i, l)) in b.iter().enumerate() {
                    assert_eq!((i, l), (p, chunk.min(len - p * chunk)));
                }
                let mut c = vec![0usize; len];
                par_chunks(&mut c, chunk, per, |first, c| {
                    c.iter_mut().for_each(|v| *v = first * chunk + 1);
                });
                let want: Vec<usize> = (0..len)
                    .map(|i| i / (chunk * per) * chunk * per + 1)
                    .collect();
                assert_eq!(c, want);
            }
        });
    }

    /// A panicking task reaches the caller as a panic, on the caller's
    /// thread or a helper's, instead of leaving the pass waiting forever.
    #[test]
    fn a_panicking_task_panics_the_pass() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for bad in [0, 5, 63] {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.install(|| {
                    par_tasks(64, |i| {
                        assert!(i != bad, "task {i}");
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    })
                })
            }));
            assert!(caught.is_err(), "task {bad}");
        }
    }
}
