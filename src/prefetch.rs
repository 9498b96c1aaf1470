//! Prefetch hints: ask the CPU to start loading a value's cache lines now, so that a later
//! read of it does not wait for memory.
//!
//! A hint only: it reads nothing, cannot fault (an address past the value is as good as any),
//! and changes no result. Where it helps: a scan hands the detector and the tally one record
//! after another, each touching the state of its own source, scattered over a few MiB; looking
//! up the source of a record a few places ahead and prefetching its state lets those loads
//! overlap the work on the records before it, instead of each record waiting for its own.

/// The cache line size of the CPUs this runs on (x86-64, most AArch64).
const LINE: usize = 64;

/// Start loading the first `lines` cache lines of `value` (from its address: a value that
/// straddles a line boundary needs one line more than its size says).
#[inline(always)]
pub(crate) fn lines<T>(value: *const T, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = value.cast::<i8>();
        for i in 0..lines {
            // SAFETY: a prefetch reads no memory and never faults, whatever the address.
            unsafe { _mm_prefetch(p.wrapping_add(i * LINE), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (value, lines);
}

/// How many cache lines a `T` can span.
pub(crate) const fn lines_of<T>() -> usize {
    std::mem::size_of::<T>().div_ceil(LINE) + 1
}
