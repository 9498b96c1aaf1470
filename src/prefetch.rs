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

/// Start loading `count` cache lines from `value`'s address on. (Elsewhere than on x86-64,
/// nothing: the hint is not worth an unstable intrinsic.)
#[inline(always)]
pub(crate) fn lines<T>(value: *const T, count: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = value.cast::<i8>();
        for i in 0..count {
            // SAFETY: a prefetch reads no memory and never faults, whatever the address.
            unsafe { _mm_prefetch(p.wrapping_add(i * LINE), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (value, count);
}

/// How many cache lines a `T` may span: one more than its size fills, as it need not start
/// on a line.
pub(crate) const fn lines_of<T>() -> usize {
    std::mem::size_of::<T>().div_ceil(LINE) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_reads_nothing_wherever_it_points() {
        let v = vec![7u64; 3];
        lines(v.as_ptr(), lines_of::<[u64; 3]>());
        // Past the end, unmapped, null: no fault, no effect.
        lines(v.as_ptr().wrapping_add(1 << 40), 4);
        lines(std::ptr::null::<u8>(), 4);
        assert_eq!(v, [7, 7, 7]);
        assert_eq!(
            (
                lines_of::<u8>(),
                lines_of::<[u8; 64]>(),
                lines_of::<[u8; 65]>()
            ),
            (2, 2, 3)
        );
    }
}
