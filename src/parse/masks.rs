//! Bit masks of a block of bytes, bit `i` for byte `i`: where the parsers' searches start
//! (the spaces of a LOG body, the classes of a printk stamp's bytes). On x86-64, SSE2 (always
//! there) tests 16 bytes at once, every class asked for from one load; elsewhere, one byte at
//! a time.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    _mm_xor_si128,
};

/// Which bytes a mask marks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Class {
    /// This byte.
    Byte(u8),
    /// An ASCII digit.
    Digit,
}

impl Class {
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn holds(self, b: u8) -> bool {
        match self {
            Class::Byte(c) => b == c,
            Class::Digit => b.is_ascii_digit(),
        }
    }
}

/// The mask of each of `classes` over `block` (at most 64 bytes, whole 16-byte lanes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn masks<const N: usize, const K: usize>(
    block: &[u8; N],
    classes: [Class; K],
) -> [u64; K] {
    const {
        assert!(
            N.is_multiple_of(16) && N <= 64,
            "whole lanes, one u64 of bits"
        )
    };
    let mut masks = [0u64; K];
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the 16 bytes of `lane`
        // (unaligned loads allowed), the rest reads no memory.
        unsafe {
            let x = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            for (mask, class) in masks.iter_mut().zip(classes) {
                let hits = match class {
                    Class::Byte(c) => _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8)),
                    Class::Digit => {
                        // A digit xor '0' is its value, at most 9; every other byte comes out
                        // above 9.
                        let v = _mm_xor_si128(x, _mm_set1_epi8(b'0' as i8));
                        _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(9)), v)
                    }
                };
                *mask |= u64::from(_mm_movemask_epi8(hits) as u32 & 0xffff) << (16 * i);
            }
        }
    }
    masks
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn masks<const N: usize, const K: usize>(
    block: &[u8; N],
    classes: [Class; K],
) -> [u64; K] {
    classes.map(|class| bytewise(block, class))
}

/// The mask of `class` one byte at a time: the reference the lanes (and their callers' class
/// lists) are tested against, and the masks where there is no SSE2.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(super) fn bytewise<const N: usize>(block: &[u8; N], class: Class) -> u64 {
    let mut mask = 0u64;
    for (i, &b) in block.iter().enumerate() {
        mask |= u64::from(class.holds(b)) << i;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masks_are_the_bytewise_ones() {
        // Every byte value in every lane, beside a space and a digit.
        for b in 0..=255u8 {
            for lane in 0..64 {
                let mut block = [b; 64];
                block[lane] = b' ';
                block[(lane + 17) % 64] = b ^ 0x20;
                block[(lane + 33) % 64] = b'7';
                let classes = [
                    Class::Byte(b' '),
                    Class::Digit,
                    Class::Byte(b'.'),
                    Class::Byte(b),
                ];
                assert_eq!(
                    masks(&block, classes),
                    classes.map(|c| bytewise(&block, c)),
                    "{block:?}"
                );
                let half: &[u8; 32] = block.first_chunk().unwrap();
                assert_eq!(masks(half, classes), classes.map(|c| bytewise(half, c)));
            }
        }
        assert_eq!(masks(&[b' '; 64], [Class::Byte(b' ')]), [u64::MAX]);
        assert_eq!(masks(&[b'!'; 64], [Class::Byte(b' ')]), [0]);
        assert_eq!(masks(b"0123456789/:0909", [Class::Digit]), [0xf3ff]);
    }
}
